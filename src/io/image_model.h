// Saved image classifiers: model.safetensors (every named tensor, BatchNorm running
// statistics included) and a config.json that describes the architecture and the input
// (image size, channel means and deviations, class names), so eval and ONNX export rebuild
// the model without the training config.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "models/image_classifier.h"

namespace bb {

// config.json's model_type for these folders.
inline constexpr const char* kImageClassifierType = "bigbatch-image-classifier";

struct ImageModelInfo {
  ImageModelOptions options;
  int64_t height = 0, width = 0;    // input images
  std::vector<float> mean, std;     // per channel, on pixels in [0, 1]
  std::vector<std::string> classes;
};

void save_image_classifier(const std::string& dir, const ImageClassifier& model, const ImageModelInfo& info);
// Reads config.json; FormatError naming the file and field when it does not describe one.
ImageModelInfo read_image_model_info(const std::string& dir);
// Builds the model config.json describes and loads its weights (FormatError naming a missing
// or misshapen tensor).
std::unique_ptr<ImageClassifier> load_image_classifier(const std::string& dir, ImageModelInfo* info = nullptr);

std::string batchnorm_mode_name(BatchNormMode m);
BatchNormMode parse_batchnorm_mode(const std::string& name);  // ConfigError naming model.batchnorm

}  // namespace bb
