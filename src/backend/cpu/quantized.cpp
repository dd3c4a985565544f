// Block dequantization and quantization kernels. Blocks are independent, so both run in
// parallel over blocks; the AVX-512 path turns a block's 32 integers into two vectors of 16
// floats, scales them and stores f32 or (rounded to nearest even, as elem.h) bf16.
#include "backend/cpu/quantized.h"

#include <fmt/format.h>

#include <cstring>
#include <type_traits>

#include "backend/cpu/elem.h"
#include "core/block_quant.h"
#include "core/error.h"

#if defined(__AVX512F__) && defined(__AVX512BW__)
// GCC 12 flags _mm512_undefined_epi32() inside its own intrinsic headers as uninitialised.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#define BB_QUANT_AVX512 1
#endif

namespace bb::cpu {
namespace {

constexpr int64_t kHalf = kQuantBlock / 2;

// The portable path: one block into any float type.
template <typename D>
void dequantize_block(DType t, const uint8_t* p, D* out) {
  const float d = f16_to_f32(block_scale_bits(p));
  if (t == DType::Q8_0) {
    for (int64_t j = 0; j < kQuantBlock; ++j) store(out, j, d * static_cast<int8_t>(p[2 + j]));
  } else {
    for (int64_t j = 0; j < kHalf; ++j) {
      store(out, j, d * ((p[2 + j] & 0x0f) - 8));
      store(out, j + kHalf, d * ((p[2 + j] >> 4) - 8));
    }
  }
}

#ifdef BB_QUANT_AVX512
// The block's two halves as 16 int32 each: q8_0 values 0-15 and 16-31; q4_0 the low nibbles
// (values 0-15) and the high ones (16-31), minus 8.
inline void block_ints(DType t, const uint8_t* p, __m512i& lo, __m512i& hi) {
  if (t == DType::Q8_0) {
    lo = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2)));
    hi = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 + kHalf)));
  } else {
    const __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2)));
    const __m512i eight = _mm512_set1_epi32(8);
    lo = _mm512_sub_epi32(_mm512_and_si512(bytes, _mm512_set1_epi32(0x0f)), eight);
    hi = _mm512_sub_epi32(_mm512_srli_epi32(bytes, 4), eight);
  }
}

inline void store16(float* out, __m512 v) { _mm512_storeu_ps(out, v); }
inline void store16(bf16_t* out, __m512 v) {
  __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  u = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtepi32_epi16(_mm512_srli_epi32(u, 16)));
}

template <typename D>
void dequantize_block_avx512(DType t, const uint8_t* p, D* out) {
  const __m512 d = _mm512_set1_ps(f16_to_f32(block_scale_bits(p)));
  __m512i lo, hi;
  block_ints(t, p, lo, hi);
  store16(out, _mm512_mul_ps(_mm512_cvtepi32_ps(lo), d));
  store16(out + kHalf, _mm512_mul_ps(_mm512_cvtepi32_ps(hi), d));
}
#endif

template <typename D>
void dequantize_into(DType t, const uint8_t* src, int64_t blocks, D* dst) {
  const auto bytes = static_cast<int64_t>(block_bytes(t));
#pragma omp parallel for schedule(static) if (blocks > 256)
  for (int64_t b = 0; b < blocks; ++b) {
#ifdef BB_QUANT_AVX512
    if constexpr (!std::is_same_v<D, f16_t>) {
      dequantize_block_avx512(t, src + b * bytes, dst + b * kQuantBlock);
      continue;
    }
#endif
    dequantize_block(t, src + b * bytes, dst + b * kQuantBlock);
  }
}

template <typename S>
void quantize_from(DType t, const S* src, int64_t blocks, uint8_t* dst) {
  const auto bytes = static_cast<int64_t>(block_bytes(t));
#pragma omp parallel for schedule(static) if (blocks > 256)
  for (int64_t b = 0; b < blocks; ++b) {
    float x[kQuantBlock];
    for (int64_t j = 0; j < kQuantBlock; ++j) x[j] = load(src + b * kQuantBlock, j);
    quantize_block(t, x, dst + b * bytes);
  }
}

void check_pair(const Tensor& q, const Tensor& f, const char* what) {
  if (!is_block_quantized(q.dtype()) || !is_float(f.dtype()) || q.numel() != f.numel())
    throw ShapeError(fmt::format("{}: {} and {} are not a block-quantized tensor and a float one of its size", what,
                                 q.desc(), f.desc()));
}

}  // namespace

void dequantize(const Tensor& src, const Tensor& dst) {
  check_pair(src, dst, "dequantize");
  const int64_t blocks = src.numel() / kQuantBlock;
  dispatch_float(dst.dtype(), [&](auto* d) {
    using D = std::remove_pointer_t<decltype(d)>;
    dequantize_into(src.dtype(), src.data<uint8_t>(), blocks, dst.data<D>());
  });
}

void quantize(const Tensor& src, const Tensor& dst) {
  check_pair(dst, src, "quantize");
  const int64_t blocks = src.numel() / kQuantBlock;
  dispatch_float(src.dtype(), [&](auto* s) {
    using S = std::remove_pointer_t<decltype(s)>;
    quantize_from(dst.dtype(), src.data<S>(), blocks, dst.data<uint8_t>());
  });
}

}  // namespace bb::cpu
