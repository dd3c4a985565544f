// ggml's reference encoders (ggml-quants.c: quantize_row_q8_0_ref, quantize_row_q4_0_ref),
// so a file we quantize holds what llama-quantize would write from the same f32 weights.
#include "io/gguf_quant.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"

namespace bb::gguf {

namespace {

void put_u16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v & 0xff));
  out.push_back(static_cast<uint8_t>(v >> 8));
}

uint16_t get_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

// Block: f16 d = max|x| / 127, then 32 int8 round(x / d).
void q8_0_block(const float* x, std::vector<uint8_t>& out) {
  float amax = 0;
  for (int64_t j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  put_u16(out, f32_to_f16(d));
  for (int64_t j = 0; j < kBlock; ++j) out.push_back(static_cast<uint8_t>(static_cast<int8_t>(std::round(x[j] * id))));
}

// Block: f16 d = (the value of largest magnitude, with its sign) / -8, so that value maps to
// -8 exactly and the other end of the range gets the extra level; q = min(15, x / d + 8.5)
// truncated; byte j holds value j in its low nibble and value j + 16 in its high one.
void q4_0_block(const float* x, std::vector<uint8_t>& out) {
  float amax = 0, max = 0;
  for (int64_t j = 0; j < kBlock; ++j)
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  const float d = max / -8.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  put_u16(out, f32_to_f16(d));
  for (int64_t j = 0; j < kBlock / 2; ++j) {
    const auto lo = static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f))));
    const auto hi =
        static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(x[j + kBlock / 2] * id + 8.5f))));
    out.push_back(static_cast<uint8_t>(lo | (hi << 4)));
  }
}

}  // namespace

TensorType parse_tensor_type(const std::string& name) {
  if (name == "f32") return TensorType::F32;
  if (name == "f16") return TensorType::F16;
  if (name == "bf16") return TensorType::BF16;
  if (name == "q8_0") return TensorType::Q8_0;
  if (name == "q4_0") return TensorType::Q4_0;
  throw ConfigError(fmt::format("--type '{}' is not known (f32, f16, bf16, q8_0, q4_0)", name));
}

std::string tensor_type_name(TensorType t) {
  switch (t) {
    case TensorType::F32: return "f32";
    case TensorType::F16: return "f16";
    case TensorType::BF16: return "bf16";
    case TensorType::Q8_0: return "q8_0";
    case TensorType::Q4_0: return "q4_0";
  }
  return "?";
}

bool is_quantized(TensorType t) { return t == TensorType::Q8_0 || t == TensorType::Q4_0; }

int64_t encoded_bytes(TensorType t, int64_t n) {
  switch (t) {
    case TensorType::F32: return 4 * n;
    case TensorType::F16:
    case TensorType::BF16: return 2 * n;
    case TensorType::Q8_0: return n / kBlock * (2 + kBlock);
    case TensorType::Q4_0: return n / kBlock * (2 + kBlock / 2);
  }
  return 0;
}

std::vector<uint8_t> encode(TensorType t, const std::vector<float>& values, int64_t row_length) {
  const auto n = static_cast<int64_t>(values.size());
  if (is_quantized(t) && (row_length <= 0 || row_length % kBlock != 0 || n % row_length != 0))
    throw ShapeError(fmt::format("{} needs rows of a multiple of {} values, got rows of {}", tensor_type_name(t),
                                 kBlock, row_length));
  std::vector<uint8_t> out;
  out.reserve(static_cast<size_t>(encoded_bytes(t, n)));
  switch (t) {
    case TensorType::F32:
      out.resize(values.size() * 4);
      std::memcpy(out.data(), values.data(), out.size());
      break;
    case TensorType::F16:
      for (float v : values) put_u16(out, f32_to_f16(v));
      break;
    case TensorType::BF16:
      for (float v : values) put_u16(out, f32_to_bf16(v));
      break;
    case TensorType::Q8_0:
      for (int64_t i = 0; i < n; i += kBlock) q8_0_block(values.data() + i, out);
      break;
    case TensorType::Q4_0:
      for (int64_t i = 0; i < n; i += kBlock) q4_0_block(values.data() + i, out);
      break;
  }
  return out;
}

std::vector<float> decode(TensorType t, const std::vector<uint8_t>& bytes, int64_t n) {
  if (static_cast<int64_t>(bytes.size()) != encoded_bytes(t, n))
    throw ShapeError(fmt::format("{}: {} bytes do not hold {} values", tensor_type_name(t), bytes.size(), n));
  std::vector<float> out(static_cast<size_t>(n));
  const uint8_t* p = bytes.data();
  switch (t) {
    case TensorType::F32: std::memcpy(out.data(), p, bytes.size()); break;
    case TensorType::F16:
      for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(get_u16(p + 2 * i));
      break;
    case TensorType::BF16:
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(get_u16(p + 2 * i));
      break;
    case TensorType::Q8_0:
      for (int64_t b = 0; b < n / kBlock; ++b, p += 2 + kBlock) {
        const float d = f16_to_f32(get_u16(p));
        for (int64_t j = 0; j < kBlock; ++j) out[b * kBlock + j] = d * static_cast<int8_t>(p[2 + j]);
      }
      break;
    case TensorType::Q4_0:
      for (int64_t b = 0; b < n / kBlock; ++b, p += 2 + kBlock / 2) {
        const float d = f16_to_f32(get_u16(p));
        for (int64_t j = 0; j < kBlock / 2; ++j) {
          out[b * kBlock + j] = d * ((p[2 + j] & 0x0f) - 8);
          out[b * kBlock + j + kBlock / 2] = d * ((p[2 + j] >> 4) - 8);
        }
      }
      break;
  }
  return out;
}

}  // namespace bb::gguf
