// Tape recording and the shared input checks.
#include "ops/record.h"

#include <atomic>

namespace bb {

namespace {
std::atomic<int64_t> g_sequence{0};
}

bool will_record(const std::vector<Tensor>& inputs) {
  if (!GradMode::enabled()) return false;
  for (const Tensor& t : inputs)
    if (needs_grad(t)) return true;
  return false;
}

void record(std::string_view op, const std::vector<Tensor>& inputs,
            const std::vector<Tensor>& outputs, GradRule rule) {
  if (!will_record(inputs)) return;
  auto node = std::make_shared<Node>();
  node->name = op;
  node->sequence = g_sequence++;
  node->rule = std::move(rule);
  for (const Tensor& t : inputs) {
    Edge e;
    if (t.defined() && t.grad_fn()) {
      e.node = t.grad_fn();
      e.output_nr = t.impl()->output_nr;
    } else if (t.defined() && t.requires_grad()) {
      e.leaf = t.impl_ptr();
    }
    node->inputs.push_back(std::move(e));
  }
  int nr = 0;
  for (const Tensor& out : outputs) {
    node->output_shapes.push_back(out.shape());
    node->output_dtypes.push_back(out.dtype());
    out.impl()->grad_fn = node;
    out.impl()->output_nr = nr++;
  }
}

void shape_error(std::string_view op, const std::string& what) {
  throw ShapeError(fmt::format("{}: {}", op, what));
}

void check_defined(std::string_view op, const Tensor& t, std::string_view name) {
  if (!t.defined()) shape_error(op, fmt::format("{} is missing", name));
}

void check_float(std::string_view op, const Tensor& t, std::string_view name) {
  check_defined(op, t, name);
  if (!is_float(t.dtype()))
    shape_error(op, fmt::format("{} must be a float tensor, got {}", name, t.desc()));
}

void check_dtype(std::string_view op, const Tensor& t, DType want, std::string_view name) {
  check_defined(op, t, name);
  if (t.dtype() != want)
    shape_error(op, fmt::format("{} must be {}, got {}", name, dtype_name(want), t.desc()));
}

void check_same_device(std::string_view op, const Tensor& a, const Tensor& b) {
  if (a.device() != b.device())
    shape_error(op, fmt::format("inputs are on different devices ({} and {})",
                                device_name(a.device()), device_name(b.device())));
}

int check_axis(std::string_view op, const Tensor& t, int axis) {
  int a = axis < 0 ? axis + t.ndim() : axis;
  if (a < 0 || a >= t.ndim())
    shape_error(op, fmt::format("axis {} is out of range for {}", axis, t.desc()));
  return a;
}

}  // namespace bb
