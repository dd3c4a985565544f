// The train, eval, generate and verify commands end to end on a small corpus, including the
// files a run leaves and resume through the command line.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "run_cli.h"

namespace bb::test {
namespace {

std::string corpus() {
  std::string text;
  for (int i = 0; i < 400; ++i) text += "the quick brown fox jumps over the lazy dog " + std::to_string(i % 17) + "\n%\n";
  return write_file("corpus.txt", text);
}

std::string tiny(const std::string& out) {
  return "model.n_layer=1 model.n_head=2 model.n_embd=32 model.block_size=32 train.micro_batch_size=2 "
         "train.grad_accum_steps=2 train.steps=4 train.log_every=1 train.eval_every=2 train.eval_batches=2 "
         "train.checkpoint_every=0 sample.max_new_tokens=20 data.path=" + corpus() + " out_dir=" + out;
}

TEST(CliTrain, RunLeavesMetricsModelAndHubConfig) {
  std::string out = ::testing::TempDir() + "/bb_cli_run";
  std::filesystem::remove_all(out);
  CliResult r = run_cli("train " + tiny(out));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("tok/s"), std::string::npos);
  EXPECT_NE(r.output.find("sample:"), std::string::npos);
  std::istringstream metrics(read_file(out + "/metrics.jsonl"));
  std::string line;
  int lines = 0;
  while (std::getline(metrics, line)) {
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["step"].get<int>(), ++lines);
    for (const char* k : {"loss", "lr", "tokens_per_s", "mem_peak"}) EXPECT_TRUE(j.contains(k)) << k;
  }
  EXPECT_EQ(lines, 4);
  auto cfg = nlohmann::json::parse(read_file(out + "/config.json"));
  for (const char* k : {"n_layer", "n_head", "n_embd", "n_positions", "vocab_size", "layer_norm_epsilon"})
    EXPECT_TRUE(cfg.contains(k)) << k;
  EXPECT_EQ(cfg["model_type"], "gpt2");
  EXPECT_TRUE(std::filesystem::exists(out + "/model.safetensors"));

  CliResult ev = run_cli("eval --model " + out + " --data " + corpus() + " --batches 2 --micro-batch 2");
  ASSERT_EQ(ev.code, 0) << ev.output;
  EXPECT_NE(ev.output.find("mean loss per target token"), std::string::npos);
  CliResult gen = run_cli("generate --model " + out + " --prompt 'the quick' --max-new-tokens 10");
  ASSERT_EQ(gen.code, 0) << gen.output;
  EXPECT_EQ(gen.output.rfind("the quick", 0), 0u) << gen.output;
}

TEST(CliTrain, ResumeThroughTheCommandLineIsBitIdentical) {
  std::string a = ::testing::TempDir() + "/bb_cli_a", b = ::testing::TempDir() + "/bb_cli_b";
  std::filesystem::remove_all(a);
  std::filesystem::remove_all(b);
  ASSERT_EQ(run_cli("train " + tiny(a) + " model.dropout=0.1").code, 0);
  CliResult first = run_cli("train " + tiny(b) + " model.dropout=0.1 --stop-after 2");
  ASSERT_EQ(first.code, 0) << first.output;
  EXPECT_NE(first.output.find("--resume"), std::string::npos);
  CliResult second = run_cli("train " + tiny(b) + " model.dropout=0.1 --resume");
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_EQ(read_file(a + "/model.safetensors"), read_file(b + "/model.safetensors"));
}

TEST(CliTrain, VerifyPassesOnAccumulation) {
  std::string out = ::testing::TempDir() + "/bb_cli_verify";
  CliResult r = run_cli("verify " + tiny(out) + " train.grad_accum_steps=4 data.format=documents");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("PASS"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace bb::test
