// The planner's predicted step time against the measured one on the default job, fp32 and
// bf16: within 30%. Both figures come from this machine in the same test, so the check is of
// the time model (what it counts and the rates it measures), not of the machine's speed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "../sanitized.h"
#include "run_cli.h"

namespace bb::test {
namespace {

const std::string kDefault = std::string(BIGBATCH_SOURCE_DIR) + "/configs/default.yaml";

// The `step s` column of the plan row with the default job's micro-batch 16 x 4, no
// checkpointing, in `precision`.
double predicted_seconds(const std::string& precision) {
  CliResult r = run_cli("plan " + kDefault + " --memory 8GiB --precisions " + precision + " --checkpointing none");
  EXPECT_EQ(r.code, 0) << r.output;
  std::smatch m;
  const std::regex row("\\n +16 +4 +none +" + precision + " \\|[^|]*\\|\\s+[0-9.]+ [KMG]iB\\s+([0-9.]+) \\|");
  EXPECT_TRUE(std::regex_search(r.output, m, row)) << r.output;
  return m.empty() ? -1 : std::stod(m[1].str());
}

// The median step time of a short default run, its first two steps (warm-up) left out.
double measured_seconds(const std::string& precision) {
  const std::string out = ::testing::TempDir() + "/bb_plan_time_" + precision;
  std::filesystem::remove_all(out);
  CliResult r = run_cli("train " + kDefault + " train.precision=" + precision +
                        " train.steps=10 train.eval_every=0 train.checkpoint_every=0 sample.max_new_tokens=0 out_dir=" +
                        out + " --overwrite");
  EXPECT_EQ(r.code, 0) << r.output;
  std::vector<double> steps;
  std::istringstream in(read_file(out + "/metrics.jsonl"));
  for (std::string line; std::getline(in, line);)
    if (nlohmann::json j = nlohmann::json::parse(line); j["step"].get<int>() > 2) steps.push_back(j["step_s"].get<double>());
  EXPECT_EQ(steps.size(), 8u);
  if (steps.empty()) return -1;
  std::nth_element(steps.begin(), steps.begin() + steps.size() / 2, steps.end());
  return steps[steps.size() / 2];
}

// Up to three tries of each precision: an error of the time model is systematic and fails
// every try, while a stall of this shared machine during a probe or a step fails one.
TEST(CliPlanTime, PredictedStepIsWithin30PercentOfTheMeasuredOnTheDefaultJob) {
  BB_SKIP_IF_SANITIZED("instrumented kernels run several times slower than the rates the planner measures");
  for (const std::string precision : {"fp32", "bf16"}) {
    double best_error = 1e30;
    for (int attempt = 1; attempt <= 3 && best_error >= 0.30; ++attempt) {
      const double predicted = predicted_seconds(precision), measured = measured_seconds(precision);
      ASSERT_GT(predicted, 0);
      ASSERT_GT(measured, 0);
      std::printf("[ %s, try %d ] predicted %.3f s a step, measured %.3f s (%+.0f%%)\n", precision.c_str(), attempt,
                  predicted, measured, 100.0 * (predicted - measured) / measured);
      best_error = std::min(best_error, std::abs(predicted - measured) / measured);
    }
    EXPECT_LT(best_error, 0.30) << precision;
  }
}

}  // namespace
}  // namespace bb::test
