// The backward pass: walks the tape from a scalar back to the leaves. Parameter gradients
// accumulate with += into f32 buffers (docs/notes/gradient-accumulation.md); each node's
// saved tensors are freed as soon as its rule has run.
#pragma once
#include <functional>
#include <vector>

#include "core/tensor.h"

namespace bb {

// d(root)/d(leaf) * seed added into every leaf's .grad(); seed defaults to 1 (root must
// then have one element).
void backward(const Tensor& root, const Tensor& seed = Tensor());

// Called once per leaf when the pass has delivered the last gradient it will give that leaf
// (its last edge in the graph is done, including those of a checkpointed block, whose replay
// accumulates its parameters' gradients before its node returns). Data parallelism sends a
// bucket of gradients as soon as all of its leaves are done.
using LeafDone = std::function<void(const TensorImpl& leaf)>;
void backward(const Tensor& root, const Tensor& seed, const LeafDone& on_leaf_done);

// Like backward(), but the gradients reaching the tensors in `capture` (leaves that
// require grad) are returned, in order, instead of accumulated into their .grad(); other
// leaves (parameters) accumulate as usual. Checkpointing uses it to get the gradient of a
// replayed block's input.
std::vector<Tensor> backward_capture(const Tensor& root, const Tensor& seed,
                                     const std::vector<Tensor>& capture);

// Adds g into the f32 gradient buffer of a leaf, creating it (zeroed, counted as gradients)
// on first use.
void accumulate_grad(TensorImpl& leaf, const Tensor& g);

}  // namespace bb
