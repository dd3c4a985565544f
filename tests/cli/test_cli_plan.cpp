// Planning through the command line: `train --memory-budget` runs the plan it prints, whose
// counted peak is exact and whose resident peak is within 10% of the prediction plus the
// process's fixed overhead; budgets that cannot fit are refused before anything is built.
#include <gtest/gtest.h>

#include <regex>

#include "run_cli.h"

namespace bb::test {
namespace {

double mib(const std::string& text, const std::string& pattern) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(pattern))) return -1;
  double v = std::stod(m[1].str());
  return m[2].str() == "GiB" ? v * 1024 : v;
}

const char* kModel =
    "model.n_layer=4 model.n_embd=256 model.n_head=4 model.block_size=128 train.micro_batch_size=8 "
    "train.grad_accum_steps=2 train.steps=3 train.eval_every=0 sample.max_new_tokens=5 ";

TEST(CliPlan, BudgetedRunMatchesItsPrediction) {
  std::string out = ::testing::TempDir() + "/bb_plan_run";
  CliResult r = run_cli(std::string("train ") + kModel + "out_dir=" + out + " --memory-budget 1GiB");
  ASSERT_EQ(r.code, 0) << r.output;
  const double predicted = mib(r.output, R"(predicted peak ([0-9.]+) (MiB|GiB))");
  const double counted_plan = mib(r.output, R"(\(([0-9.]+) (MiB|GiB) counted \+)");
  const double counted_run = mib(r.output, R"(peak memory ([0-9.]+) (MiB|GiB) counted)");
  const double resident = mib(r.output, R"(counted, ([0-9.]+) (MiB|GiB) resident)");
  ASSERT_GT(predicted, 0) << r.output;
  ASSERT_GT(resident, 0) << r.output;
  EXPECT_DOUBLE_EQ(counted_plan, counted_run);  // printed to 0.1 MiB; exact in tests/train
  EXPECT_LT(std::abs(resident - predicted) / predicted, 0.10) << r.output;
  EXPECT_LE(resident, 1024.0);
}

TEST(CliPlan, PlanPrintsEveryCandidateAndMarksTheBest) {
  CliResult r = run_cli(std::string("plan ") + kModel + "--memory 1GiB --precisions fp32 --checkpointing none,full");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("fastest that fits"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("activations"), std::string::npos);
}

TEST(CliPlan, BudgetBelowTheWeightsIsRefused) {
  CliResult r = run_cli(std::string("train ") + kModel + "--memory-budget 20MiB");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("optimizer state"), std::string::npos) << r.output;
}

TEST(CliPlan, UnknownPolicyOrPrecisionIsNamed) {
  CliResult r = run_cli(std::string("plan ") + kModel + "--memory 1GiB --checkpointing sometimes");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("train.checkpointing"), std::string::npos) << r.output;
  CliResult p = run_cli(std::string("plan ") + kModel + "--memory 1GiB --precisions fp8");
  EXPECT_EQ(p.code, 1) << p.output;
  EXPECT_NE(p.output.find("fp8"), std::string::npos) << p.output;
}

}  // namespace
}  // namespace bb::test
