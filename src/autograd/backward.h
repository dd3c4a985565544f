// The backward pass: walks the tape from a scalar back to the leaves. Parameter gradients
// accumulate with += into f32 buffers (docs/notes/gradient-accumulation.md); each node's
// saved tensors are freed as soon as its rule has run.
#pragma once
#include "core/tensor.h"

namespace bb {

// d(root)/d(leaf) * seed added into every leaf's .grad(); seed defaults to 1 (root must
// then have one element).
void backward(const Tensor& root, const Tensor& seed = Tensor());

// Adds g into the f32 gradient buffer of a leaf, creating it (zeroed, counted as gradients)
// on first use.
void accumulate_grad(TensorImpl& leaf, const Tensor& g);

}  // namespace bb
