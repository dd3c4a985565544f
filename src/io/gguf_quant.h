// The GGML tensor encodings a GGUF file can carry that bigbatch writes: f32, f16, bf16 and
// the two block quantizations llama.cpp reads everywhere, q8_0 and q4_0 (blocks of 32
// values, each with an f16 scale), bit for bit as ggml's reference quantizers make them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace bb::gguf {

// ggml_type values (ggml.h); the file stores them as uint32.
enum class TensorType : uint32_t { F32 = 0, F16 = 1, Q4_0 = 2, Q8_0 = 8, BF16 = 30 };

inline constexpr int64_t kBlock = 32;  // QK8_0 = QK4_0

// "f32", "f16", "bf16", "q8_0", "q4_0"; ConfigError for anything else.
TensorType parse_tensor_type(const std::string& name);
std::string tensor_type_name(TensorType t);
bool is_quantized(TensorType t);
// Bytes of n values (n a multiple of kBlock for the quantized types).
int64_t encoded_bytes(TensorType t, int64_t n);

// Encodes row-major values; for quantized types every row (row_length values) is cut into
// blocks, so row_length must be a multiple of kBlock (ShapeError otherwise).
std::vector<uint8_t> encode(TensorType t, const std::vector<float>& values, int64_t row_length);
// The inverse (lossy for the quantized types), as ggml's dequantize_row_* computes it.
std::vector<float> decode(TensorType t, const std::vector<uint8_t>& bytes, int64_t n);

}  // namespace bb::gguf
