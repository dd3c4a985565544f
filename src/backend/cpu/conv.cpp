// 2-D convolution through oneDNN on channels-last tensors: forward, backward-data and
// backward-weights, f32 or bf16. Activations are nhwc; weights are stored (O, KH, KW, I/G)
// (gohwi) and reordered to the blocked layout oneDNN picks, once per call (weights are small
// next to activations). Primitives are cached by shape, as matmul's are.
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
using Tag = memory::format_tag;

// One convolution shape: the three primitives and the weight layouts they chose. A
// reordered weight buffer is kept with each (it is reused by every call of that shape).
struct ConvPrims {
  memory::desc src, dst, user_w, user_dw, bias;
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data bwd_data;
  memory::desc bwd_data_w;
  dnnl::convolution_backward_weights bwd_weights;
  memory::desc bwd_weights_dw;
  bool has_bwd_data = false, has_bwd_weights = false;
  memory fwd_w_mem, bwd_w_mem, dw_mem;  // blocked buffers, made on first use
};

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, DType>;

Key key_of(const ConvArgs& a, bool bias, DType dt) {
  return {a.n, a.h, a.w, a.c, a.o, a.kh, a.kw, a.oh, a.ow, a.stride_h, a.stride_w, a.pad_h,
          a.pad_w, a.groups, bias, dt};
}

memory::dims weight_dims(const ConvArgs& a) {
  if (a.groups == 1) return {a.o, a.c, a.kh, a.kw};
  return {a.groups, a.o / a.groups, a.c / a.groups, a.kh, a.kw};
}

std::mutex g_mu;
std::map<Key, ConvPrims> g_cache;

}  // namespace

void cpu::clear_conv_primitives() {
  std::lock_guard<std::mutex> lock(g_mu);
  g_cache.clear();
}

namespace {

ConvPrims make(const ConvArgs& a, bool has_bias, DType dt) {
  const auto t = cpu::dnnl_type(dt, "conv2d");
  const auto f32 = memory::data_type::f32;
  ConvPrims p;
  p.src = memory::desc({a.n, a.c, a.h, a.w}, t, Tag::nhwc);
  p.dst = memory::desc({a.n, a.o, a.oh, a.ow}, t, Tag::nhwc);
  const Tag wtag = a.groups == 1 ? Tag::ohwi : Tag::gohwi;
  p.user_w = memory::desc(weight_dims(a), t, wtag);
  p.user_dw = memory::desc(weight_dims(a), f32, wtag);
  if (has_bias) p.bias = memory::desc({a.o}, f32, Tag::x);
  memory::desc any_w(weight_dims(a), t, Tag::any);
  const memory::dims strides{a.stride_h, a.stride_w}, pad{a.pad_h, a.pad_w};
  const memory::dims pad_r{(a.oh - 1) * a.stride_h + a.kh - a.h - a.pad_h,
                           (a.ow - 1) * a.stride_w + a.kw - a.w - a.pad_w};
  auto& e = cpu::dnnl_engine().engine;
  auto fd = has_bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                       dnnl::algorithm::convolution_direct, p.src,
                                                       any_w, p.bias, p.dst, strides, pad, pad_r)
                     : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                       dnnl::algorithm::convolution_direct, p.src,
                                                       any_w, p.dst, strides, pad, pad_r);
  p.fwd_pd = dnnl::convolution_forward::primitive_desc(fd, e);
  p.fwd = dnnl::convolution_forward(p.fwd_pd);
  return p;
}

void ensure_bwd_data(ConvPrims& p, const ConvArgs& a, DType dt) {
  if (p.has_bwd_data) return;
  memory::desc any_w(weight_dims(a), cpu::dnnl_type(dt, "conv2d"), Tag::any);
  const memory::dims pad_r{(a.oh - 1) * a.stride_h + a.kh - a.h - a.pad_h,
                           (a.ow - 1) * a.stride_w + a.kw - a.w - a.pad_w};
  dnnl::convolution_backward_data::desc d(dnnl::algorithm::convolution_direct, p.src, any_w, p.dst,
                                          {a.stride_h, a.stride_w}, {a.pad_h, a.pad_w}, pad_r);
  dnnl::convolution_backward_data::primitive_desc pd(d, cpu::dnnl_engine().engine, p.fwd_pd);
  p.bwd_data = dnnl::convolution_backward_data(pd);
  p.bwd_data_w = pd.weights_desc();
  p.has_bwd_data = true;
}

