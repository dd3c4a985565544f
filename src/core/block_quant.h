// ggml's two block quantizations, q8_0 and q4_0: each run of kQuantBlock (32) values becomes
// an f16 scale d and 32 small integers q, the value being d * q. The reference coders here are
// ggml-quants.c's (quantize_row_q8_0_ref, quantize_row_q4_0_ref, dequantize_row_*), bit for bit,
// so a tensor quantized here holds what llama-quantize writes from the same f32 values. The
// GGUF writer and reader and the CPU kernels' scalar paths share them.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace bb {

// One block: x (32 values) -> out (block_bytes(t) bytes).
void quantize_block(DType t, const float* x, uint8_t* out);
// n values (a multiple of kQuantBlock) -> storage_bytes(t, n) bytes.
void quantize_blocks(DType t, const float* x, int64_t n, uint8_t* out);
// The inverse (lossy): storage_bytes(t, n) bytes -> n values.
void dequantize_blocks(DType t, const uint8_t* in, int64_t n, float* out);

// The f16 scale at the head of a block (little-endian, as ggml stores it).
inline uint16_t block_scale_bits(const uint8_t* block) { return static_cast<uint16_t>(block[0] | (block[1] << 8)); }

}  // namespace bb
