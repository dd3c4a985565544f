// data.packing from the command line: the run's header says how the examples were packed, an
// interrupted packed run resumes to the weights of the uninterrupted one, and packing is
// refused where it would mean nothing (random windows of text are full already).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "run_cli.h"

namespace bb::test {
namespace {

namespace fs = std::filesystem;

// Chats of very different lengths, as people's fine-tuning data is.
std::string chats() {
  std::string lines;
  for (int i = 0; i < 60; ++i) {
    std::string answer = "ok";
    for (int w = 0; w < (i * 7) % 19; ++w) answer += " and more";
    lines += nlohmann::json{{"messages", {{{"role", "user"}, {"content", "tell me " + std::to_string(i)}},
                                          {{"role", "assistant"}, {"content", answer}}}}}
                 .dump() +
             "\n";
  }
  return write_file("packing_chats.jsonl", lines);
}

std::string train_args(const std::string& out, int steps) {
  return "train model.type=llama model.n_layer=1 model.n_head=2 model.n_kv_head=1 model.n_embd=32 "
         "model.block_size=256 train.micro_batch_size=2 train.grad_accum_steps=2 train.eval_every=0 "
         "sample.max_new_tokens=0 data.format=instruct data.packing=true data.val_fraction=0.1 data.path=" +
         chats() + " train.checkpoint_every=2 train.steps=" + std::to_string(steps) + " out_dir=" + out;
}

TEST(CliPacking, HeaderSaysHowTheExamplesWerePacked) {
  const std::string out = ::testing::TempDir() + "/bb_packing_header";
  fs::remove_all(out);
  CliResult r = run_cli(train_args(out, 2));
  ASSERT_EQ(r.code, 0) << r.output;
  // 54 training examples of 30 to 210 bytes: a few rows of 256 tokens hold them
  EXPECT_NE(r.output.find("packed: 54 examples in "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rows of 256 tokens"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("attention within each example"), std::string::npos) << r.output;
}

TEST(CliPacking, ResumedRunEndsWithTheWeightsOfTheUninterruptedOne) {
  const std::string whole = ::testing::TempDir() + "/bb_packing_whole", parts = ::testing::TempDir() + "/bb_packing_parts";
  fs::remove_all(whole);
  fs::remove_all(parts);
  CliResult a = run_cli(train_args(whole, 4));
  ASSERT_EQ(a.code, 0) << a.output;
  CliResult b = run_cli(train_args(parts, 2));
  ASSERT_EQ(b.code, 0) << b.output;
  CliResult c = run_cli(train_args(parts, 4) + " --resume");
  ASSERT_EQ(c.code, 0) << c.output;
  EXPECT_NE(c.output.find("resumed from"), std::string::npos) << c.output;
  EXPECT_EQ(read_file(whole + "/model.safetensors"), read_file(parts + "/model.safetensors"));
}

TEST(CliPacking, RefusedWhereItWouldMeanNothing) {
  CliResult r = run_cli("train data.packing=true out_dir=" + ::testing::TempDir() + "/bb_packing_text");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("data.packing applies to data.format documents or instruct, not text"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace bb::test
