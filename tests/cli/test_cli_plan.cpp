// Planning through the command line, under a budget that binds (140 MiB lies between the
// plans' peaks for this model, about 110 to 260 MiB): some plans are refused, the chosen one
// is the fastest that fits, and `train --memory-budget` runs it with a counted peak exactly as
// predicted and a resident peak under the budget; the fixed overhead `plan` reads is what the
// run then holds beyond the allocator's blocks; budgets that cannot fit are refused before
// anything is built.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "run_cli.h"
#include "train/planner.h"

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

// About 110 MiB in the Release build: the process's fixed overhead the planner reads (about
// 27 MiB there) plus 83 MiB for counted memory. Under AddressSanitizer the overhead is its shadow
// memory and quarantine (over 120 MiB), so the budget is built from the overhead `plan`
// reports, binding the counted memory the same way in both builds.
double budget_mib() {
  static const double budget = [] {
    CliResult r = run_cli(std::string("plan ") + kModel + "--memory 1GiB --precisions fp32 --checkpointing none");
    const double overhead = mib(r.output, R"(fixed process overhead ([0-9.]+) (MiB|GiB))");
    EXPECT_GT(overhead, 0) << r.output;
    return std::ceil(overhead + 83);
  }();
  return budget;
}

// The budget a training run gets. Under AddressSanitizer the overhead the run itself reads
// holds more of the sanitizer's quarantine (freed blocks it keeps to catch late uses, which
// malloc_trim cannot hand back) than `plan` read: 63 MiB more in one run, so 128 MiB more.
double run_budget_mib() {
#ifdef BIGBATCH_SANITIZED
  return budget_mib() + 128;
#else
  return budget_mib();
#endif
}

struct Row {
  double peak_mib = 0, seconds = 0;  // seconds: NaN for a plan that does not fit (not timed)
  bool fits = false, chosen = false;
};

// The rows of `plan`'s table.
std::vector<Row> plan_rows(const std::string& text) {
  std::vector<Row> rows;
  const std::regex row(R"(\|\s+([0-9.]+) (KiB|MiB|GiB)\s+([0-9.]+|-) \| (yes|no)( +<- fastest that fits)?)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), row); it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    const double v = std::stod(m[1].str());
    rows.push_back(Row{.peak_mib = m[2].str() == "GiB" ? v * 1024 : m[2].str() == "KiB" ? v / 1024 : v,
                       .seconds = m[3].str() == "-" ? std::nan("") : std::stod(m[3].str()), .fits = m[4].str() == "yes", .chosen = m[5].matched});
  }
  return rows;
}

// A budget in the middle of the table's counted memory, read from a probe of the same table.
// Under AddressSanitizer the fixed overhead moves by tens of MiB from one process to the next
// (its quarantine: 456 then 486 MiB in one CI run), so a fixed margin above the probe's
// overhead could bind every plan; half the table's span (about 75 MiB) absorbs that.
double binding_budget_mib(const std::string& table) {
  CliResult r = run_cli(std::string("plan ") + kModel + "--memory 8GiB " + table);
  const double overhead = mib(r.output, R"(fixed process overhead ([0-9.]+) (MiB|GiB))");
  EXPECT_GT(overhead, 0) << r.output;
  double lo = 1e30, hi = 0;
  for (const Row& row : plan_rows(r.output)) {
    lo = std::min(lo, row.peak_mib - overhead);
    hi = std::max(hi, row.peak_mib - overhead);
  }
  EXPECT_GT(hi, lo) << r.output;
  return std::ceil(overhead + (lo + hi) / 2);
}

TEST(CliPlan, BudgetThatBindsRefusesSomePlansAndPicksTheFastestThatFits) {
  const std::string table = "--precisions fp32 --checkpointing none,full";
  const double budget = binding_budget_mib(table);
  CliResult r = run_cli(std::string("plan ") + kModel + "--memory " + std::to_string(int(budget)) + "MiB " + table);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("activations"), std::string::npos);
  const std::vector<Row> rows = plan_rows(r.output);
  ASSERT_EQ(rows.size(), 10u) << r.output;  // micro-batches 1, 2, 4, 8, 16 times two policies
  int refused = 0, chosen = -1;
  double fastest_fit = 1e30;
  for (size_t i = 0; i < rows.size(); ++i) {
    // the table prints a tenth of a MiB: a peak printed as the budget itself may lie either side
    if (std::abs(rows[i].peak_mib - budget) >= 0.05) {
      EXPECT_EQ(rows[i].fits, rows[i].peak_mib <= budget) << i << "\n" << r.output;
    }
    if (rows[i].fits) {
      EXPECT_FALSE(std::isnan(rows[i].seconds)) << "a plan that fits is timed\n" << r.output;
    }
    refused += !rows[i].fits;
    if (rows[i].fits) fastest_fit = std::min(fastest_fit, rows[i].seconds);
    if (rows[i].chosen) chosen = static_cast<int>(i);
  }
  EXPECT_GT(refused, 0) << "the budget does not bind\n" << r.output;
  ASSERT_GE(chosen, 0) << r.output;
  EXPECT_TRUE(rows[chosen].fits);
  // Nothing that fits is faster, beyond the planner's tie of 5% (and the printed rounding).
  EXPECT_LE(rows[chosen].seconds, fastest_fit * kTimeTie + 0.001) << r.output;
}

