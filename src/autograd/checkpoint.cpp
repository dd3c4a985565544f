// The checkpoint node: forward without a tape, replay and back-propagate in backward.
#include "autograd/checkpoint.h"

#include "autograd/backward.h"
#include "backend/profile.h"
#include "core/grad_mode.h"
#include "ops/ops.h"
#include "ops/record.h"

namespace bb {

Tensor checkpoint(const Block& block, const Tensor& x, const std::vector<Tensor>& params) {
  std::vector<Tensor> inputs{x};
  inputs.insert(inputs.end(), params.begin(), params.end());
  if (!will_record(inputs)) return block(x, false);
  Tensor y;
  {
    NoGradGuard no_grad;
    y = block(x, false);
  }
  // y was computed without history: give it a fresh handle so the node attaches to it alone.
  y = y.detach();
  Tensor saved = x.detach();
  // Parameters the block reads become edges of the replayed graph, not of this node: their
  // gradients accumulate during the replay's backward, like any other op's. They are inputs
  // of the node only so that it is recorded (and reached) when x itself needs no gradient;
  // the node returns nothing for them.
  const bool input_grad = needs_grad(x);
  const size_t n_inputs = inputs.size();
  record("checkpoint", inputs, {y}, [block, saved, input_grad, n_inputs](const std::vector<Tensor>& g) {
    std::vector<Tensor> none(n_inputs);
    Tensor input = saved.detach();
    input.set_requires_grad(input_grad);
    Tensor out;
    {
      EnableGradGuard grad_on;
      PhaseScope phase(Phase::kRecompute);
      out = block(input, true);
    }
    if (!needs_grad(out)) return none;
    if (!input_grad) {
      backward_capture(out, cast(g[0], out.dtype()), {});  // parameters' gradients only
      return none;
    }
    none[0] = backward_capture(out, cast(g[0], out.dtype()), {input})[0];
    return none;
  });
  return y;
}

}  // namespace bb
