// BatchNorm (fused with a residual add and ReLU/ReLU6) and GroupNorm over channels-last
// activations, with their gradient rules. Statistics are f32 whatever the activation dtype;
// gamma and beta are f32 master weights. Running statistics are the caller's business:
// batch_norm only reports the batch's (nn/vision_layers.h merges them).
#include "ops/ops.h"
#include "ops/record.h"

namespace bb {
namespace {

void check_affine(std::string_view op, const Tensor& x, const Tensor& gamma, const Tensor& beta) {
  check_float(op, x, "input");
  check_dtype(op, gamma, DType::F32, "weight");
  check_dtype(op, beta, DType::F32, "bias");
  if (x.ndim() < 2) shape_error(op, fmt::format("input {} needs a batch and a channel dim", x.desc()));
  if (gamma.ndim() != 1 || gamma.dim(0) != x.dim(-1) || beta.shape() != gamma.shape())
    shape_error(op, fmt::format("weight {} and bias {} do not match the channels of input {}",
                                gamma.desc(), beta.desc(), x.desc()));
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                  const Tensor& running_mean, const Tensor& running_var, bool batch_stats,
                  float eps, const Tensor& residual, FusedAct act, BatchNormStats* stats) {
  constexpr std::string_view op = "batch_norm";
  OpScope scope(op);
  check_affine(op, x, gamma, beta);
  const int64_t C = x.dim(-1), rows = x.numel() / std::max<int64_t>(C, 1);
  if (!batch_stats) {
    check_dtype(op, running_mean, DType::F32, "running_mean");
    check_dtype(op, running_var, DType::F32, "running_var");
    if (running_mean.shape() != gamma.shape() || running_var.shape() != gamma.shape())
      shape_error(op, fmt::format("running statistics {} and {} do not match {} channels",
                                  running_mean.desc(), running_var.desc(), C));
  }
  if (residual.defined() && (residual.shape() != x.shape() || residual.dtype() != x.dtype()))
    shape_error(op, fmt::format("residual {} does not match input {}", residual.desc(), x.desc()));
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mean = Tensor::empty(Shape{C}, DType::F32, x.device());
  Tensor var = Tensor::empty(Shape{C}, DType::F32, x.device());
  Tensor rstd = Tensor::empty(Shape{C}, DType::F32, x.device());
  const BatchNormArgs args{eps, batch_stats, act};
  kernels(x).batchnorm(x, gamma, beta, residual, running_mean, running_var, args, mean, var, rstd, y);
  if (stats) *stats = BatchNormStats{mean, var, rows};
  if (will_record({x, gamma, beta, residual})) {
    Tensor sx = x.detach(), sy = y.detach(), sg = gamma.detach();
    const bool nres = needs_grad(residual);
    record(op, {x, gamma, beta, residual}, {y},
           [sx, sy, sg, mean, rstd, args, nres](const std::vector<Tensor>& g) {
             Tensor dx = Tensor::empty(sx.shape(), sx.dtype(), sx.device());
             Tensor dg = Tensor::empty(sg.shape(), DType::F32, sx.device());
             Tensor db = Tensor::empty(sg.shape(), DType::F32, sx.device());
             Tensor dr = nres ? Tensor::empty(sx.shape(), sx.dtype(), sx.device()) : Tensor();
             kernels(sx).batchnorm_backward(cast(g[0], sx.dtype()), sx, sy, sg, mean, rstd, args,
                                            dx, dg, db, dr);
             return std::vector<Tensor>{dx, dg, db, dr};
           });
  }
  return y;
}

Tensor group_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, int64_t groups,
                  float eps) {
  constexpr std::string_view op = "group_norm";
  OpScope scope(op);
  check_affine(op, x, gamma, beta);
  const int64_t N = x.dim(0), C = x.dim(-1);
  if (groups <= 0 || C % groups != 0)
    shape_error(op, fmt::format("{} channels of input {} do not split into {} groups", C,
                                x.desc(), groups));
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mean = Tensor::empty(Shape{N, groups}, DType::F32, x.device());
  Tensor rstd = Tensor::empty(Shape{N, groups}, DType::F32, x.device());
  kernels(x).groupnorm(x, gamma, beta, groups, eps, y, mean, rstd);
  if (will_record({x, gamma, beta})) {
    Tensor sx = x.detach(), sg = gamma.detach();
    record(op, {x, gamma, beta}, {y}, [sx, sg, mean, rstd, groups](const std::vector<Tensor>& g) {
      Tensor dx = Tensor::empty(sx.shape(), sx.dtype(), sx.device());
      Tensor dg = Tensor::empty(sg.shape(), DType::F32, sx.device());
      Tensor db = Tensor::empty(sg.shape(), DType::F32, sx.device());
      kernels(sx).groupnorm_backward(cast(g[0], sx.dtype()), sx, sg, mean, rstd, groups, dx, dg, db);
      return std::vector<Tensor>{dx, dg, db};
    });
  }
  return y;
}

}  // namespace bb
