// The checkpoint node: forward without a tape, replay and back-propagate in backward.
#include "autograd/checkpoint.h"

#include "autograd/backward.h"
#include "core/grad_mode.h"
#include "ops/ops.h"
#include "ops/record.h"

namespace bb {

Tensor checkpoint(const Block& block, const Tensor& x) {
  if (!GradMode::enabled() || !needs_grad(x)) return block(x, false);
  Tensor y;
  {
    NoGradGuard no_grad;
    y = block(x, false);
  }
  // y was computed without history: give it a fresh handle so the node attaches to it alone.
  y = y.detach();
  Tensor saved = x.detach();
  // Parameters the block reads become edges of the replayed graph, not of this node: their
  // gradients accumulate during the replay's backward, like any other op's.
  record("checkpoint", {x}, {y}, [block, saved](const std::vector<Tensor>& g) {
    Tensor input = saved.detach();
    input.set_requires_grad(true);
    Tensor out;
    {
      EnableGradGuard grad_on;
      out = block(input, true);
    }
    if (!needs_grad(out)) return std::vector<Tensor>{Tensor()};
    return backward_capture(out, cast(g[0], out.dtype()), {input});
  });
  return y;
}

}  // namespace bb
