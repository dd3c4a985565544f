// LayerNorm and RMSNorm over the last dim. Statistics are f32 and saved for backward
// whatever the activation dtype; gamma and beta stay f32 (they are master weights).
#include "ops/ops.h"
#include "ops/record.h"

namespace bb {
namespace {

void check_norm(std::string_view op, const Tensor& x, const Tensor& gamma, const Tensor& beta) {
  check_float(op, x, "input");
  check_dtype(op, gamma, DType::F32, "weight");
  if (gamma.ndim() != 1 || gamma.dim(0) != x.dim(-1))
    shape_error(op, fmt::format("weight {} does not match input {}", gamma.desc(), x.desc()));
  if (beta.defined() && beta.shape() != gamma.shape())
    shape_error(op, fmt::format("bias {} does not match weight {}", beta.desc(), gamma.desc()));
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps) {
  OpScope scope("layer_norm");
  check_norm("layer_norm", x, gamma, beta);
  int64_t rows = x.numel() / x.dim(-1);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mu = Tensor::empty(Shape{rows}, DType::F32, x.device());
  Tensor rs = Tensor::empty(Shape{rows}, DType::F32, x.device());
  kernels(x).layernorm(x, gamma, beta, eps, y, mu, rs);
  if (will_record({x, gamma, beta})) {
    Tensor sx = x.detach(), sg = gamma.detach();
    bool has_beta = beta.defined();
    record("layer_norm", {x, gamma, beta}, {y}, [sx, sg, mu, rs, has_beta](const std::vector<Tensor>& g) {
      Tensor dx = Tensor::empty(sx.shape(), sx.dtype(), sx.device());
      Tensor dg = Tensor::empty(sg.shape(), DType::F32, sx.device());
      Tensor db = has_beta ? Tensor::empty(sg.shape(), DType::F32, sx.device()) : Tensor();
      kernels(sx).layernorm_backward(cast(g[0], sx.dtype()), sx, sg, mu, rs, dx, dg, db);
      return std::vector<Tensor>{dx, dg, db};
    });
  }
  return y;
}

Tensor rms_norm(const Tensor& x, const Tensor& gamma, float eps) {
  OpScope scope("rms_norm");
  check_norm("rms_norm", x, gamma, Tensor());
  int64_t rows = x.numel() / x.dim(-1);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor rs = Tensor::empty(Shape{rows}, DType::F32, x.device());
  kernels(x).rmsnorm(x, gamma, eps, y, rs);
  if (will_record({x, gamma})) {
    Tensor sx = x.detach(), sg = gamma.detach();
    record("rms_norm", {x, gamma}, {y}, [sx, sg, rs](const std::vector<Tensor>& g) {
      Tensor dx = Tensor::empty(sx.shape(), sx.dtype(), sx.device());
      Tensor dg = Tensor::empty(sg.shape(), DType::F32, sx.device());
      kernels(sx).rmsnorm_backward(cast(g[0], sx.dtype()), sx, sg, rs, dx, dg);
      return std::vector<Tensor>{dx, dg};
    });
  }
  return y;
}

}  // namespace bb
