// matmul and linear, with their gradient rules (each a pair of matmuls).
#include "ops/matmul_grad.h"
#include "ops/ops.h"
#include "ops/record.h"

namespace bb {
namespace {

struct MatmulPlan {
  MatmulArgs args;
  std::vector<int64_t> out_dims;
};

MatmulPlan plan_matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  constexpr std::string_view op = "matmul";
  check_float(op, a, "a");
  check_float(op, b, "b");
  check_same_device(op, a, b);
  if (a.dtype() != b.dtype())
    shape_error(op, fmt::format("operands differ in dtype: {} and {}", a.desc(), b.desc()));
  if (a.ndim() < 2 || b.ndim() < 2)
    shape_error(op, fmt::format("operands need at least 2 dims, got {} and {}", a.desc(), b.desc()));
  MatmulPlan p;
  MatmulArgs& m = p.args;
  m.trans_a = ta;
  m.trans_b = tb;
  m.m = ta ? a.dim(-1) : a.dim(-2);
  m.k = ta ? a.dim(-2) : a.dim(-1);
  int64_t bk = tb ? b.dim(-1) : b.dim(-2);
  m.n = tb ? b.dim(-2) : b.dim(-1);
  if (bk != m.k)
    shape_error(op, fmt::format("inner dims differ: a {}{} and b {}{}", a.shape().str(),
                                ta ? " (transposed)" : "", b.shape().str(), tb ? " (transposed)" : ""));
  m.batch = a.shape().prod(0, a.ndim() - 2);
  if (b.ndim() == 2) {
    m.b_batched = false;
  } else {
    if (b.ndim() != a.ndim() || b.shape().prod(0, b.ndim() - 2) != m.batch)
      shape_error(op, fmt::format("batch dims differ: a {} and b {}", a.shape().str(), b.shape().str()));
    m.b_batched = true;
  }
  p.out_dims = a.shape().vec();
  p.out_dims[a.ndim() - 2] = m.m;
  p.out_dims[a.ndim() - 1] = m.n;
  return p;
}

}  // namespace

// Gradient of a (stored as given) for c = op(a) op(b).
Tensor matmul_grad_a(const Tensor& dc, const Tensor& b, bool ta, bool tb) {
  if (!ta) return matmul(dc, b, false, !tb);
  // a stored (k, m) per batch entry against a shared b: (dc op(b)^T)^T per entry.
  if (b.ndim() == 2 && dc.ndim() > 2) return transpose(matmul(dc, b, false, !tb), -1, -2);
  return matmul(b, dc, tb, true);
}

// Gradient of b. A b shared over a's batch takes the sum over the batch: with a plain a
// that is one tall product over the folded rows.
Tensor matmul_grad_b(const Tensor& dc, const Tensor& a, const Tensor& b, bool ta, bool tb) {
  if (b.ndim() == 2 && a.ndim() > 2) {
    if (!ta) {
      Tensor a2 = a.view({-1, a.dim(-1)});
      Tensor d2 = dc.view({-1, dc.dim(-1)});
      return tb ? matmul(d2, a2, true, false) : matmul(a2, d2, true, false);
    }
    Tensor per_batch = tb ? matmul(dc, a, true, true) : matmul(a, dc, false, false);
    return sum(per_batch.view({-1, per_batch.dim(-2), per_batch.dim(-1)}), 0);
  }
  return tb ? matmul(dc, a, true, ta) : matmul(a, dc, !ta, false);
}

Tensor matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  OpScope scope("matmul");
  MatmulPlan p = plan_matmul(a, b, ta, tb);
  Tensor c = Tensor::empty(Shape(p.out_dims), a.dtype(), a.device());
  kernels(a).matmul(a, b, Tensor(), c, p.args);
  if (will_record({a, b})) {
    Tensor sa = a.detach(), sb = b.detach();
    bool need_a = needs_grad(a), need_b = needs_grad(b);
    record("matmul", {a, b}, {c}, [sa, sb, ta, tb, need_a, need_b](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{need_a ? matmul_grad_a(g[0], sb, ta, tb) : Tensor(),
                                 need_b ? matmul_grad_b(g[0], sa, sb, ta, tb) : Tensor()};
    });
  }
  return c;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias, WeightLayout layout) {
  OpScope scope("linear");
  const bool tb = layout == WeightLayout::kOutIn;
  if (w.ndim() != 2) shape_error("linear", fmt::format("weight must be 2-D, got {}", w.desc()));
  MatmulPlan p = plan_matmul(x, w, false, tb);
  if (bias.defined()) {
    check_dtype("linear", bias, DType::F32, "bias");
    if (bias.ndim() != 1 || bias.dim(0) != p.args.n)
      shape_error("linear", fmt::format("bias {} does not match {} outputs", bias.desc(), p.args.n));
  }
  Tensor y = Tensor::empty(Shape(p.out_dims), x.dtype(), x.device());
  kernels(x).matmul(x, w, bias, y, p.args);
  if (will_record({x, w, bias})) {
    Tensor sx = x.detach(), sw = w.detach();
    bool nx = needs_grad(x), nw = needs_grad(w), nb = needs_grad(bias);
    record("linear", {x, w, bias}, {y}, [sx, sw, tb, nx, nw, nb](const std::vector<Tensor>& g) {
      Tensor db;
      if (nb) db = cast(sum_to(g[0], Shape{g[0].dim(-1)}), DType::F32);
      return std::vector<Tensor>{nx ? matmul_grad_a(g[0], sw, false, tb) : Tensor(),
                                 nw ? matmul_grad_b(g[0], sx, sw, false, tb) : Tensor(), db};
    });
  }
  return y;
}

}  // namespace bb
