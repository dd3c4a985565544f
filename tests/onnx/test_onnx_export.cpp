// ONNX export equivalence: a model with non-trivial BatchNorm statistics (and one with
// GroupNorm) is saved, exported with `bigbatch export`, run in onnxruntime (node +
// onnxruntime-node, installed by scripts/setup.sh), and must give bigbatch's logits within
// 1e-4. A missing node or onnxruntime fails the test: the setup installs them.
#include "../sanitized.h"
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "../cli/run_cli.h"
#include "core/grad_mode.h"
#include "io/image_model.h"

namespace bb {
namespace {

const std::string kNodeDir = std::string(BIGBATCH_FIXTURES) + "/../onnx";

// Gives every tensor of the model random values (variances positive), so that folding
// BatchNorm is tested on statistics far from (0, 1).
void randomise(ImageClassifier& m, uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto& [name, t] : m.named_parameters()) {
    if (t.dtype() != DType::F32) continue;
    std::vector<float> v(t.numel());
    const bool var = name.find("running_var") != std::string::npos;
    const bool conv = t.ndim() == 4;
    const float scale = conv ? std::sqrt(2.0f / (t.dim(1) * t.dim(2) * t.dim(3))) : 0.3f;
    for (float& x : v) x = var ? 0.5f + std::abs(normal(rng)) : normal(rng) * scale;
    m.set_parameter(name, Tensor::from_floats(t.shape(), v));
  }
}

void write_floats(const std::string& path, const std::vector<float>& v) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

std::vector<float> read_floats(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), {});
  std::vector<float> v(s.size() / sizeof(float));
  std::memcpy(v.data(), s.data(), v.size() * sizeof(float));
  return v;
}

void check_equivalence(const std::string& arch, BatchNormMode bn, int64_t channels, int64_t size) {
  ImageModelOptions o{.arch = arch, .in_channels = channels, .classes = 7, .width = 0.5f, .depth = 1, .bn = bn, .seed = 3};
  auto model = make_image_classifier(o);
  randomise(*model, 5);
  ImageModelInfo info;
  info.options = o;
  info.height = info.width = size;
  for (int64_t c = 0; c < channels; ++c) {
    info.mean.push_back(0.3f + 0.1f * c);
    info.std.push_back(0.25f + 0.05f * c);
  }
  const std::string dir = ::testing::TempDir() + "/vdata_onnx_" + arch + std::to_string(static_cast<int>(bn));
  std::filesystem::remove_all(dir);
  save_image_classifier(dir, *model, info);
  auto ex = test::run_cli("export --model " + dir + " --format onnx --out " + dir + "/m.onnx");
  BB_SKIP_IF_SANITIZED(kNoOnnxUnderAsan);
  ASSERT_EQ(ex.code, 0) << ex.output;

  // Pixels in [0, 1], NCHW for ONNX; normalised NHWC for bigbatch.
  const int64_t n = 3;
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> nchw(n * channels * size * size), nhwc(nchw.size());
  for (float& v : nchw) v = u(rng);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t p = 0; p < size * size; ++p)
        nhwc[(i * size * size + p) * channels + c] = (nchw[(i * channels + c) * size * size + p] - info.mean[c]) / info.std[c];
  NoGradGuard no_grad;
  const std::vector<float> want =
      model->logits(Tensor::from_floats(Shape{n, size, size, channels}, nhwc), Context{.training = false}).to_floats();

  write_floats(dir + "/in.f32", nchw);
  const std::string cmd = "node " + kNodeDir + "/run_onnx.js " + dir + "/m.onnx " + dir + "/in.f32 " +
                          std::to_string(n) + "," + std::to_string(channels) + "," + std::to_string(size) + "," +
                          std::to_string(size) + " " + dir + "/out.f32";
  auto r = test::CliResult{};
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, got);
  const int status = pclose(p);
  ASSERT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0)
      << "onnxruntime failed (scripts/setup.sh installs node and onnxruntime-node): " << r.output;
  const std::vector<float> got_logits = read_floats(dir + "/out.f32");
  ASSERT_EQ(got_logits.size(), want.size()) << r.output;
  float worst = 0;
  for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(got_logits[i] - want[i]));
  EXPECT_LE(worst, 1e-4f) << arch << ": max abs difference of the logits";
  float spread = 0;
  for (float v : want) spread = std::max(spread, std::abs(v));
  EXPECT_GT(spread, 1e-2f);  // the comparison is not between zeros
}

TEST(OnnxExport, ResNetWithFoldedBatchNormMatchesOnnxRuntime) {
  check_equivalence("resnet", BatchNormMode::kMicro, 1, 28);
}

TEST(OnnxExport, MobileNetV2MatchesOnnxRuntime) { check_equivalence("mobilenetv2", BatchNormMode::kFrozen, 3, 32); }

TEST(OnnxExport, GroupNormResNetMatchesOnnxRuntime) { check_equivalence("resnet", BatchNormMode::kGroup, 3, 32); }

TEST(OnnxExport, RefusesALanguageModelFolder) {
  const std::string dir = ::testing::TempDir() + "/vdata_onnx_notimage";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << R"({"model_type": "gpt2"})";
  auto r = test::run_cli("export --model " + dir + " --format onnx");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("does not describe an image classifier"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace bb
