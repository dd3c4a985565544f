// ONNX export of image classifiers for inference: BatchNorm folded into the convolution
// before it, GroupNorm as Reshape + InstanceNormalization, the input normalisation (mean,
// std) as the graph's first two nodes. The graph runs in NCHW, as ONNX users expect:
// input "input" (N, C, H, W) of pixels scaled to [0, 1], output "logits" (N, classes).
#pragma once
#include <string>

#include "io/image_model.h"

namespace bb {

void export_image_classifier_onnx(const ImageClassifier& model, const ImageModelInfo& info, const std::string& path);

}  // namespace bb
