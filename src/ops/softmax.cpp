// Softmax over the last dim and dropout. Dropout saves nothing: its gradient redraws the
// same mask from the same counter-based key (docs/notes/dropout-rng.md).
#include "ops/ops.h"
#include "ops/record.h"

namespace bb {

Tensor softmax(const Tensor& x) {
  OpScope scope("softmax");
  check_float("softmax", x, "input");
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  kernels(x).softmax(x, y);
  if (will_record({x})) {
    Tensor sy = y.detach();
    record("softmax", {x}, {y}, [sy](const std::vector<Tensor>& g) {
      Tensor dx = Tensor::empty(sy.shape(), sy.dtype(), sy.device());
      kernels(sy).softmax_backward(sy, cast(g[0], sy.dtype()), dx);
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

Tensor dropout(const Tensor& x, float p, RngKey key) {
  if (p == 0.0f) return x;
  OpScope scope("dropout");
  check_float("dropout", x, "input");
  if (!(p > 0.0f && p < 1.0f)) shape_error("dropout", fmt::format("p must be in [0, 1), got {}", p));
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  kernels(x).dropout(x, p, key, y);
  record("dropout", {x}, {y}, [p, key](const std::vector<Tensor>& g) {
    Tensor dx = Tensor::empty(g[0].shape(), g[0].dtype(), g[0].device());
    kernels(g[0]).dropout(g[0], p, key, dx);
    return std::vector<Tensor>{dx};
  });
  return y;
}

}  // namespace bb
