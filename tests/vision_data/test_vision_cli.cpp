// A tiny end-to-end vision run through the CLI: Fashion-MNIST subset, K > 1, test accuracy
// per epoch, metrics, resume, the saved model, and `bigbatch eval` with a confusion matrix.
#include <gtest/gtest.h>

#include <filesystem>

#include "../cli/run_cli.h"

namespace bb {
namespace {
using test::run_cli;

const char* kFashion = "/usr/share/datasets/fashion-mnist";

std::string tiny_args(const std::string& out) {
  return std::string("train model.type=resnet model.width=0.25 data.format=fashion-mnist data.path=") + kFashion +
         " data.limit=96 data.test_limit=40 data.crop_padding=2 data.flip=1 train.micro_batch_size=8"
         " train.grad_accum_steps=3 train.epochs=2 train.optimizer=sgd train.lr=0.05 train.warmup_steps=1"
         " train.log_every=1 train.checkpoint_every=0 out_dir=" + out;
}

TEST(VisionCli, TrainsEvaluatesAndResumes) {
  ASSERT_TRUE(std::filesystem::exists(std::string(kFashion) + "/train-images-idx3-ubyte.gz"))
      << "dataset-fashion-mnist is not installed (scripts/setup.sh installs it)";
  const std::string out = ::testing::TempDir() + "/vdata_cli_run";
  std::filesystem::remove_all(out);
  auto r = run_cli(tiny_args(out));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("96 training images 28x28x1, 40 test images, 10 classes"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("3 micro-batches of 8, 8 steps"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("batchnorm: micro"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("img/s"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("epoch 1.00: test accuracy"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("epoch 2.00: test accuracy"), std::string::npos) << r.output;
  EXPECT_TRUE(std::filesystem::exists(out + "/model.safetensors"));
  const std::string metrics = test::read_file(out + "/metrics.jsonl");
  EXPECT_NE(metrics.find("\"test_accuracy\""), std::string::npos);
  EXPECT_NE(test::read_file(out + "/config.json").find("\"arch\": \"resnet\""), std::string::npos);

  auto ev = run_cli("eval --model " + out + " --micro-batch 50");
  ASSERT_EQ(ev.code, 0) << ev.output;
  EXPECT_NE(ev.output.find("test accuracy"), std::string::npos) << ev.output;
  EXPECT_NE(ev.output.find("confusion matrix (rows: true class, columns: predicted)"), std::string::npos) << ev.output;
  EXPECT_NE(ev.output.find("Ankle boot"), std::string::npos) << ev.output;

  // Stopping after 3 steps and resuming ends at the same weights as the straight run.
  const std::string out2 = ::testing::TempDir() + "/vdata_cli_resume";
  std::filesystem::remove_all(out2);
  auto s1 = run_cli(tiny_args(out2) + " --stop-after 3");
  ASSERT_EQ(s1.code, 0) << s1.output;
  auto s2 = run_cli(tiny_args(out2) + " --resume");
  ASSERT_EQ(s2.code, 0) << s2.output;
  EXPECT_NE(s2.output.find("resumed from"), std::string::npos) << s2.output;
  EXPECT_EQ(test::read_file(out + "/model.safetensors"), test::read_file(out2 + "/model.safetensors"));
}

TEST(VisionCli, BadImageConfigsAreOneSentence) {
  auto r = run_cli("train model.type=resnet data.format=fashion-mnist data.path=/nonexistent out_dir=" +
                   ::testing::TempDir() + "/vdata_bad");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("/nonexistent has no train-images-idx3-ubyte"), std::string::npos) << r.output;
  r = run_cli(std::string("train model.type=resnet model.batchnorm=sometimes data.format=fashion-mnist data.path=") +
              kFashion + " data.limit=8 out_dir=" + ::testing::TempDir() + "/vdata_bad");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("model.batchnorm 'sometimes' is not known"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace bb
