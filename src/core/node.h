// Node: one entry of the autograd tape, recorded by an op as it runs. It holds the edges to
// its inputs' producers (or to the leaf tensors that take gradients) and the gradient rule,
// a closure over the tensors the op saved. The engine (autograd/) walks nodes backwards and
// drops each closure as soon as it has run, freeing the saved tensors.
#pragma once
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace bb {

// Where the gradient for one input goes: into another node's output, or into a leaf.
struct Edge {
  std::shared_ptr<Node> node;         // producer of the input, if recorded
  int output_nr = 0;                  // which output of that producer
  std::shared_ptr<TensorImpl> leaf;   // a leaf that requires grad (a parameter)
  bool active() const { return node || leaf; }
};

// Gradients of the op's outputs in, gradients of its inputs out (undefined where the input
// needs none: see Node::needs_grad).
using GradRule = std::function<std::vector<Tensor>(const std::vector<Tensor>& grad_outputs)>;

struct Node {
  std::string_view name;
  std::vector<Edge> inputs;
  std::vector<Shape> output_shapes;   // for zero-filling an output that got no gradient
  std::vector<DType> output_dtypes;
  GradRule rule;
  int64_t sequence = 0;               // creation order, for a deterministic backward order
  bool needs_grad(size_t input) const { return input < inputs.size() && inputs[input].active(); }
};

}  // namespace bb
