// The reference block coders (ggml-quants.c).
#include "core/block_quant.h"

#include <algorithm>
#include <cmath>

namespace bb {
namespace {

void put_scale(uint8_t* out, float d) {
  const uint16_t h = f32_to_f16(d);
  out[0] = static_cast<uint8_t>(h & 0xff);
  out[1] = static_cast<uint8_t>(h >> 8);
}

// f16 d = max|x| / 127, then 32 int8 round(x / d).
void q8_0_block(const float* x, uint8_t* out) {
  float amax = 0;
  for (int64_t j = 0; j < kQuantBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  put_scale(out, d);
  for (int64_t j = 0; j < kQuantBlock; ++j) out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::round(x[j] * id)));
}

// f16 d = (the value of largest magnitude, with its sign) / -8, so that value maps to -8
// exactly and the other end of the range gets the extra level; q = min(15, x / d + 8.5)
// truncated; byte j holds value j in its low nibble and value j + 16 in its high one.
void q4_0_block(const float* x, uint8_t* out) {
  float amax = 0, max = 0;
  for (int64_t j = 0; j < kQuantBlock; ++j)
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  const float d = max / -8.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  put_scale(out, d);
  constexpr int64_t half = kQuantBlock / 2;
  for (int64_t j = 0; j < half; ++j) {
    const auto lo = static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f))));
    const auto hi = static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(x[j + half] * id + 8.5f))));
    out[2 + j] = static_cast<uint8_t>(lo | (hi << 4));
  }
}

}  // namespace

void quantize_block(DType t, const float* x, uint8_t* out) {
  if (t == DType::Q8_0) q8_0_block(x, out);
  else q4_0_block(x, out);
}

void quantize_blocks(DType t, const float* x, int64_t n, uint8_t* out) {
  const auto bytes = static_cast<int64_t>(block_bytes(t));
  for (int64_t b = 0; b < n / kQuantBlock; ++b) quantize_block(t, x + b * kQuantBlock, out + b * bytes);
}

void dequantize_blocks(DType t, const uint8_t* p, int64_t n, float* out) {
  const auto bytes = static_cast<int64_t>(block_bytes(t));
  constexpr int64_t half = kQuantBlock / 2;
  for (int64_t b = 0; b < n / kQuantBlock; ++b, p += bytes, out += kQuantBlock) {
    const float d = f16_to_f32(block_scale_bits(p));
    if (t == DType::Q8_0) {
      for (int64_t j = 0; j < kQuantBlock; ++j) out[j] = d * static_cast<int8_t>(p[2 + j]);
    } else {
      for (int64_t j = 0; j < half; ++j) {
        out[j] = d * ((p[2 + j] & 0x0f) - 8);
        out[j + half] = d * ((p[2 + j] >> 4) - 8);
      }
    }
  }
}

}  // namespace bb
