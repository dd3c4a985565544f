// Conv2d, BatchNorm2d's window statistics (Chan's parallel merge, in double) and GroupNorm.
#include "nn/vision_layers.h"

#include <fmt/format.h>

#include "core/error.h"

namespace bb {

Conv2d::Conv2d(const Conv2dOptions& o, Device device) : opt_(o) {
  if (o.in <= 0 || o.out <= 0 || o.kernel <= 0 || o.groups <= 0 || o.in % o.groups != 0 ||
      o.out % o.groups != 0)
    throw ConfigError(fmt::format("conv2d: in {} and out {} channels must be positive multiples "
                                  "of groups {}", o.in, o.out, o.groups));
  weight_ = register_parameter(
      "weight", new_parameter(Shape{o.out, o.kernel, o.kernel, o.in / o.groups}, device));
  init_constant(weight_, 0.0f);
  if (o.bias) {
    bias_ = register_parameter("bias", new_parameter(Shape{o.out}, device));
    init_constant(bias_, 0.0f);
  }
}

Tensor Conv2d::forward(const Tensor& x) const {
  return conv2d(x, cast(weight_, x.dtype()), bias_,
                Conv2dParams{.stride = opt_.stride, .padding = opt_.padding, .groups = opt_.groups});
}

namespace {

// A named tensor that is saved and loaded with the parameters but never trained.
Tensor new_buffer(const Shape& s, DType dt, Device device) {
  return Tensor::empty(s, dt, device, Category::Parameters);
}

}  // namespace

BatchNorm2d::BatchNorm2d(const BatchNormOptions& o, Device device) : opt_(o) {
  const Shape c{o.channels};
  weight_ = register_parameter("weight", new_parameter(c, device));
  bias_ = register_parameter("bias", new_parameter(c, device));
  running_mean_ = register_parameter("running_mean", new_buffer(c, DType::F32, device));
  running_var_ = register_parameter("running_var", new_buffer(c, DType::F32, device));
  num_batches_ = register_parameter("num_batches_tracked", new_buffer(Shape{}, DType::I64, device));
  init_constant(weight_, 1.0f);
  init_constant(bias_, 0.0f);
  init_constant(running_mean_, 0.0f);
  init_constant(running_var_, 1.0f);
  if (!num_batches_.is_meta()) *num_batches_.data<int64_t>() = 0;
}

Tensor BatchNorm2d::forward(const Tensor& x, const Context& ctx, const Tensor& residual,
                            FusedAct act) const {
  const bool batch_stats = ctx.training && opt_.mode != BatchNormMode::kFrozen;
  BatchNormStats stats;
  Tensor y = batch_norm(x, weight_, bias_, running_mean_, running_var_, batch_stats, opt_.eps,
                        residual, act, &stats);
  // A checkpoint replay normalises the same batch again: its statistics are already in.
  if (batch_stats && !ctx.recomputing && !x.is_meta()) merge(stats);
  return y;
}

// Chan et al.'s pairwise update: exact for any split of the window into batches.
void BatchNorm2d::merge(const BatchNormStats& s) const {
  const std::vector<float> mean = s.mean.to_floats(), var = s.var.to_floats();
  Window b;
  b.count = static_cast<double>(s.count);
  b.mean.assign(mean.begin(), mean.end());
  for (float v : var) b.m2.push_back(double(v) * b.count);
  merge_window(b);
}

void BatchNorm2d::merge_window(const Window& b) const {
  const double nb = b.count;
  if (nb == 0) return;
  Window& w = window_;
  const size_t C = b.mean.size();
  if (w.count == 0) {
    w.mean.assign(C, 0.0);
    w.m2.assign(C, 0.0);
  }
  const double na = w.count, n = na + nb;
  for (size_t c = 0; c < C; ++c) {
    const double delta = b.mean[c] - w.mean[c];
    w.mean[c] += delta * nb / n;
    w.m2[c] += b.m2[c] + delta * delta * na * nb / n;
  }
  w.count = n;
}

void BatchNorm2d::finish_window() {
  if (window_.count == 0 || running_mean_.is_meta()) {
    window_ = Window{};
    return;
  }
  // Host update of two (C) vectors once per window: too small to be worth a kernel.
  float* rm = running_mean_.data<float>();
  float* rv = running_var_.data<float>();
  const double m = opt_.momentum, n = window_.count;
  for (size_t c = 0; c < window_.mean.size(); ++c) {
    const double unbiased = n > 1 ? window_.m2[c] / (n - 1) : 0.0;
    rm[c] = static_cast<float>((1 - m) * rm[c] + m * window_.mean[c]);
    rv[c] = static_cast<float>((1 - m) * rv[c] + m * unbiased);
  }
  *num_batches_.data<int64_t>() += 1;
  window_ = Window{};
}

GroupNorm::GroupNorm(int64_t groups, int64_t channels, float eps, Device device)
    : groups_(groups), eps_(eps) {
  if (groups <= 0 || channels % groups != 0)
    throw ConfigError(fmt::format("group_norm: {} channels do not split into {} groups", channels,
                                  groups));
  weight_ = register_parameter("weight", new_parameter(Shape{channels}, device));
  bias_ = register_parameter("bias", new_parameter(Shape{channels}, device));
  init_constant(weight_, 1.0f);
  init_constant(bias_, 0.0f);
}

Tensor GroupNorm::forward(const Tensor& x, const Context& ctx, const Tensor& residual,
                          FusedAct act) const {
  Tensor y = group_norm(x, weight_, bias_, groups_, eps_);
  if (residual.defined()) y = add(y, residual);
  switch (act) {
    case FusedAct::kRelu: return activation(Activation::Relu, y);
    case FusedAct::kRelu6: return activation(Activation::Relu6, y);
    default: return y;
  }
}

std::shared_ptr<Norm2d> make_norm2d(int64_t channels, BatchNormMode mode, int64_t groups,
                                    Device device) {
  if (mode != BatchNormMode::kGroup)
    return std::make_shared<BatchNorm2d>(BatchNormOptions{.channels = channels, .mode = mode}, device);
  int64_t g = std::max<int64_t>(1, std::min(groups, channels));
  while (channels % g != 0) --g;
  return std::make_shared<GroupNorm>(g, channels, 1e-5f, device);
}

void finish_window(const Module& m) {
  for (auto& [name, sub] : m.named_modules())
    if (auto bn = std::dynamic_pointer_cast<BatchNorm2d>(sub)) bn->finish_window();
}

}  // namespace bb
