// Saving and loading image classifiers.
#include "io/image_model.h"

#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"

namespace bb {
namespace fs = std::filesystem;

std::string batchnorm_mode_name(BatchNormMode m) {
  switch (m) {
    case BatchNormMode::kMicro: return "micro";
    case BatchNormMode::kFrozen: return "frozen";
    case BatchNormMode::kGroup: return "group";
  }
  return "micro";
}

BatchNormMode parse_batchnorm_mode(const std::string& name) {
  if (name == "micro") return BatchNormMode::kMicro;
  if (name == "frozen") return BatchNormMode::kFrozen;
  if (name == "group") return BatchNormMode::kGroup;
  throw ConfigError(fmt::format("model.batchnorm '{}' is not known (micro, frozen or group)", name));
}

void save_image_classifier(const std::string& dir, const ImageClassifier& model, const ImageModelInfo& info) {
  fs::create_directories(dir);
  const ImageModelOptions& o = model.options();
  nlohmann::json j = {
      {"model_type", kImageClassifierType},
      {"arch", o.arch},
      {"in_channels", o.in_channels},
      {"num_classes", o.classes},
      {"width_multiplier", o.width},
      {"depth", o.depth},
      {"batchnorm", batchnorm_mode_name(o.bn)},
      {"norm_groups", o.norm_groups},
      {"image_size", {info.height, info.width}},
      {"layout", "NHWC"},
      {"mean", info.mean},
      {"std", info.std},
      {"class_names", info.classes},
  };
  save_safetensors_dir(dir, model.named_parameters());
  write_text_atomic(dir + "/config.json", j.dump(2) + "\n");
}

ImageModelInfo read_image_model_info(const std::string& dir) {
  const std::string path = dir + "/config.json";
  nlohmann::json j = nlohmann::json::parse(read_text_file(path), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw FormatError(fmt::format("{} is not a JSON object", path));
  if (j.value("model_type", std::string()) != kImageClassifierType)
    throw FormatError(fmt::format("{} does not describe an image classifier (model_type {})", path, kImageClassifierType));
  ImageModelInfo info;
  try {
    ImageModelOptions& o = info.options;
    o.arch = j.at("arch").get<std::string>();
    o.in_channels = j.at("in_channels").get<int64_t>();
    o.classes = j.at("num_classes").get<int64_t>();
    o.width = j.at("width_multiplier").get<float>();
    o.depth = j.at("depth").get<int64_t>();
    o.bn = parse_batchnorm_mode(j.at("batchnorm").get<std::string>());
    o.norm_groups = j.at("norm_groups").get<int64_t>();
    auto size = j.at("image_size").get<std::vector<int64_t>>();
    if (size.size() != 2) throw FormatError(fmt::format("{}: image_size must be [height, width]", path));
    info.height = size[0];
    info.width = size[1];
    info.mean = j.at("mean").get<std::vector<float>>();
    info.std = j.at("std").get<std::vector<float>>();
    info.classes = j.value("class_names", std::vector<std::string>{});
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(fmt::format("{} is missing a field or has one of the wrong type: {}", path, e.what()));
  } catch (const ConfigError& e) {
    throw FormatError(fmt::format("{}: {}", path, e.what()));
  }
  if (static_cast<int64_t>(info.mean.size()) != info.options.in_channels ||
      static_cast<int64_t>(info.std.size()) != info.options.in_channels)
    throw FormatError(fmt::format("{}: mean and std need one value per input channel ({})", path, info.options.in_channels));
  return info;
}

std::unique_ptr<ImageClassifier> load_image_classifier(const std::string& dir, ImageModelInfo* out) {
  ImageModelInfo info = read_image_model_info(dir);
  std::unique_ptr<ImageClassifier> model;
  try {
    model = make_image_classifier(info.options);
  } catch (const ConfigError& e) {
    throw FormatError(fmt::format("{}/config.json: {}", dir, e.what()));
  }
  NamedTensors saved = load_safetensors_dir(dir);
  for (const auto& [name, t] : model->named_parameters()) {
    // (the binding is captured by an init-capture: clang before 16 cannot capture it directly)
    auto it = std::find_if(saved.begin(), saved.end(), [&n = name](const auto& p) { return p.first == n; });
    if (it == saved.end()) throw FormatError(fmt::format("{}/model.safetensors has no tensor {}", dir, name));
    if (it->second.shape() != t.shape() || it->second.dtype() != t.dtype())
      throw FormatError(fmt::format("{}/model.safetensors: tensor {} is {}, the model wants {}", dir, name,
                                    it->second.desc(), t.desc()));
    model->set_parameter(name, it->second);
  }
  if (out) *out = std::move(info);
  return model;
}

}  // namespace bb
