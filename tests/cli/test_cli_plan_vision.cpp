// The planner plans language models only: for a vision config, `plan` and
// `train --memory-budget` refuse with a sentence instead of ignoring the budget.
#include <gtest/gtest.h>

#include "run_cli.h"

namespace bb::test {
namespace {

TEST(CliPlanVision, BudgetForAVisionModelIsRefusedNotIgnored) {
  const std::string args = "model.type=resnet data.path=/nonexistent out_dir=" + ::testing::TempDir() + "/bb_vis_budget";
  CliResult t = run_cli("train " + args + " --memory-budget 1GiB");
  EXPECT_EQ(t.code, 1) << t.output;
  EXPECT_NE(t.output.find("--memory-budget plans language models only"), std::string::npos) << t.output;
  CliResult p = run_cli("plan " + args + " --memory 1GiB");
  EXPECT_EQ(p.code, 1) << p.output;
  EXPECT_NE(p.output.find("plans language models only"), std::string::npos) << p.output;
}

}  // namespace
}  // namespace bb::test
