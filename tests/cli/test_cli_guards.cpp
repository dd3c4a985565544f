// No silent wrong result through the command line: a diverging fp32 run stops naming the step
// and saves no model; instruction data whose completions all lie beyond block_size is skipped
// in training and refused by eval; sampling options out of range are refused by flag; and
// train.steps on the command line replaces a config file's train.epochs.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "run_cli.h"

namespace bb::test {
namespace {

const std::string kTiny =
    "model.n_layer=1 model.n_head=2 model.n_embd=32 model.block_size=32 train.micro_batch_size=2 "
    "train.grad_accum_steps=1 train.eval_every=0 train.checkpoint_every=0 sample.max_new_tokens=0 ";

std::string documents() {
  std::string text;
  for (int i = 0; i < 30; ++i) text += "the quick brown fox jumps over the lazy dog " + std::to_string(i) + "\n%\n";
  return write_file("guards_docs.txt", text);
}

TEST(CliGuards, DivergingRunStopsNamingTheStepAndSavesNothing) {
  const std::string out = ::testing::TempDir() + "/bb_guard_nan";
  std::filesystem::remove_all(out);
  CliResult r = run_cli("train " + kTiny + "train.steps=10 train.lr=1e30 data.path=" + documents() + " out_dir=" + out);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("step 2: the training loss is nan in fp32"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(out + "/model.safetensors"));
}

TEST(CliGuards, NoTrainedTokensIsSkippedInTrainingAndRefusedByEval) {
  std::string lines;
  for (int i = 0; i < 12; ++i)
    lines += nlohmann::json{{"prompt", "Q: " + std::string(40, 'x') + std::to_string(i) + "\n"}, {"completion", "A: yes"}}
                 .dump() + "\n";
  const std::string data = write_file("guards_beyond.jsonl", lines);
  const std::string out = ::testing::TempDir() + "/bb_guard_empty";
  std::filesystem::remove_all(out);
  CliResult r = run_cli("train " + kTiny + "train.steps=2 train.log_every=0 data.format=instruct data.val_fraction=0 "
                        "data.too_long=truncate data.path=" + data + " out_dir=" + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("step     1/2 | loss 0.0000"), std::string::npos) << r.output;  // said though log_every=0
  EXPECT_NE(r.output.find("skipped (no target tokens)"), std::string::npos) << r.output;
  CliResult ev = run_cli("eval --model " + out + " --data " + data + " --format instruct --too-long truncate --batches 2 --micro-batch 2");
  EXPECT_EQ(ev.code, 1) << ev.output;
  EXPECT_NE(ev.output.find("no tokens to evaluate"), std::string::npos) << ev.output;
  EXPECT_EQ(ev.output.find("perplexity"), std::string::npos) << ev.output;
}

TEST(CliGuards, SamplingFlagsOutOfRangeAreRefusedByName) {
  for (auto [flags, name] : std::vector<std::pair<std::string, std::string>>{
           {"--temperature -0.5", "--temperature"}, {"--temperature nan", "--temperature"},
           {"--top-p 0", "--top-p"}, {"--top-p 1.5", "--top-p"}, {"--top-p nan", "--top-p"}, {"--top-k -1", "--top-k"}}) {
    CliResult r = run_cli("generate --model /nonexistent --prompt a " + flags);
    EXPECT_EQ(r.code, 1) << flags << ": " << r.output;
    EXPECT_NE(r.output.find(name + " must"), std::string::npos) << flags << ": " << r.output;
  }
}

TEST(CliGuards, CommandLineStepsReplaceAFilesEpochs) {
  const std::string yaml = write_file("guards_epochs.yaml", "train:\n  epochs: 15\ndata:\n  format: documents\n");
  const std::string out = ::testing::TempDir() + "/bb_guard_steps";
  std::filesystem::remove_all(out);
  CliResult r = run_cli("train " + yaml + " " + kTiny + "train.steps=3 train.log_every=1 data.path=" + documents() +
                        " out_dir=" + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("step     3/3 "), std::string::npos) << r.output;
  // Without the override the file's epochs decide: 15 epochs of the documents, the last
  // window of each cut at the epoch's end.
  std::filesystem::remove_all(out + "_e");
  CliResult e = run_cli("train " + yaml + " " + kTiny + "train.log_every=0 --stop-after 1 data.path=" + documents() +
                        " out_dir=" + out + "_e");
  ASSERT_EQ(e.code, 0) << e.output;
  EXPECT_NE(e.output.find("(15 epochs of "), std::string::npos) << e.output;
  EXPECT_NE(e.output.find("stopped after 1 step at step 1"), std::string::npos) << e.output;
}

}  // namespace
}  // namespace bb::test
