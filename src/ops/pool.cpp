// Pooling on channels-last images (max, average, global average) and flatten, with their
// gradient rules. Global average pooling is an average pool whose window is the image.
#include "ops/ops.h"
#include "ops/record.h"

namespace bb {
namespace {

PoolArgs plan_pool(std::string_view op, const Tensor& x, int64_t kh, int64_t kw,
                   const Pool2dParams& p) {
  check_float(op, x, "input");
  if (x.ndim() != 4) shape_error(op, fmt::format("input must be (N, H, W, C), got {}", x.desc()));
  PoolArgs a;
  a.n = x.dim(0), a.h = x.dim(1), a.w = x.dim(2), a.c = x.dim(3);
  a.kh = kh, a.kw = kw;
  a.stride_h = a.stride_w = p.stride > 0 ? p.stride : p.kernel;
  a.pad_h = a.pad_w = p.padding;
  if (kh <= 0 || kw <= 0 || p.padding < 0 || 2 * p.padding > std::min(kh, kw) ||
      a.h + 2 * a.pad_h < kh || a.w + 2 * a.pad_w < kw)
    shape_error(op, fmt::format("window {}x{} with padding {} does not fit input {}", kh, kw,
                                p.padding, x.desc()));
  a.oh = (a.h + 2 * a.pad_h - kh) / a.stride_h + 1;
  a.ow = (a.w + 2 * a.pad_w - kw) / a.stride_w + 1;
  return a;
}

Tensor avg_pool(std::string_view op, const Tensor& x, const PoolArgs& a) {
  Tensor y = Tensor::empty(Shape{a.n, a.oh, a.ow, a.c}, x.dtype(), x.device());
  kernels(x).avg_pool2d(x, y, a);
  Shape in = x.shape();
  DType dt = x.dtype();
  Device dev = x.device();
  record(op, {x}, {y}, [a, in, dt, dev](const std::vector<Tensor>& g) {
    Tensor dx = Tensor::empty(in, dt, dev);
    kernels(dx).avg_pool2d_backward(g[0], dx, a);
    return std::vector<Tensor>{dx};
  });
  return y;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dParams& p) {
  OpScope scope("max_pool2d");
  const PoolArgs a = plan_pool("max_pool2d", x, p.kernel, p.kernel, p);
  Tensor y = Tensor::empty(Shape{a.n, a.oh, a.ow, a.c}, x.dtype(), x.device());
  kernels(x).max_pool2d(x, y, a);
  if (will_record({x})) {
    Tensor sx = x.detach(), sy = y.detach();
    record("max_pool2d", {x}, {y}, [sx, sy, a](const std::vector<Tensor>& g) {
      Tensor dx = Tensor::empty(sx.shape(), sx.dtype(), sx.device());
      kernels(sx).max_pool2d_backward(sx, sy, g[0], dx, a);
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p) {
  OpScope scope("avg_pool2d");
  return avg_pool("avg_pool2d", x, plan_pool("avg_pool2d", x, p.kernel, p.kernel, p));
}

Tensor global_avg_pool(const Tensor& x) {
  OpScope scope("global_avg_pool");
  if (x.ndim() != 4)
    shape_error("global_avg_pool", fmt::format("input must be (N, H, W, C), got {}", x.desc()));
  const PoolArgs a = plan_pool("global_avg_pool", x, x.dim(1), x.dim(2), Pool2dParams{.kernel = 1});
  return reshape(avg_pool("global_avg_pool", x, a), {x.dim(0), x.dim(3)});
}

Tensor flatten(const Tensor& x) {
  check_defined("flatten", x, "input");
  if (x.ndim() < 1) shape_error("flatten", fmt::format("input {} has no batch dim", x.desc()));
  return reshape(x, {x.dim(0), x.dim(0) ? x.numel() / x.dim(0) : 0});
}

}  // namespace bb
