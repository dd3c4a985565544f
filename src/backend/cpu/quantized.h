// Block-quantized tensors (q8_0, q4_0) on the CPU: what CpuBackend::cast does when one side is
// a block format. Dequantizing is the hot path (every forward and backward through a frozen
// quantized base turns tiles of it back into the compute dtype), so it has an AVX-512 path;
// quantizing runs once at load.
#pragma once
#include "core/tensor.h"

namespace bb::cpu {

// dst (f32, bf16 or f16, same element count) = the values of quantized src.
void dequantize(const Tensor& src, const Tensor& dst);
// dst (q8_0 or q4_0) = src (f32, bf16 or f16) quantized block by block, as ggml's reference.
void quantize(const Tensor& src, const Tensor& dst);

}  // namespace bb::cpu
