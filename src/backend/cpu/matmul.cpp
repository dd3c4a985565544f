// Matmul through oneDNN. Primitives are expensive to create and a training loop repeats the
// same shapes, so each (shape, dtype, layout) primitive is made once and cached.
#include <fmt/format.h>

#include <dnnl.hpp>
#include <map>
#include <mutex>
#include <tuple>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/dnnl_common.h"
#include "core/error.h"

namespace bb {
namespace {

using dnnl::memory;

// Everything that decides the primitive.
using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, bool, bool, bool, bool, bool, DType,
                       DType>;

struct Cached {
  dnnl::matmul prim;
  memory::desc a, b, bias, c;
};

std::mutex g_mu;
std::map<Key, Cached> g_cache;

}  // namespace

void cpu::clear_matmul_primitives() {
  std::lock_guard<std::mutex> lock(g_mu);
  g_cache.clear();
}

namespace {

Cached make(const MatmulArgs& p, bool has_bias, DType in, DType out) {
  const int64_t bb = p.b_batched ? p.batch : 1;
  // Transposed operands are described by strides, so oneDNN reads them in place.
  memory::dims a_strides = p.trans_a ? memory::dims{p.m * p.k, 1, p.m}
                                     : memory::dims{p.m * p.k, p.k, 1};
  memory::dims b_strides = p.trans_b ? memory::dims{p.k * p.n, 1, p.k}
                                     : memory::dims{p.k * p.n, p.n, 1};
  Cached c;
  c.a = memory::desc({p.batch, p.m, p.k}, cpu::dnnl_type(in, "matmul"), a_strides);
  c.b = memory::desc({bb, p.k, p.n}, cpu::dnnl_type(in, "matmul"), b_strides);
  c.c = memory::desc({p.batch, p.m, p.n}, cpu::dnnl_type(out, "matmul"), memory::format_tag::abc);
  if (has_bias) c.bias = memory::desc({1, 1, p.n}, memory::data_type::f32, memory::format_tag::abc);
  dnnl::primitive_attr attr;
  if (p.accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  dnnl::matmul::desc desc = has_bias ? dnnl::matmul::desc(c.a, c.b, c.bias, c.c)
                                     : dnnl::matmul::desc(c.a, c.b, c.c);
  dnnl::matmul::primitive_desc pd(desc, attr, cpu::dnnl_engine().engine);
  c.prim = dnnl::matmul(pd);
  return c;
}

}  // namespace

namespace {

void run_dnnl(const void* a, const void* b, const void* bias, void* c, DType in, DType out,
              const MatmulArgs& args) {
  MatmulArgs p = args;
  // A weight shared by every batch entry of a plain (not transposed) a: one tall product.
  if (!p.b_batched && !p.trans_a && p.batch > 1) {
    p.m *= p.batch;
    p.batch = 1;
  }
  Key key{p.batch, p.m, p.n, p.k, p.trans_a, p.trans_b, p.b_batched, p.accumulate, bias != nullptr, in, out};
  const Cached* prim;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_cache.find(key);
    if (it == g_cache.end()) it = g_cache.emplace(key, make(p, bias != nullptr, in, out)).first;
    prim = &it->second;
  }
  auto& e = cpu::dnnl_engine();
  memory am(prim->a, e.engine, const_cast<void*>(a));
  memory bm(prim->b, e.engine, const_cast<void*>(b));
  memory cm(prim->c, e.engine, c);
  std::unordered_map<int, memory> io{{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
  if (bias) io.emplace(DNNL_ARG_BIAS, memory(prim->bias, e.engine, const_cast<void*>(bias)));
  prim->prim.execute(e.stream, io);
  e.stream.wait();
}

// oneDNN 2.6 has no f16 matmul on CPUs: f16 operands are widened into f32 workspace
// tensors and multiplied in f32, which is also what an f16 product accumulates in where
// one exists. The copies go through the allocator (counted as workspace, released after the
// call; the meta backend counts the same, see MetaBackend::matmul), never into buffers
// that outlive the call or that each OpenMP worker would see as its own.
Tensor widen(const Tensor& t) {
  Tensor w = Tensor::empty(t.shape(), DType::F32, t.device(), Category::Workspace);
  const auto* src = t.data<_Float16>();
  float* dst = w.data<float>();
  const int64_t n = t.numel();
#pragma omp parallel for simd if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]);
  return w;
}

// oneDNN 2.6's AMX bf16 matmul (brg:avx512_core_amx_bf16) returns wrong values, some of them
// read from memory it does not own, when 48 < n < 64 and the product has few rows (seen at
// m <= 32, with either weight layout; m >= 33 and every other n up to 700 were right). Those
// products are small, so they go the widened f32 way on every CPU.
bool bf16_kernel_is_wrong(const MatmulArgs& args) {
  const int64_t rows = !args.b_batched && !args.trans_a ? args.m * args.batch : args.m;  // as run_dnnl folds them
  return args.n > 48 && args.n < 64 && rows <= 64;
}

}  // namespace

void CpuBackend::matmul(const Tensor& a, const Tensor& b, const Tensor& bias, const Tensor& c,
                        const MatmulArgs& args) {
  const void* bias_ptr = bias.defined() ? bias.raw() : nullptr;
  // an AVX2-only CPU (see dnnl_common.h), or a product oneDNN gets wrong
  if (a.dtype() == DType::BF16 && (!cpu::dnnl_has_bf16() || bf16_kernel_is_wrong(args))) {
    const std::vector<float> a32 = cpu::widen_bf16(a.raw(), a.numel()), b32 = cpu::widen_bf16(b.raw(), b.numel());
    if (c.dtype() != DType::BF16) return run_dnnl(a32.data(), b32.data(), bias_ptr, c.raw(), DType::F32, c.dtype(), args);
    std::vector<float> c32 = args.accumulate ? cpu::widen_bf16(c.raw(), c.numel()) : std::vector<float>(c.numel());
    run_dnnl(a32.data(), b32.data(), bias_ptr, c32.data(), DType::F32, DType::F32, args);
    return cpu::narrow_to_bf16(c32, c.raw());
  }
  if (a.dtype() != DType::F16) return run_dnnl(a.raw(), b.raw(), bias_ptr, c.raw(), a.dtype(), c.dtype(), args);
  const Tensor a32 = widen(a), b32 = widen(b);
  if (c.dtype() != DType::F16)
    return run_dnnl(a32.raw(), b32.raw(), bias_ptr, c.raw(), DType::F32, c.dtype(), args);
  const Tensor c32 = args.accumulate ? widen(c) : Tensor::empty(c.shape(), DType::F32, c.device(), Category::Workspace);
  run_dnnl(a32.raw(), b32.raw(), bias_ptr, c32.raw(), DType::F32, DType::F32, args);
  const float* src = c32.data<float>();
  auto* dst = c.data<_Float16>();
  const int64_t n = c.numel();
#pragma omp parallel for simd if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<_Float16>(src[i]);
}

}  // namespace bb
