// A small ResNet for 28x28 and 32x32 images: stem conv3x3 + norm + ReLU, three stages of
// basic residual blocks (widths 32, 64, 128 times `width`, strides 1, 2, 2, `depth` blocks
// each), global average pooling and a linear classifier. At width 1, depth 1 it is
// /work/shared/peers/torch_cnn_bench.py's Net, with the same parameter names: stem.0 (conv),
// stem.1 (norm), l1..l3 with c1, b1, c2, b2 and the projection shortcut sc.0, sc.1, and fc.
// Extra blocks of a stage are named l1_1, l1_2, ...
#pragma once
#include <memory>
#include <vector>

#include "models/image_classifier.h"
#include "nn/layers.h"

namespace bb {

class ResBlock : public Module {
 public:
  ResBlock(int64_t in, int64_t out, int64_t stride, const ImageModelOptions& o, Device device);
  // relu(norm(conv(relu(norm(conv(x))))) + shortcut(x)); (N, H, W, in) -> (N, H/s, W/s, out)
  Tensor forward(const Tensor& x, const Context& ctx) const;

 private:
  std::shared_ptr<Conv2d> c1_, c2_, sc_conv_;
  std::shared_ptr<Norm2d> b1_, b2_, sc_norm_;
};

class ResNet : public ImageClassifier {
 public:
  ResNet(const ImageModelOptions& o, Device device = Device::CPU);
  Tensor logits(const Tensor& images, const Context& ctx) const override;

 private:
  std::shared_ptr<Conv2d> stem_conv_;
  std::shared_ptr<Norm2d> stem_norm_;
  std::vector<std::shared_ptr<ResBlock>> blocks_;
  std::shared_ptr<Linear> fc_;
};

}  // namespace bb