TEST(CliPlan, BudgetedRunMatchesItsPrediction) {
  std::string out = ::testing::TempDir() + "/bb_plan_run";
  std::filesystem::remove_all(out);
  CliResult r = run_cli(std::string("train ") + kModel + "out_dir=" + out + " --overwrite --memory-budget " +
                        std::to_string(int(run_budget_mib())) + "MiB");
  ASSERT_EQ(r.code, 0) << r.output;
  const double predicted = mib(r.output, R"(predicted peak ([0-9.]+) (MiB|GiB))");
  const double counted_plan = mib(r.output, R"(\(([0-9.]+) (MiB|GiB) counted \+)");
  const double fixed = mib(r.output, R"(counted \+ ([0-9.]+) (MiB|GiB) fixed\))");
  const double counted_run = mib(r.output, R"(peak memory ([0-9.]+) (MiB|GiB) counted)");
  const double cached_run = mib(r.output, R"(counted \(([0-9.]+) (MiB|GiB) with the allocator's cache\))");
  const double resident = mib(r.output, R"(cache\), ([0-9.]+) (MiB|GiB) resident)");
  ASSERT_GT(predicted, 0) << r.output;
  ASSERT_GT(fixed, 0) << r.output;
  ASSERT_GT(cached_run, 0) << r.output;
  ASSERT_GT(resident, 0) << r.output;
  EXPECT_DOUBLE_EQ(counted_plan, counted_run);  // printed to 0.1 MiB; exact in tests/train
  EXPECT_LE(predicted, run_budget_mib()) << r.output;
  // The run's header carries the plan, and its report draws the prediction and the budget.
  const auto header = nlohmann::json::parse(read_file(out + "/run.json"));
  EXPECT_EQ(header["prediction"]["source"], "plan");
  EXPECT_EQ(header["prediction"]["budget"].get<int64_t>(), int64_t(run_budget_mib()) << 20);
  int64_t step_peak = 0;
  std::istringstream lines(read_file(out + "/metrics.jsonl"));
  for (std::string line; std::getline(lines, line);)
    step_peak = std::max(step_peak, nlohmann::json::parse(line)["mem_step_peak"].get<int64_t>());
  EXPECT_EQ(step_peak, header["prediction"]["peak"].get<int64_t>());  // the plan's counted peak, to the byte
  const std::string html = read_file(out + "/report.html");
  for (const char* level : {"data-level=\"predicted peak, all counted\"", "data-level=\"budget (whole process)\"",
                            "data-level=\"the allocator&#39;s limit: budget less the fixed overhead\""})
    EXPECT_NE(html.find(level), std::string::npos) << level;
#ifdef BIGBATCH_SANITIZED
  std::printf("sanitized build: the resident peak (%.1f MiB) is AddressSanitizer's as much as ours; it is "
              "compared with the prediction in the Release suite only\n", resident);
  return;
#endif
  EXPECT_LE(resident, budget_mib()) << r.output;
  // The fixed overhead is what the process held beyond the allocator's blocks (its cache
  // included, which stays under the budget the allocator is held to): measured within 3 MiB
  // on this model, so 20% (or 4 MiB) is room for noise, not for a wrong model of the process.
  const double held = resident - cached_run;
  EXPECT_LT(std::abs(held - fixed), std::max(0.2 * fixed, 4.0)) << "held " << held << " MiB\n" << r.output;
}

TEST(CliPlan, BudgetBelowTheWeightsIsRefused) {
  CliResult r = run_cli(std::string("train ") + kModel + "--memory-budget 20MiB");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("optimizer state"), std::string::npos) << r.output;
}

TEST(CliPlan, BudgetBeyondThisMachineIsRefused) {
  // 1e18 bytes parses (it is below 2^62) but no machine here has it: the plan would be met by
  // the out-of-memory killer instead of the allocator's refusal.
  for (const std::string cmd : {std::string("plan ") + kModel + "--memory 1e18",
                                std::string("train ") + kModel + "--memory-budget 1e18"}) {
    CliResult r = run_cli(cmd);
    EXPECT_EQ(r.code, 1) << cmd << "\n" << r.output;
    EXPECT_NE(r.output.find("is more than this machine's"), std::string::npos) << r.output;
  }
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
