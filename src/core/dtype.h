// Element types a tensor can hold, their sizes and names, and the scalar conversions
// between fp32 and the two 16-bit float formats (bf16, IEEE half). Q8_0 and Q4_0 are ggml's
// block formats (core/block_quant.h): a frozen LoRA base, 32 weights of a row to a block.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace bb {

enum class DType : uint8_t { F32, BF16, F16, I32, I64, Q8_0, Q4_0 };

constexpr bool is_block_quantized(DType t) { return t == DType::Q8_0 || t == DType::Q4_0; }
inline constexpr int64_t kQuantBlock = 32;  // values per block (ggml's QK8_0 = QK4_0)

// Bytes of one block of kQuantBlock values: an f16 scale and 32 int8 or 32 nibbles.
constexpr size_t block_bytes(DType t) { return t == DType::Q8_0 ? 2 + 32 : t == DType::Q4_0 ? 2 + 16 : 0; }

// Bytes per element of an element type; 0 for the block formats, whose size is only defined
// for whole blocks (storage_bytes).
constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::Q8_0:
    case DType::Q4_0: return 0;
    case DType::F32: return 4;
    case DType::BF16: return 2;
    case DType::F16: return 2;
    case DType::I32: return 4;
    case DType::I64: return 8;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::BF16: return "bf16";
    case DType::F16: return "f16";
    case DType::I32: return "i32";
    case DType::I64: return "i64";
    case DType::Q8_0: return "q8_0";
    case DType::Q4_0: return "q4_0";
  }
  return "?";
}

// Bytes that n values of type t take (n a multiple of kQuantBlock for the block formats).
constexpr size_t storage_bytes(DType t, int64_t n) {
  return is_block_quantized(t) ? static_cast<size_t>(n / kQuantBlock) * block_bytes(t)
                               : static_cast<size_t>(n) * dtype_size(t);
}

constexpr bool is_float(DType t) { return t == DType::F32 || t == DType::BF16 || t == DType::F16; }

// bf16 is the top half of an fp32; round to nearest even, keep NaN a NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// IEEE half through the compiler's _Float16, which rounds to nearest even.
inline uint16_t f32_to_f16(float f) {
  _Float16 h = static_cast<_Float16>(f);
  uint16_t u;
  std::memcpy(&u, &h, 2);
  return u;
}

inline float f16_to_f32(uint16_t u) {
  _Float16 h;
  std::memcpy(&h, &u, 2);
  return static_cast<float>(h);
}

}  // namespace bb
