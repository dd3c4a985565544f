// fp16 through the command line: a run at the default job's width (products of more than
// 32768 outputs, on two threads) trains, and its resume keeps the loss scaler's state so the
// weights are bit-identical to an uninterrupted run's.
#include <gtest/gtest.h>

#include <filesystem>

#include "run_cli.h"

namespace bb::test {
namespace {

std::string fp16_args(const std::string& out) {
  std::string text;
  for (int i = 0; i < 300; ++i) text += "fp16 keeps eleven bits of mantissa " + std::to_string(i % 13) + "\n";
  return "model.n_layer=1 model.n_head=4 model.n_embd=128 model.block_size=128 train.micro_batch_size=4 "
         "train.grad_accum_steps=2 train.steps=4 train.precision=fp16 train.log_every=1 train.eval_every=0 "
         "train.checkpoint_every=0 sample.max_new_tokens=0 model.dropout=0.1 data.path=" +
         write_file("fp16_corpus.txt", text) + " out_dir=" + out;
}

TEST(CliFp16, TrainsAndResumesBitIdentically) {
  const std::string a = ::testing::TempDir() + "/bb_fp16_a", b = ::testing::TempDir() + "/bb_fp16_b";
  std::filesystem::remove_all(a);
  std::filesystem::remove_all(b);
  CliResult whole = run_cli("train " + fp16_args(a));
  ASSERT_EQ(whole.code, 0) << whole.output;
  EXPECT_NE(whole.output.find("fp16"), std::string::npos) << whole.output;
  CliResult first = run_cli("train " + fp16_args(b) + " --stop-after 2");
  ASSERT_EQ(first.code, 0) << first.output;
  CliResult second = run_cli("train " + fp16_args(b) + " --resume");
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_EQ(read_file(a + "/model.safetensors"), read_file(b + "/model.safetensors"));
}

}  // namespace
}  // namespace bb::test
