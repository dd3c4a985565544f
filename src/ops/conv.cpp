// conv2d on channels-last images, with its gradient rule: the input's gradient is the
// backward-data convolution, the weight's (always f32, like a master weight's gradient)
// the backward-weights convolution, which also gives the bias gradient.
#include "ops/ops.h"
#include "ops/record.h"

namespace bb {
namespace {

constexpr std::string_view kOp = "conv2d";

ConvArgs plan_conv(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  check_float(kOp, x, "input");
  check_float(kOp, w, "weight");
  check_same_device(kOp, x, w);
  if (x.ndim() != 4) shape_error(kOp, fmt::format("input must be (N, H, W, C), got {}", x.desc()));
  if (w.ndim() != 4)
    shape_error(kOp, fmt::format("weight must be (O, KH, KW, C/groups), got {}", w.desc()));
  if (w.dtype() != x.dtype())
    shape_error(kOp, fmt::format("weight {} is not in the input's dtype ({})", w.desc(), x.desc()));
  if (p.groups <= 0 || p.stride <= 0 || p.padding < 0)
    shape_error(kOp, fmt::format("stride {}, padding {}, groups {} are not valid", p.stride,
                                 p.padding, p.groups));
  ConvArgs a;
  a.n = x.dim(0), a.h = x.dim(1), a.w = x.dim(2), a.c = x.dim(3);
  a.o = w.dim(0), a.kh = w.dim(1), a.kw = w.dim(2);
  a.stride_h = a.stride_w = p.stride;
  a.pad_h = a.pad_w = p.padding;
  a.groups = p.groups;
  if (a.c % p.groups != 0 || a.o % p.groups != 0 || w.dim(3) * p.groups != a.c)
    shape_error(kOp, fmt::format("weight {} does not fit input {} with {} groups", w.desc(),
                                 x.desc(), p.groups));
  a.oh = (a.h + 2 * a.pad_h - a.kh) / a.stride_h + 1;
  a.ow = (a.w + 2 * a.pad_w - a.kw) / a.stride_w + 1;
  if (a.h + 2 * a.pad_h < a.kh || a.w + 2 * a.pad_w < a.kw)
    shape_error(kOp, fmt::format("kernel {}x{} is larger than the padded input {}", a.kh, a.kw,
                                 x.desc()));
  if (bias.defined() &&
      (bias.dtype() != DType::F32 || bias.ndim() != 1 || bias.dim(0) != a.o))
    shape_error(kOp, fmt::format("bias {} must be f32 ({})", bias.desc(), a.o));
  return a;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  OpScope scope(kOp);
  const ConvArgs a = plan_conv(x, w, bias, p);
  Tensor y = Tensor::empty(Shape{a.n, a.oh, a.ow, a.o}, x.dtype(), x.device());
  kernels(x).conv2d(x, w, bias, y, a);
  if (will_record({x, w, bias})) {
    Tensor sx = x.detach(), sw = w.detach();
    const bool nx = needs_grad(x), nw = needs_grad(w) || needs_grad(bias), nb = needs_grad(bias);
    record(kOp, {x, w, bias}, {y}, [sx, sw, a, nx, nw, nb](const std::vector<Tensor>& g) {
      Tensor dy = cast(g[0], sx.dtype());
      Tensor dx, dw, db;
      if (nx) {
        dx = Tensor::empty(sx.shape(), sx.dtype(), sx.device());
        kernels(sx).conv2d_backward_data(dy, sw, dx, a);
      }
      if (nw) {
        dw = Tensor::empty(sw.shape(), DType::F32, sx.device());
        if (nb) db = Tensor::empty(Shape{a.o}, DType::F32, sx.device());
        kernels(sx).conv2d_backward_weights(sx, dy, dw, db, a);
      }
      return std::vector<Tensor>{dx, dw, db};
    });
  }
  return y;
}

}  // namespace bb
