// GGML tensor encodings; the block formats through core/block_quant (ggml's reference coders),
// so a file we quantize holds what llama-quantize would write from the same f32 weights.
#include "io/gguf_quant.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/block_quant.h"
#include "core/dtype.h"
#include "core/error.h"

namespace bb::gguf {

namespace {

void put_u16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v & 0xff));
  out.push_back(static_cast<uint8_t>(v >> 8));
}

uint16_t get_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

DType block_dtype(TensorType t) { return t == TensorType::Q8_0 ? DType::Q8_0 : DType::Q4_0; }

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
    case TensorType::Q4_0:
      out.resize(static_cast<size_t>(encoded_bytes(t, n)));
      quantize_blocks(block_dtype(t), values.data(), n, out.data());
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
    case TensorType::Q4_0: dequantize_blocks(block_dtype(t), p, n, out.data()); break;
  }
  return out;
}

}  // namespace bb::gguf
