// Elementwise ops: binary arithmetic with a repeating right operand, scale, dtype cast and
// the pointwise activations, with their gradient rules.
#include "ops/ops.h"
#include "ops/record.h"

namespace bb {
namespace {

void check_binary(std::string_view op, const Tensor& a, const Tensor& b) {
  check_float(op, a, "a");
  check_float(op, b, "b");
  check_same_device(op, a, b);
  bool suffix = b.ndim() <= a.ndim();
  for (int i = 1; suffix && i <= b.ndim(); ++i) suffix = b.dim(-i) == a.dim(-i);
  if (!(suffix || b.numel() == 1))
    shape_error(op, fmt::format("{} does not repeat over {} (its shape must end a's shape)",
                                b.shape().str(), a.shape().str()));
  if (a.dtype() != b.dtype() && b.dtype() != DType::F32)
    shape_error(op, fmt::format("operand dtypes {} and {} do not mix", a.desc(), b.desc()));
}

Tensor binary_forward(std::string_view op, BinaryOp kind, const Tensor& a, const Tensor& b) {
  OpScope scope(op);
  check_binary(op, a, b);
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  kernels(a).binary(kind, a, b, out);
  return out;
}

// Gradient for the repeating operand: sum over the dims it repeats along, in its dtype.
Tensor reduce_like(const Tensor& g, const Tensor& b) {
  Tensor r = b.numel() == 1 ? sum_all(g).view(b.shape().vec()) : sum_to(g, b.shape());
  return cast(r, b.dtype());
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("add", BinaryOp::Add, a, b);
  Tensor sb = b.detach();
  record("add", {a, b}, {out}, [sb](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{g[0], reduce_like(g[0], sb)};
  });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("sub", BinaryOp::Sub, a, b);
  Tensor sb = b.detach();
  record("sub", {a, b}, {out}, [sb](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{g[0], scale(reduce_like(g[0], sb), -1.0f)};
  });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("mul", BinaryOp::Mul, a, b);
  if (will_record({a, b})) {
    Tensor sa = a.detach(), sb = b.detach();
    bool na = needs_grad(a), nb = needs_grad(b);
    record("mul", {a, b}, {out}, [sa, sb, na, nb](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{na ? mul(g[0], sb) : Tensor(),
                                 nb ? reduce_like(mul(g[0], sa), sb) : Tensor()};
    });
  }
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("div", BinaryOp::Div, a, b);
  if (will_record({a, b})) {
    Tensor sb = b.detach(), so = out.detach();
    bool na = needs_grad(a), nb = needs_grad(b);
    record("div", {a, b}, {out}, [sb, so, na, nb](const std::vector<Tensor>& g) {
      Tensor ga = div(g[0], sb);  // d/da (a / b) = 1 / b; d/db = -(a / b) / b
      return std::vector<Tensor>{na ? ga : Tensor(),
                                 nb ? scale(reduce_like(mul(ga, so), sb), -1.0f) : Tensor()};
    });
  }
  return out;
}

Tensor scale(const Tensor& a, float s) {
  OpScope scope("scale");
  check_float("scale", a, "input");
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  kernels(a).scale_add(a, s, Tensor(), out);
  record("scale", {a}, {out}, [s](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{scale(g[0], s)};
  });
  return out;
}

Tensor cast(const Tensor& a, DType dtype) {
  if (a.dtype() == dtype) return a;
  OpScope scope("cast");
  if (is_block_quantized(a.dtype()) && is_float(dtype) && !needs_grad(a)) {
    Tensor out = Tensor::empty(a.shape(), dtype, a.device());
    kernels(a).cast(a, out);
    return out;
  }
  check_float("cast", a, "input");
  if (!is_float(dtype)) shape_error("cast", fmt::format("cannot cast to {}", dtype_name(dtype)));
  Tensor out = Tensor::empty(a.shape(), dtype, a.device());
  kernels(a).cast(a, out);
  DType from = a.dtype();
  record("cast", {a}, {out}, [from](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{cast(g[0], from)};
  });
  return out;
}

Tensor activation(Activation f, const Tensor& x) {
  OpScope scope("activation");
  check_float("activation", x, "input");
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  kernels(x).activation(f, x, y);
  if (will_record({x})) {
    Tensor sx = x.detach();
    record("activation", {x}, {y}, [f, sx](const std::vector<Tensor>& g) {
      Tensor dx = Tensor::empty(sx.shape(), sx.dtype(), sx.device());
      kernels(sx).activation_backward(f, sx, cast(g[0], sx.dtype()), dx);
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

}  // namespace bb
