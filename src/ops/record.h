// What every op shares: input checks that throw one sentence naming the op and shapes, and
// record(), which puts the op on the autograd tape when grad mode is on and an input needs a
// gradient. An op allocates all it needs (outputs, saved statistics, workspace) before it
// calls a kernel, so the meta backend counts the same bytes: docs/notes/memory-accounting.md.
#pragma once
#include <fmt/format.h>

#include <initializer_list>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "core/error.h"
#include "core/grad_mode.h"
#include "core/node.h"
#include "core/tensor.h"

namespace bb {

// True when a tensor takes part in autograd: a leaf that wants a gradient, or an op output.
inline bool needs_grad(const Tensor& t) {
  return t.defined() && (t.requires_grad() || t.grad_fn() != nullptr);
}

// Whether an op called now with these inputs will be recorded.
bool will_record(const std::vector<Tensor>& inputs);

// Attaches a node holding `rule` to `outputs` when will_record(inputs). The rule gets the
// gradients of the outputs and returns one gradient per input (undefined where not needed).
void record(std::string_view op, const std::vector<Tensor>& inputs,
            const std::vector<Tensor>& outputs, GradRule rule);

inline Backend& kernels(const Tensor& t) { return backend_for(t.device()); }

[[noreturn]] void shape_error(std::string_view op, const std::string& what);

void check_defined(std::string_view op, const Tensor& t, std::string_view name);
void check_float(std::string_view op, const Tensor& t, std::string_view name);
void check_dtype(std::string_view op, const Tensor& t, DType want, std::string_view name);
void check_same_device(std::string_view op, const Tensor& a, const Tensor& b);
// The axis (negative counts from the end) as an index, or a ShapeError naming the op.
int check_axis(std::string_view op, const Tensor& t, int axis);

}  // namespace bb
