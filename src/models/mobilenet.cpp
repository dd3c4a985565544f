// MobileNetV2's blocks and forward pass. The projection's norm takes the residual add
// fused in; the expand and depthwise norms take their ReLU6.
#include "models/mobilenet.h"

#include <fmt/format.h>

#include "core/error.h"

namespace bb {

ConvNorm::ConvNorm(const Conv2dOptions& c, const ImageModelOptions& o, Device device) {
  conv_ = register_module("conv", std::make_shared<Conv2d>(c, device));
  norm_ = register_module("norm", make_norm2d(c.out, o.bn, o.norm_groups, device));
}

Tensor ConvNorm::forward(const Tensor& x, const Context& ctx, FusedAct act,
                         const Tensor& residual) const {
  return norm_->forward(conv_->forward(x), ctx, residual, act);
}

InvertedResidual::InvertedResidual(int64_t in, int64_t out, int64_t stride, int64_t expand,
                                   const ImageModelOptions& o, Device device)
    : residual_(stride == 1 && in == out) {
  const int64_t hidden = in * expand;
  if (expand != 1)
    expand_ = register_module("expand", std::make_shared<ConvNorm>(
                                            Conv2dOptions{.in = in, .out = hidden, .kernel = 1}, o, device));
  dw_ = register_module("dw", std::make_shared<ConvNorm>(
                                  Conv2dOptions{.in = hidden, .out = hidden, .kernel = 3,
                                                .stride = stride, .padding = 1, .groups = hidden},
                                  o, device));
  project_ = register_module("project", std::make_shared<ConvNorm>(
                                            Conv2dOptions{.in = hidden, .out = out, .kernel = 1}, o, device));
}

Tensor InvertedResidual::forward(const Tensor& x, const Context& ctx) const {
  Tensor h = expand_ ? expand_->forward(x, ctx, FusedAct::kRelu6) : x;
  h = dw_->forward(h, ctx, FusedAct::kRelu6);
  return project_->forward(h, ctx, FusedAct::kNone, residual_ ? x : Tensor());
}

MobileNetV2::MobileNetV2(const ImageModelOptions& o, Device device) : ImageClassifier(o) {
  o.validate();
  struct Stage {
    int64_t t, c, n, s;
  };
  const Stage stages[] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 2, 2}, {6, 96, 1, 1}};
  const int64_t stem = scaled_channels(32, o.width);
  stem_ = register_module("stem", std::make_shared<ConvNorm>(
                                      Conv2dOptions{.in = o.in_channels, .out = stem, .kernel = 3,
                                                    .padding = 1}, o, device));
  auto blocks = register_module("blocks", std::make_shared<ModuleGroup>());
  int64_t in = stem;
  for (const Stage& st : stages) {
    const int64_t out = scaled_channels(st.c, o.width);
    for (int64_t j = 0; j < st.n * o.depth; ++j) {
      blocks_.push_back(blocks->register_module(
          std::to_string(blocks_.size()),
          std::make_shared<InvertedResidual>(in, out, j == 0 ? st.s : 1, st.t, o, device)));
      in = out;
    }
  }
  const int64_t last = scaled_channels(256, o.width);
  head_ = register_module("head", std::make_shared<ConvNorm>(
                                      Conv2dOptions{.in = in, .out = last, .kernel = 1}, o, device));
  classifier_ = register_module(
      "classifier", std::make_shared<Linear>(LinearOptions{last, o.classes, true}, device));
  init_weights();
}

Tensor MobileNetV2::logits(const Tensor& images, const Context& ctx) const {
  if (images.ndim() != 4 || images.dim(3) != opt_.in_channels)
    throw ShapeError(fmt::format("mobilenetv2: images must be (N, H, W, {}), got {}",
                                 opt_.in_channels, images.desc()));
  Tensor x = stem_->forward(cast(images, ctx.compute), ctx, FusedAct::kRelu6);
  for (const auto& b : blocks_) x = b->forward(x, ctx);
  x = head_->forward(x, ctx, FusedAct::kRelu6);
  return classifier_->forward(global_avg_pool(x));
}

}  // namespace bb
