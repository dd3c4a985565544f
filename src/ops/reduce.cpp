// Sums and means over a dim, the total sum, and sum_to (the gradient of broadcasting).
#include "ops/ops.h"
#include "ops/record.h"

namespace bb {
namespace {

// Repeats g (outer, inner) along a new middle dim of size `dim`: the gradient of a sum.
Tensor expand_middle(const Tensor& g, const Shape& full, int64_t outer, int64_t dim,
                     int64_t inner) {
  Tensor out = Tensor::empty(full, g.dtype(), g.device());
  if (g.numel() == 1) {  // one value everywhere: fill, then add it
    kernels(g).fill(out, 0.0f);
    kernels(g).binary(BinaryOp::Add, out, g, out);
    return out;
  }
  for (int64_t j = 0; j < dim; ++j)
    kernels(g).copy_block(g, out, outer, 1, dim, 0, j, 1, inner);
  return out;
}

}  // namespace

Tensor sum(const Tensor& x, int dim, bool keepdim) {
  OpScope scope("sum");
  check_float("sum", x, "input");
  int d = check_axis("sum", x, dim);
  int64_t outer = x.shape().prod(0, d), n = x.dim(d), inner = x.shape().prod(d + 1, x.ndim());
  std::vector<int64_t> dims = x.shape().vec();
  if (keepdim) dims[d] = 1;
  else dims.erase(dims.begin() + d);
  Tensor out = Tensor::empty(Shape(dims), x.dtype(), x.device());
  kernels(x).reduce_sum(x, out, outer, n, inner);
  Shape full = x.shape();
  record("sum", {x}, {out}, [full, outer, n, inner](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{expand_middle(g[0], full, outer, n, inner)};
  });
  return out;
}

Tensor mean(const Tensor& x, int dim, bool keepdim) {
  int d = check_axis("mean", x, dim);
  return scale(sum(x, d, keepdim), 1.0f / static_cast<float>(x.dim(d)));
}

Tensor sum_all(const Tensor& x) {
  OpScope scope("sum_all");
  check_float("sum_all", x, "input");
  Tensor out = Tensor::empty(Shape{}, DType::F32, x.device());
  kernels(x).reduce_sum(x, out, 1, x.numel(), 1);
  Shape full = x.shape();
  DType dt = x.dtype();
  record("sum_all", {x}, {out}, [full, dt](const std::vector<Tensor>& g) {
    Tensor gd = cast(g[0], dt);
    return std::vector<Tensor>{expand_middle(gd.view({1}), full, 1, full.numel(), 1)};
  });
  return out;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  int64_t inner = shape.numel();
  if (inner == 0 || x.numel() % inner != 0)
    shape_error("sum_to", fmt::format("cannot sum {} to {}", x.shape().str(), shape.str()));
  Tensor flat = x.view({x.numel() / inner, inner});
  NoGradGuard no_grad;  // only used inside gradient rules
  return sum(flat, 0).view(shape.vec());
}

}  // namespace bb
