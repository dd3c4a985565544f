// A MobileNetV2-style net for small images: stem conv3x3 + norm + ReLU6, inverted residual
// blocks (1x1 expand + ReLU6, 3x3 depthwise + ReLU6, 1x1 linear projection, a residual when
// the shapes match), a 1x1 head conv + ReLU6, global average pooling and a linear classifier.
// Names: stem.conv, stem.norm, blocks.<i>.{expand,dw,project}.{conv,norm}, head.conv,
// head.norm, classifier. Stages (expansion t, channels c, repeats n, stride s) are scaled
// for 28-32 pixel inputs: (1,16,1,1) (6,24,2,2) (6,32,3,2) (6,64,2,2) (6,96,1,1); channels
// scale by width, repeats by depth.
#pragma once
#include <memory>
#include <vector>

#include "models/image_classifier.h"
#include "nn/layers.h"

namespace bb {

// A 1x1 or depthwise 3x3 conv followed by its norm: the unit inverted residuals are built of.
class ConvNorm : public Module {
 public:
  ConvNorm(const Conv2dOptions& c, const ImageModelOptions& o, Device device);
  Tensor forward(const Tensor& x, const Context& ctx, FusedAct act,
                 const Tensor& residual = Tensor()) const;

 private:
  std::shared_ptr<Conv2d> conv_;
  std::shared_ptr<Norm2d> norm_;
};

class InvertedResidual : public Module {
 public:
  InvertedResidual(int64_t in, int64_t out, int64_t stride, int64_t expand,
                   const ImageModelOptions& o, Device device);
  Tensor forward(const Tensor& x, const Context& ctx) const;

 private:
  bool residual_;
  std::shared_ptr<ConvNorm> expand_, dw_, project_;  // expand_ is null when expand == 1
};

class MobileNetV2 : public ImageClassifier {
 public:
  MobileNetV2(const ImageModelOptions& o, Device device = Device::CPU);
  Tensor logits(const Tensor& images, const Context& ctx) const override;

 private:
  std::shared_ptr<ConvNorm> stem_, head_;
  std::vector<std::shared_ptr<InvertedResidual>> blocks_;
  std::shared_ptr<Linear> classifier_;
};

}  // namespace bb
