// ResNet's blocks and forward pass. Each norm takes its ReLU (and, at a block's end, the
// shortcut) fused in, so a block makes two passes over its output fewer than separate ops.
#include "models/resnet.h"

#include <fmt/format.h>

#include "core/error.h"

namespace bb {

namespace {

std::shared_ptr<Conv2d> conv(int64_t in, int64_t out, int64_t k, int64_t stride, Device device) {
  return std::make_shared<Conv2d>(
      Conv2dOptions{.in = in, .out = out, .kernel = k, .stride = stride, .padding = k / 2}, device);
}

}  // namespace

ResBlock::ResBlock(int64_t in, int64_t out, int64_t stride, const ImageModelOptions& o,
                   Device device) {
  auto norm = [&](int64_t c) { return make_norm2d(c, o.bn, o.norm_groups, device); };
  c1_ = register_module("c1", conv(in, out, 3, stride, device));
  b1_ = register_module("b1", norm(out));
  c2_ = register_module("c2", conv(out, out, 3, 1, device));
  b2_ = register_module("b2", norm(out));
  if (stride != 1 || in != out) {
    auto sc = register_module("sc", std::make_shared<ModuleGroup>());
    sc_conv_ = sc->register_module("0", conv(in, out, 1, stride, device));
    sc_norm_ = sc->register_module("1", norm(out));
  }
}

Tensor ResBlock::forward(const Tensor& x, const Context& ctx) const {
  Tensor y = b1_->forward(c1_->forward(x), ctx, Tensor(), FusedAct::kRelu);
  Tensor shortcut = sc_conv_ ? sc_norm_->forward(sc_conv_->forward(x), ctx) : x;
  return b2_->forward(c2_->forward(y), ctx, shortcut, FusedAct::kRelu);
}

ResNet::ResNet(const ImageModelOptions& o, Device device) : ImageClassifier(o) {
  o.validate();
  const int64_t stem = scaled_channels(32, o.width);
  auto s = register_module("stem", std::make_shared<ModuleGroup>());
  stem_conv_ = s->register_module("0", conv(o.in_channels, stem, 3, 1, device));
  stem_norm_ = s->register_module("1", make_norm2d(stem, o.bn, o.norm_groups, device));
  const int64_t widths[3] = {32, 64, 128}, strides[3] = {1, 2, 2};
  int64_t in = stem;
  for (int stage = 0; stage < 3; ++stage) {
    const int64_t out = scaled_channels(widths[stage], o.width);
    for (int64_t j = 0; j < o.depth; ++j) {
      std::string name = j == 0 ? fmt::format("l{}", stage + 1) : fmt::format("l{}_{}", stage + 1, j);
      blocks_.push_back(register_module(
          name, std::make_shared<ResBlock>(in, out, j == 0 ? strides[stage] : 1, o, device)));
      in = out;
    }
  }
  fc_ = register_module("fc", std::make_shared<Linear>(LinearOptions{in, o.classes, true}, device));
  init_weights();
}

Tensor ResNet::logits(const Tensor& images, const Context& ctx) const {
  if (images.ndim() != 4 || images.dim(3) != opt_.in_channels)
    throw ShapeError(fmt::format("resnet: images must be (N, H, W, {}), got {}", opt_.in_channels,
                                 images.desc()));
  Tensor x = cast(images, ctx.compute);
  x = stem_norm_->forward(stem_conv_->forward(x), ctx, Tensor(), FusedAct::kRelu);
  for (const auto& b : blocks_) x = b->forward(x, ctx);
  return fc_->forward(global_avg_pool(x));  // (N, classes)
}

}  // namespace bb
