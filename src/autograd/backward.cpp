// Backward engine: a dependency count per node, then nodes in reverse creation order as
// soon as all their consumers have run (deterministic, and it frees memory early).
#include "autograd/backward.h"

#include <fmt/format.h>

#include <queue>
#include <unordered_map>

#include "core/error.h"
#include "core/grad_mode.h"
#include "core/node.h"
#include "ops/ops.h"
#include "ops/record.h"

namespace bb {
namespace {

struct Later {
  bool operator()(const Node* a, const Node* b) const { return a->sequence < b->sequence; }
};

Tensor ones_like(const Tensor& t) { return Tensor::full(t.shape(), 1.0f, t.dtype(), t.device()); }

// Sums two gradients of one tensor into a new buffer (either may be shared elsewhere).
Tensor add_grads(const Tensor& a, const Tensor& b) {
  if (!a.defined()) return b;
  if (a.dtype() == b.dtype()) return add(a, b);
  return add(cast(a, DType::F32), cast(b, DType::F32));
}

}  // namespace

void accumulate_grad(TensorImpl& leaf, const Tensor& g) {
  Tensor grad(leaf.grad);
  if (!grad.defined()) {
    grad = Tensor::empty(leaf.shape, DType::F32, leaf.storage->device(), Category::Gradients);
    leaf.grad = grad.impl_ptr();
    leaf.grad_zeroed = true;
  }
  if (g.shape().numel() != leaf.shape.numel())
    throw ShapeError(fmt::format("backward: gradient {} does not fit parameter {}", g.desc(),
                                 leaf.shape.str()));
  // The first gradient since zero_grad is copied (converted to f32) over the stale contents.
  if (leaf.grad_zeroed) {
    backend_for(grad.device()).cast(g.view(leaf.shape.vec()), grad);
    leaf.grad_zeroed = false;
  } else {
    backend_for(grad.device()).accumulate(grad, g, 1.0f);
  }
}

namespace {

// Where gradients for leaves go: accumulated into .grad(), or captured for the caller.
struct LeafSink {
  const std::vector<Tensor>* capture = nullptr;
  const LeafDone* on_done = nullptr;
  std::unordered_map<const TensorImpl*, int> edges_left;  // when on_done: per leaf
  std::vector<Tensor> captured;
  void take(TensorImpl& leaf, const Tensor& g) {
    if (capture)
      for (size_t i = 0; i < capture->size(); ++i)
        if ((*capture)[i].impl() == &leaf) {
          captured[i] = captured[i].defined() ? add_grads(captured[i], g) : g;
          return;
        }
    accumulate_grad(leaf, g);
  }
};

void run_backward(const Tensor& root, const Tensor& seed, LeafSink& sink);

}  // namespace

void backward(const Tensor& root, const Tensor& seed) {
  LeafSink sink;
  run_backward(root, seed, sink);
}

void backward(const Tensor& root, const Tensor& seed, const LeafDone& on_leaf_done) {
  LeafSink sink;
  sink.on_done = &on_leaf_done;
  run_backward(root, seed, sink);
}

std::vector<Tensor> backward_capture(const Tensor& root, const Tensor& seed,
                                     const std::vector<Tensor>& capture) {
  LeafSink sink;
  sink.capture = &capture;
  sink.captured.resize(capture.size());
  run_backward(root, seed, sink);
  return sink.captured;
}

namespace {

void run_backward(const Tensor& root, const Tensor& seed, LeafSink& sink) {
  if (!needs_grad(root))
    throw ShapeError("backward: the tensor does not depend on anything that needs a gradient");
  NoGradGuard no_grad;
  OpScope scope("backward");
  Tensor g0 = seed.defined() ? seed : ones_like(root);
  if (g0.shape() != root.shape())
    throw ShapeError(fmt::format("backward: seed {} does not match {}", g0.desc(), root.desc()));
  if (root.is_leaf()) {
    sink.take(*root.impl(), g0);
    if (sink.on_done) (*sink.on_done)(*root.impl());
    return;
  }
  // Count, for each node, how many edges point at it from nodes reachable from the root.
  std::unordered_map<Node*, int> deps;
  std::vector<Node*> stack{root.grad_fn().get()};
  deps[root.grad_fn().get()] = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->inputs) {
      if (e.leaf && sink.on_done) sink.edges_left[e.leaf.get()]++;
      if (!e.node) continue;
      auto [it, fresh] = deps.try_emplace(e.node.get(), 0);
      it->second++;
      if (fresh) stack.push_back(e.node.get());
    }
  }
  std::unordered_map<Node*, std::vector<Tensor>> pending;
  pending[root.grad_fn().get()].resize(root.grad_fn()->output_shapes.size());
  pending[root.grad_fn().get()][root.impl()->output_nr] = g0;
  std::priority_queue<Node*, std::vector<Node*>, Later> ready;
  ready.push(root.grad_fn().get());
  while (!ready.empty()) {
    Node* n = ready.top();
    ready.pop();
    if (!n->rule)
      throw ShapeError(fmt::format("backward: the graph through {} was already used once", n->name));
    std::vector<Tensor> grads = std::move(pending[n]);
    pending.erase(n);
    grads.resize(n->output_shapes.size());
    for (size_t i = 0; i < grads.size(); ++i)
      if (!grads[i].defined())
        grads[i] = Tensor::zeros(n->output_shapes[i], n->output_dtypes[i], root.device());
    std::vector<Tensor> in_grads;
    {
      OpScope op_scope(n->name);
      in_grads = n->rule(grads);
    }
    n->rule = nullptr;  // frees what the op saved
    grads.clear();
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      const Edge& e = n->inputs[i];
      if (!e.active()) continue;
      if (i < in_grads.size() && in_grads[i].defined()) {
        if (e.leaf) {
          sink.take(*e.leaf, in_grads[i]);
        } else {
          auto& slot = pending[e.node.get()];
          slot.resize(e.node->output_shapes.size());
          slot[e.output_nr] = add_grads(slot[e.output_nr], in_grads[i]);
        }
      }
      if (e.node && --deps[e.node.get()] == 0) ready.push(e.node.get());
      if (e.leaf && sink.on_done && --sink.edges_left[e.leaf.get()] == 0) (*sink.on_done)(*e.leaf);
    }
  }
}

}  // namespace

}  // namespace bb
