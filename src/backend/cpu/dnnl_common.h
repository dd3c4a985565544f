// What the oneDNN kernels share: one engine and stream for the process, and the mapping of
// dtypes to oneDNN's (an unsupported dtype is an error naming the op).
#pragma once
#include <fmt/format.h>

#include <dnnl.hpp>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace bb::cpu {

struct DnnlEngine {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

inline DnnlEngine& dnnl_engine() {
  static DnnlEngine e;
  return e;
}

inline dnnl::memory::data_type dnnl_type(DType t, std::string_view op) {
  switch (t) {
    case DType::F32: return dnnl::memory::data_type::f32;
    case DType::BF16: return dnnl::memory::data_type::bf16;
    default: throw ShapeError(fmt::format("{} does not take {} tensors", op, dtype_name(t)));
  }
}

// Whether oneDNN multiplies and convolves bf16 on this CPU. oneDNN 2.6 does from AVX-512 up
// (natively with AVX512_BF16, emulated on AVX-512 without it) and refuses bf16 on AVX2-only
// CPUs. Asked once, by making a 1 x 1 bf16 product.
bool dnnl_has_bf16();

// Where oneDNN has no bf16 kernels, bf16 operands are widened to f32, multiplied or convolved
// in f32 (what a bf16 product accumulates in anyway: bf16 x bf16 is exact in f32) and the
// result rounded back. The f32 copies live in these buffers for one call, outside the
// allocator: they are this CPU's way of running the op, not memory the op needs, so the counts
// (and the planner's predictions of them) stay the same on every CPU.
std::vector<float> widen_bf16(const void* bf16, int64_t n);
void narrow_to_bf16(const std::vector<float>& f32, void* bf16);

// The primitives matmul.cpp and conv.cpp keep for each shape they have run (their half of
// CpuBackend::release_caches).
void clear_matmul_primitives();
void clear_conv_primitives();

}  // namespace bb::cpu
