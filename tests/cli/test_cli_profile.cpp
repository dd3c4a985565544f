// train.profile=true: steps 2 to 4 of a run are profiled and printed as one table, each
// phase of the step with its kernels (checkpoint replays as their own phase), and the run
// itself goes on as without it.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <sstream>

#include "run_cli.h"

namespace bb::test {
namespace {

const std::string kRun =
    "model.n_layer=2 model.n_head=2 model.n_embd=32 model.block_size=32 train.micro_batch_size=2 "
    "train.grad_accum_steps=2 train.eval_every=0 train.checkpoint_every=0 sample.max_new_tokens=0 ";

std::string train(const std::string& extra, const std::string& name) {
  const std::string out = ::testing::TempDir() + "/bb_profile_" + name;
  std::filesystem::remove_all(out);
  CliResult r = run_cli("train " + kRun + extra + " out_dir=" + out);
  EXPECT_EQ(r.code, 0) << r.output;
  return r.output;
}

TEST(CliProfile, StepsTwoToFourAreProfiledByPhaseAndOp) {
  const std::string out = train("train.steps=6 train.profile=true train.checkpointing=full", "full");
  EXPECT_NE(out.find("profile of 3 steps: "), std::string::npos) << out;
  for (const char* row : {"forward    matmul", "backward   matmul", "recompute  matmul", "backward   attention_backward",
                          "optimizer  adamw", "gradients  scale_add", "forward    (outside kernels)"})
    EXPECT_NE(out.find(row), std::string::npos) << row << "\n" << out;
  // Full checkpointing replays each block's 4 products (qkv, proj, fc, fc2): 2 layers x 4 x
  // 2 micro-batches a step; the forward runs those and the head's.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("recompute +matmul +([0-9]+) "))) << out;
  EXPECT_EQ(std::stoi(m[1].str()), 16) << out;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("forward +matmul +([0-9]+) "))) << out;
  EXPECT_GT(std::stoi(m[1].str()), 16) << out;
  // The table comes once, after step 4, and the run finishes.
  EXPECT_EQ(out.find("profile of"), out.rfind("profile of")) << out;
  EXPECT_NE(out.find("step     6/6"), std::string::npos) << out;
}

TEST(CliProfile, AShortRunProfilesWhatItHas) {
  const std::string out = train("train.steps=1 train.profile=true", "one");
  EXPECT_NE(out.find("profile of 1 step: "), std::string::npos) << out;
  EXPECT_EQ(out.find("recompute"), std::string::npos) << "no checkpointing, no replay\n" << out;
}

TEST(CliProfile, OffByDefaultAndOnlyTrueOrFalse) {
  EXPECT_EQ(train("train.steps=2", "off").find("profile of"), std::string::npos);
  CliResult r = run_cli("train " + kRun + "train.steps=2 train.profile=yes");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("train.profile"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace bb::test
