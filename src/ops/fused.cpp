// Fused linears for selective checkpointing: the cheap op before a matmul (LayerNorm,
// GELU) is recomputed in backward instead of its output being kept, so the block saves
// only the matmul inputs' sources. The matmul itself is never recomputed.
#include "ops/matmul_grad.h"
#include "ops/ops.h"
#include "ops/record.h"

namespace bb {
namespace {

bool trans(WeightLayout l) { return l == WeightLayout::kOutIn; }

Tensor bias_grad(const Tensor& dy, const Tensor& bias) {
  return bias.defined() ? cast(sum_to(dy, Shape{dy.dim(-1)}), DType::F32) : Tensor();
}

}  // namespace

Tensor layer_norm_linear(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                         const Tensor& w, const Tensor& bias, WeightLayout layout) {
  Tensor y;
  {
    NoGradGuard no_grad;
    y = linear(layer_norm(x, gamma, beta, eps), w, bias, layout);  // the norm's output dies here
  }
  if (will_record({x, gamma, beta, w, bias})) {
    Tensor sx = x.detach(), sg = gamma.detach(), sb = beta.defined() ? beta.detach() : Tensor(),
           sw = w.detach(), sbias = bias.defined() ? bias.detach() : Tensor();
    record("layer_norm_linear", {x, gamma, beta, w, bias}, {y},
           [sx, sg, sb, sw, sbias, eps, layout](const std::vector<Tensor>& g) {
             const int64_t rows = sx.numel() / sx.dim(-1);
             Tensor n = Tensor::empty(sx.shape(), sx.dtype(), sx.device());
             Tensor mu = Tensor::empty(Shape{rows}, DType::F32, sx.device());
             Tensor rs = Tensor::empty(Shape{rows}, DType::F32, sx.device());
             kernels(sx).layernorm(sx, sg, sb, eps, n, mu, rs);
             Tensor dy = cast(g[0], sx.dtype());
             Tensor dw = matmul_grad_b(dy, n, sw, false, trans(layout));
             Tensor dn = matmul_grad_a(dy, sw, false, trans(layout));
             n = Tensor();
             Tensor dx = Tensor::empty(sx.shape(), sx.dtype(), sx.device());
             Tensor dg = Tensor::empty(sg.shape(), DType::F32, sx.device());
             Tensor db = sb.defined() ? Tensor::empty(sg.shape(), DType::F32, sx.device()) : Tensor();
             kernels(sx).layernorm_backward(dn, sx, sg, mu, rs, dx, dg, db);
             return std::vector<Tensor>{dx, dg, db, dw, bias_grad(dy, sbias)};
           });
  }
  return y;
}

Tensor activation_linear(Activation f, const Tensor& x, const Tensor& w, const Tensor& bias,
                         WeightLayout layout) {
  Tensor y;
  {
    NoGradGuard no_grad;
    y = linear(activation(f, x), w, bias, layout);
  }
  if (will_record({x, w, bias})) {
    Tensor sx = x.detach(), sw = w.detach(), sbias = bias.defined() ? bias.detach() : Tensor();
    record("activation_linear", {x, w, bias}, {y}, [f, sx, sw, sbias, layout](const std::vector<Tensor>& g) {
      Tensor a;
      {
        NoGradGuard no_grad;
        a = activation(f, sx);
      }
      Tensor dy = cast(g[0], sx.dtype());
      Tensor dw = matmul_grad_b(dy, a, sw, false, trans(layout));
      Tensor da = matmul_grad_a(dy, sw, false, trans(layout));
      a = Tensor();
      Tensor dx = Tensor::empty(sx.shape(), sx.dtype(), sx.device());
      kernels(sx).activation_backward(f, sx, da, dx);
      return std::vector<Tensor>{dx, dw, bias_grad(dy, sbias)};
    });
  }
  return y;
}

}  // namespace bb