void ensure_bwd_weights(ConvPrims& p, const ConvArgs& a, bool has_bias) {
  if (p.has_bwd_weights) return;
  const auto f32 = memory::data_type::f32;
  memory::desc any_dw(weight_dims(a), f32, Tag::any);
  const memory::dims strides{a.stride_h, a.stride_w}, pad{a.pad_h, a.pad_w};
  const memory::dims pad_r{(a.oh - 1) * a.stride_h + a.kh - a.h - a.pad_h,
                           (a.ow - 1) * a.stride_w + a.kw - a.w - a.pad_w};
  memory::desc dbias({a.o}, f32, Tag::x);
  auto d = has_bias ? dnnl::convolution_backward_weights::desc(
                          dnnl::algorithm::convolution_direct, p.src, any_dw, dbias, p.dst,
                          strides, pad, pad_r)
                    : dnnl::convolution_backward_weights::desc(
                          dnnl::algorithm::convolution_direct, p.src, any_dw, p.dst, strides,
                          pad, pad_r);
  dnnl::convolution_backward_weights::primitive_desc pd(d, cpu::dnnl_engine().engine, p.fwd_pd);
  p.bwd_weights = dnnl::convolution_backward_weights(pd);
  p.bwd_weights_dw = pd.diff_weights_desc();
  p.has_bwd_weights = true;
}

ConvPrims& prims(const ConvArgs& a, bool has_bias, DType dt) {
  // The caller holds g_mu; entries of a std::map never move.
  Key k = key_of(a, has_bias, dt);
  auto it = g_cache.find(k);
  if (it == g_cache.end()) it = g_cache.emplace(k, make(a, has_bias, dt)).first;
  return it->second;
}

// The weights in the layout `want`: the user's buffer itself when it already is, else a
// reorder into `buf` (made once per shape).
memory weights_as(const memory::desc& want, const memory::desc& user, void* data, memory& buf) {
  auto& e = cpu::dnnl_engine();
  memory user_mem(user, e.engine, data);
  if (want == user) return user_mem;
  if (!buf) buf = memory(want, e.engine);
  dnnl::reorder(user_mem, buf).execute(e.stream, user_mem, buf);
  return buf;
}

void check_dtypes(const char* op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    throw ShapeError(fmt::format("{} wants tensors of one dtype, got {} and {}", op,
                                 dtype_name(a.dtype()), dtype_name(b.dtype())));
}

}  // namespace

