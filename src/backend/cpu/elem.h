// Element access for kernels written once over float storage types: load any float dtype
// as f32, store f32 back. Inline so loops over them vectorise.
#pragma once
#include <cstdint>
#include <cstring>

#include "core/dtype.h"

namespace bb::cpu {

struct bf16_t {
  uint16_t bits;
};
struct f16_t {
  uint16_t bits;
};

inline float load(const float* p, int64_t i) { return p[i]; }
inline float load(const bf16_t* p, int64_t i) {
  uint32_t u = static_cast<uint32_t>(p[i].bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float load(const f16_t* p, int64_t i) { return static_cast<float>(reinterpret_cast<const _Float16*>(p)[i]); }

inline void store(float* p, int64_t i, float v) { p[i] = v; }
inline void store(bf16_t* p, int64_t i, float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even (inputs here are finite)
  p[i].bits = static_cast<uint16_t>(u >> 16);
}
inline void store(f16_t* p, int64_t i, float v) { reinterpret_cast<_Float16*>(p)[i] = static_cast<_Float16>(v); }

// Calls fn with a typed null pointer for the tensor's float dtype, so a kernel template can
// be instantiated per dtype: dispatch_float(t.dtype(), [&](auto tag) { using T = ...; }).
template <typename Fn>
void dispatch_float(DType t, Fn&& fn) {
  switch (t) {
    case DType::F32: fn(static_cast<float*>(nullptr)); break;
    case DType::BF16: fn(static_cast<bf16_t*>(nullptr)); break;
    case DType::F16: fn(static_cast<f16_t*>(nullptr)); break;
    default: break;
  }
}

}  // namespace bb::cpu
