// Counter-based random numbers: a uint32 that is a pure function of (seed, offset, index),
// so any element of any stream can be drawn in any order, by any thread, and replayed.
// SplitMix64: the (seed, offset) pair is hashed into a stream key, element i is the
// murmur3/splitmix finaliser of key + (i + 1) * golden, which passes BigCrush.
#pragma once
#include <cstdint>

namespace bb::cpu {

// The splitmix64 output function (Stafford's "mix13" finaliser).
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline constexpr uint64_t kGolden64 = 0x9e3779b97f4a7c15ULL;

// The key of stream (seed, offset). Hashing offset before mixing it with the seed keeps
// neighbouring offsets (consecutive dropout calls) from giving shifted copies of one stream.
inline uint64_t counter_stream(uint64_t seed, uint64_t offset) {
  return mix64(seed ^ mix64(offset + kGolden64));
}

// Element `index` of a stream; kernels hoist counter_stream out of their loops and call this,
// which is branch-free 64-bit integer arithmetic the compiler vectorises (AVX-512DQ).
inline uint32_t counter_random_at(uint64_t stream, uint64_t index) {
  return static_cast<uint32_t>(mix64(stream + (index + 1) * kGolden64) >> 32);
}

inline uint32_t counter_random(uint64_t seed, uint64_t offset, uint64_t index) {
  return counter_random_at(counter_stream(seed, offset), index);
}

}  // namespace bb::cpu
