// Fused linears for selective checkpointing: the cheap op before a matmul (LayerNorm,
// RMSNorm, GELU, SwiGLU's gate) is recomputed in backward instead of its output being kept,
// so the block saves only the matmul inputs' sources. The matmul itself is never recomputed.
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
    const bool want_w = needs_grad(w);
    record("layer_norm_linear", {x, gamma, beta, w, bias}, {y},
           [sx, sg, sb, sw, sbias, eps, layout, want_w](const std::vector<Tensor>& g) {
             const int64_t rows = sx.numel() / sx.dim(-1);
             Tensor n = Tensor::empty(sx.shape(), sx.dtype(), sx.device());
             Tensor mu = Tensor::empty(Shape{rows}, DType::F32, sx.device());
             Tensor rs = Tensor::empty(Shape{rows}, DType::F32, sx.device());
             kernels(sx).layernorm(sx, sg, sb, eps, n, mu, rs);
             Tensor dy = cast(g[0], sx.dtype());
             Tensor dw = want_w ? matmul_grad_b(dy, n, sw, false, trans(layout)) : Tensor();
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
    const bool want_w = needs_grad(w);
    record("activation_linear", {x, w, bias}, {y}, [f, sx, sw, sbias, layout, want_w](const std::vector<Tensor>& g) {
      Tensor a;
      {
        NoGradGuard no_grad;
        a = activation(f, sx);
      }
      Tensor dy = cast(g[0], sx.dtype());
      Tensor dw = want_w ? matmul_grad_b(dy, a, sw, false, trans(layout)) : Tensor();
      Tensor da = matmul_grad_a(dy, sw, false, trans(layout));
      a = Tensor();
      Tensor dx = Tensor::empty(sx.shape(), sx.dtype(), sx.device());
      kernels(sx).activation_backward(f, sx, da, dx);
      return std::vector<Tensor>{dx, dw, bias_grad(dy, sbias)};
    });
  }
  return y;
}

std::vector<Tensor> rms_norm_linears(const Tensor& x, const Tensor& gamma, float eps,
                                     const std::vector<Tensor>& ws, WeightLayout layout) {
  std::vector<Tensor> ys;
  {
    NoGradGuard no_grad;
    Tensor n = rms_norm(x, gamma, eps);
    for (const Tensor& w : ws) ys.push_back(linear(n, w, Tensor(), layout));
  }
  std::vector<Tensor> inputs = {x, gamma};
  inputs.insert(inputs.end(), ws.begin(), ws.end());
  if (will_record(inputs)) {
    Tensor sx = x.detach(), sg = gamma.detach();
    std::vector<Tensor> sws;
    std::vector<bool> want_w;
    for (const Tensor& w : ws) {
      sws.push_back(w.detach());
      want_w.push_back(needs_grad(w));
    }
    record("rms_norm_linears", inputs, ys, [sx, sg, sws, want_w, eps, layout](const std::vector<Tensor>& g) {
      const int64_t rows = sx.numel() / sx.dim(-1);
      Tensor n = Tensor::empty(sx.shape(), sx.dtype(), sx.device());
      Tensor rs = Tensor::empty(Shape{rows}, DType::F32, sx.device());
      kernels(sx).rmsnorm(sx, sg, eps, n, rs);
      std::vector<Tensor> out(2 + sws.size());
      Tensor dn;
      // Last consumer first: the order in which the tape would sum the norm's gradient, so
      // the result is bit-identical to the unfused ops.
      for (size_t i = sws.size(); i-- > 0;) {
        Tensor dy = cast(g[i], sx.dtype());
        out[2 + i] = want_w[i] ? matmul_grad_b(dy, n, sws[i], false, trans(layout)) : Tensor();
        Tensor part = matmul_grad_a(dy, sws[i], false, trans(layout));
        dn = dn.defined() ? add(dn, part) : part;
      }
      n = Tensor();
      out[0] = Tensor::empty(sx.shape(), sx.dtype(), sx.device());
      out[1] = Tensor::empty(sg.shape(), DType::F32, sx.device());
      kernels(sx).rmsnorm_backward(dn, sx, sg, rs, out[0], out[1]);
      return out;
    });
  }
  return ys;
}

Tensor swiglu_linear(const Tensor& gate, const Tensor& up, const Tensor& w, WeightLayout layout) {
  Tensor y;
  {
    NoGradGuard no_grad;
    y = linear(mul(silu(gate), up), w, Tensor(), layout);
  }
  if (will_record({gate, up, w})) {
    Tensor sg = gate.detach(), su = up.detach(), sw = w.detach();
    const bool want_w = needs_grad(w);
    record("swiglu_linear", {gate, up, w}, {y}, [sg, su, sw, layout, want_w](const std::vector<Tensor>& g) {
      Tensor s = silu(sg);
      Tensor dy = cast(g[0], sg.dtype());
      Tensor dw = want_w ? matmul_grad_b(dy, mul(s, su), sw, false, trans(layout)) : Tensor();
      Tensor dp = matmul_grad_a(dy, sw, false, trans(layout));  // d(silu(gate) * up)
      Tensor du = mul(dp, s);
      s = Tensor();
      Tensor dgate = Tensor::empty(sg.shape(), sg.dtype(), sg.device());
      kernels(sg).activation_backward(Activation::Silu, sg, mul(dp, su), dgate);
      return std::vector<Tensor>{dgate, du, dw};
    });
  }
  return y;
}

}  // namespace bb
