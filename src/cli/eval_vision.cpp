// `bigbatch eval` on an image classifier (test accuracy and a confusion matrix) and
// `bigbatch export --format onnx`.
#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/vision_commands.h"
#include "core/error.h"
#include "data/idx.h"
#include "data/image_folder.h"
#include "io/atomic_dir.h"
#include "io/atomic_file.h"
#include "io/onnx_export.h"
#include "train/vision_job.h"

namespace bb {
namespace fs = std::filesystem;

bool is_image_model_dir(const std::string& dir) {
  const std::string path = dir + "/config.json";
  if (!fs::exists(path)) return false;
  auto j = nlohmann::json::parse(read_text_file(path), nullptr, false);
  return j.is_object() && j.value("model_type", std::string()) == kImageClassifierType;
}

namespace {

void print_confusion(const ClassifierEval& e, const std::vector<std::string>& classes) {
  const size_t n = e.confusion.size();
  auto name = [&](size_t i) { return i < classes.size() ? classes[i] : std::to_string(i); };
  size_t w = 5;
  for (size_t i = 0; i < n; ++i) w = std::max(w, name(i).size());
  fmt::print("confusion matrix (rows: true class, columns: predicted):\n{:>{}}", "", w + 2);
  for (size_t c = 0; c < n; ++c) fmt::print(" {:>5}", c);
  fmt::print("  recall\n");
  for (size_t r = 0; r < n; ++r) {
    int64_t total = 0;
    for (int64_t v : e.confusion[r]) total += v;
    fmt::print("{:>2} {:<{}}", r, name(r), w - 1);
    for (size_t c = 0; c < n; ++c) fmt::print(" {:>5}", e.confusion[r][c]);
    fmt::print("  {:>5.1f}%\n", total ? 100.0 * e.confusion[r][r] / total : 0.0);
  }
}

}  // namespace

int run_eval_vision(const EvalArgs& a) {
  ImageModelInfo info;
  auto model = load_image_classifier(a.model_dir, &info);
  if (a.micro_batch <= 0) throw ConfigError("--micro-batch must be positive");
  // The test images: --data names a Fashion-MNIST folder or an image folder (default: Debian's
  // Fashion-MNIST test split).
  std::string path = a.data_path.empty() ? "/usr/share/datasets/fashion-mnist" : a.data_path;
  std::string format = a.format == "text" ? "" : a.format;  // text is eval's default for language models
  if (format.empty())
    format = fs::exists(path + "/t10k-images-idx3-ubyte.gz") || fs::exists(path + "/t10k-images-idx3-ubyte")
                 ? "fashion-mnist" : "image-folder";
  ImageSet set;
  if (format == "fashion-mnist") set = load_fashion_mnist(path, "t10k");
  else if (format == "image-folder")
    set = load_image_folder(path, ImageFolderOptions{.height = info.height, .width = info.width,
                                                     .channels = info.options.in_channels, .classes = {}});
  else throw ConfigError(fmt::format("--format '{}' is not an image format (fashion-mnist or image-folder)", format));
  if (set.height != info.height || set.width != info.width || set.channels != info.options.in_channels)
    throw FormatError(fmt::format("{} holds {}x{}x{} images but the model takes {}x{}x{}", path, set.height, set.width,
                                  set.channels, info.height, info.width, info.options.in_channels));
  ImageDataset data(std::move(set), ImageTransform{.mean = info.mean, .std = info.std, .shuffle = false});
  ClassifierEval e = evaluate_classifier(*model, data, info.options.classes, a.micro_batch, Precision::kFP32);
  fmt::print("{} on {}: test accuracy {:.2f}% ({} images), mean loss {:.4f}\n", a.model_dir, path, 100 * e.accuracy,
             e.samples, e.loss);
  print_confusion(e, info.classes);
  return 0;
}

void check_export_out(const ExportArgs& a, const std::string& out) {
  std::error_code ec;
  if (fs::is_directory(out, ec)) throw ConfigError(fmt::format("--out {} is a folder; name the file to write", out));
  for (const std::string& f : model_folder_files(a.model_dir))
    if (fs::equivalent(out, fs::path(a.model_dir) / f, ec))
      throw ConfigError(fmt::format("--out {} is the model's own {}; exporting would overwrite it", out, f));
  if (fs::exists(out, ec) && !a.overwrite)
    throw ConfigError(fmt::format("--out {} already exists; choose another file or pass --overwrite", out));
}

int run_export(const ExportArgs& a) {
  // Without --format, the model decides: image classifiers go to ONNX, language models to GGUF.
  const std::string format = !a.format.empty() ? a.format : is_image_model_dir(a.model_dir) ? "onnx" : "gguf";
  if (format == "gguf") return run_export_gguf(a);
  if (format != "onnx") throw ConfigError(fmt::format("--format '{}' is not known (onnx, gguf)", format));
  if (!a.adapter_dir.empty()) throw ConfigError("--adapter applies to --format gguf only");
  if (!is_image_model_dir(a.model_dir))
    throw FormatError(fmt::format("{}/config.json does not describe an image classifier; only those export to ONNX",
                                  a.model_dir));
  ImageModelInfo info;
  auto model = load_image_classifier(a.model_dir, &info);
  const std::string out = a.out.empty() ? a.model_dir + "/model.onnx" : a.out;
  check_export_out(a, out);
  export_image_classifier_onnx(*model, info, out);
  fmt::print("wrote {}: input \"input\" (N, {}, {}, {}) pixels in [0, 1], output \"logits\" (N, {}); BatchNorm folded\n",
             out, info.options.in_channels, info.height, info.width, info.options.classes);
  return 0;
}

}  // namespace bb