namespace {

void run_forward(const void* x, const void* w, const void* bias, void* y, const ConvArgs& a, DType dt) {
  std::lock_guard<std::mutex> lock(g_mu);
  ConvPrims& p = prims(a, bias != nullptr, dt);
  auto& e = cpu::dnnl_engine();
  memory wm = weights_as(p.fwd_pd.weights_desc(), p.user_w, const_cast<void*>(w), p.fwd_w_mem);
  std::unordered_map<int, memory> io{{DNNL_ARG_SRC, memory(p.src, e.engine, const_cast<void*>(x))},
                                     {DNNL_ARG_WEIGHTS, wm},
                                     {DNNL_ARG_DST, memory(p.dst, e.engine, y)}};
  if (bias) io.emplace(DNNL_ARG_BIAS, memory(p.bias, e.engine, const_cast<void*>(bias)));
  p.fwd.execute(e.stream, io);
  e.stream.wait();
}

void run_backward_data(const void* dy, const void* w, void* dx, const ConvArgs& a, DType dt) {
  std::lock_guard<std::mutex> lock(g_mu);
  ConvPrims& p = prims(a, false, dt);
  ensure_bwd_data(p, a, dt);
  auto& e = cpu::dnnl_engine();
  memory wm = weights_as(p.bwd_data_w, p.user_w, const_cast<void*>(w), p.bwd_w_mem);
  p.bwd_data.execute(e.stream, {{DNNL_ARG_DIFF_DST, memory(p.dst, e.engine, const_cast<void*>(dy))},
                                {DNNL_ARG_WEIGHTS, wm},
                                {DNNL_ARG_DIFF_SRC, memory(p.src, e.engine, dx)}});
  e.stream.wait();
}

void run_backward_weights(const void* x, const void* dy, void* dw, void* dbias, const ConvArgs& a, DType dt) {
  std::lock_guard<std::mutex> lock(g_mu);
  ConvPrims& p = prims(a, dbias != nullptr, dt);
  ensure_bwd_weights(p, a, dbias != nullptr);
  auto& e = cpu::dnnl_engine();
  memory user_dw(p.user_dw, e.engine, dw);
  const bool direct = p.bwd_weights_dw == p.user_dw;
  if (!direct && !p.dw_mem) p.dw_mem = memory(p.bwd_weights_dw, e.engine);
  memory dwm = direct ? user_dw : p.dw_mem;
  std::unordered_map<int, memory> io{{DNNL_ARG_SRC, memory(p.src, e.engine, const_cast<void*>(x))},
                                     {DNNL_ARG_DIFF_DST, memory(p.dst, e.engine, const_cast<void*>(dy))},
                                     {DNNL_ARG_DIFF_WEIGHTS, dwm}};
  if (dbias) io.emplace(DNNL_ARG_DIFF_BIAS, memory(memory::desc({a.o}, memory::data_type::f32, Tag::x), e.engine, dbias));
  p.bwd_weights.execute(e.stream, io);
  if (!direct) dnnl::reorder(dwm, user_dw).execute(e.stream, dwm, user_dw);
  e.stream.wait();
}

// bf16 where oneDNN has no bf16 convolution (AVX2-only CPUs): f32 copies, see dnnl_common.h.
bool widened(const Tensor& t) { return t.dtype() == DType::BF16 && !cpu::dnnl_has_bf16(); }
std::vector<float> f32_copy(const Tensor& t) { return cpu::widen_bf16(t.raw(), t.numel()); }

}  // namespace

void CpuBackend::conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                        const ConvArgs& a) {
  check_dtypes("conv2d", x, w);
  check_dtypes("conv2d", x, y);
  const void* b = bias.defined() ? bias.raw() : nullptr;
  if (!widened(x)) return run_forward(x.raw(), w.raw(), b, y.raw(), a, x.dtype());
  std::vector<float> y32(static_cast<size_t>(y.numel()));
  run_forward(f32_copy(x).data(), f32_copy(w).data(), b, y32.data(), a, DType::F32);
  cpu::narrow_to_bf16(y32, y.raw());
}

void CpuBackend::conv2d_backward_data(const Tensor& dy, const Tensor& w, const Tensor& dx,
                                      const ConvArgs& a) {
  check_dtypes("conv2d_backward_data", dy, w);
  check_dtypes("conv2d_backward_data", dy, dx);
  if (!widened(dy)) return run_backward_data(dy.raw(), w.raw(), dx.raw(), a, dy.dtype());
  std::vector<float> dx32(static_cast<size_t>(dx.numel()));
  run_backward_data(f32_copy(dy).data(), f32_copy(w).data(), dx32.data(), a, DType::F32);
  cpu::narrow_to_bf16(dx32, dx.raw());
}

void CpuBackend::conv2d_backward_weights(const Tensor& x, const Tensor& dy, const Tensor& dw,
                                         const Tensor& dbias, const ConvArgs& a) {
  check_dtypes("conv2d_backward_weights", x, dy);
  if (dw.dtype() != DType::F32 || (dbias.defined() && dbias.dtype() != DType::F32))
    throw ShapeError("conv2d_backward_weights writes f32 weight and bias gradients");
  void* db = dbias.defined() ? dbias.raw() : nullptr;
  if (!widened(x)) return run_backward_weights(x.raw(), dy.raw(), dw.raw(), db, a, x.dtype());
  run_backward_weights(f32_copy(x).data(), f32_copy(dy).data(), dw.raw(), db, a, DType::F32);
}

}  // namespace bb
