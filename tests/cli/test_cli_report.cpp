// `bigbatch report` and the report `train` writes: real short runs rendered in headless
// Chromium (tests/report/check_report.js), whose drawing is checked against the metrics
// files read here independently; and the report's answers to bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "run_cli.h"

namespace bb::test {
namespace {
namespace fs = std::filesystem;

std::string corpus() {
  std::string text;
  for (int i = 0; i < 300; ++i) text += "a report draws what the run wrote, step " + std::to_string(i % 13) + "\n%\n";
  return write_file("report_corpus.txt", text);
}

// A small language-model run of 8 steps (validation every 3, checkpoint every 4).
std::string lm_args(const std::string& out, int micro_batch, int accum) {
  return "model.n_layer=1 model.n_head=2 model.n_embd=32 model.block_size=32 train.steps=8 train.log_every=4 "
         "train.eval_every=3 train.eval_batches=2 train.checkpoint_every=4 sample.max_new_tokens=0 "
         "train.micro_batch_size=" + std::to_string(micro_batch) + " train.grad_accum_steps=" + std::to_string(accum) +
         " data.path=" + corpus() + " out_dir=" + out;
}

std::vector<nlohmann::json> metrics(const std::string& dir) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_file(dir + "/metrics.jsonl"));
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

int64_t count_with(const std::vector<nlohmann::json>& records, const char* key) {
  int64_t n = 0;
  for (const auto& r : records) n += r.contains(key) && r[key].is_number() && std::isfinite(r[key].get<double>());
  return n;
}

// What Chromium drew of `report` (check_report.js's JSON); the screenshot lands beside it.
nlohmann::json browser_view(const std::string& report) {
  const std::string script = std::string(BIGBATCH_SOURCE_DIR) + "/tests/report/check_report.js";
  CliResult r;
  const std::string cmd = "node " + script + " " + report + " " + report + ".png 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = pclose(p);
  EXPECT_EQ(status, 0) << "headless Chromium failed (scripts/setup.sh installs chromium and playwright-core): "
                       << r.output;
  auto j = nlohmann::json::parse(r.output, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.output;
  return j.is_discarded() ? nlohmann::json::object() : j;
}

// A series the browser drew: as many points as expected, laid out where its path says.
void expect_drawn(const nlohmann::json& view, const std::string& chart, const std::string& series, int64_t points) {
  ASSERT_TRUE(view["charts"].contains(chart)) << chart;
  const nlohmann::json& c = view["charts"][chart];
  EXPECT_GT(c["width"].get<double>(), 100) << chart;
  ASSERT_TRUE(c["series"].contains(series)) << chart << " has no series '" << series << "': " << c["series"].dump();
  const nlohmann::json& s = c["series"][series];
  EXPECT_EQ(s["commands"].get<int64_t>(), points) << chart << " / " << series;
  EXPECT_EQ(s["declared"].get<int64_t>(), points) << chart << " / " << series;
  if (points > 1) {
    EXPECT_GT(s["length"].get<double>(), 0) << chart << " / " << series;
    EXPECT_GT(s["width"].get<double>(), 0) << chart << " / " << series;
    // The browser hit-tests the stroke at (or within 3 px of) every sampled point.
    EXPECT_EQ(s["hits"].get<int64_t>(), s["tried"].get<int64_t>()) << chart << " / " << series;
  }
}

TEST(CliReport, TrainWritesAReportThatChromiumDrawsPointForPoint) {
  const std::string out = ::testing::TempDir() + "/bb_report_run";
  fs::remove_all(out);
  CliResult r = run_cli("train " + lm_args(out, 4, 2));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("report " + out + "/report.html"), std::string::npos) << r.output;
  ASSERT_TRUE(fs::exists(out + "/report.html"));
  const auto header = nlohmann::json::parse(read_file(out + "/run.json"));
  EXPECT_EQ(header["kind"], "language");
  EXPECT_EQ(header["effective_batch"], 8);
  EXPECT_EQ(header["prediction"]["source"], "dry run");
  const auto records = metrics(out);
  ASSERT_EQ(records.size(), 8u);
  // The planner's dry run predicts the counted peak of a step exactly.
  int64_t measured = 0;
  for (const auto& m : records) measured = std::max(measured, m["mem_step_peak"].get<int64_t>());
  EXPECT_EQ(measured, header["prediction"]["peak"].get<int64_t>());

  const nlohmann::json view = browser_view(out + "/report.html");
  const int64_t steps = count_with(records, "loss"), vals = count_with(records, "val_loss");
  EXPECT_EQ(vals, 3);  // steps 3, 6 and the last
  expect_drawn(view, "loss-step", "training loss", steps);
  expect_drawn(view, "loss-step", "validation loss", vals);
  expect_drawn(view, "loss-seen", "training loss", steps);
  expect_drawn(view, "lr", "learning rate", count_with(records, "lr"));
  expect_drawn(view, "grad-norm", "gradient norm", count_with(records, "grad_norm"));
  expect_drawn(view, "speed", "tokens/s", count_with(records, "tokens_per_s"));
  for (const char* cat : {"parameters", "gradients", "optimizer state", "activations", "workspace"})
    expect_drawn(view, "memory-0", cat, steps);
  expect_drawn(view, "memory-0", "all counted", count_with(records, "mem_step_peak"));
  expect_drawn(view, "resident-0", "peak resident (RSS)", count_with(records, "rss_peak"));
  const auto& levels = view["charts"]["memory-0"]["levels"];
  EXPECT_NE(std::find(levels.begin(), levels.end(), "predicted peak, all counted"), levels.end()) << levels.dump();
  EXPECT_FALSE(view["charts"].contains("loss-scale"));  // fp32 and no skipped window
  EXPECT_TRUE(view["requests"].empty()) << view["requests"].dump();  // nothing from the network
  // The screenshot holds the run's colour: the curves were painted, not only laid out.
  EXPECT_GT(view["screenshot"]["colours"]["#1f77b4"].get<int64_t>(), 500) << view["screenshot"].dump();
  EXPECT_GT(view["screenshot"]["height"].get<int64_t>(), 1000);
}

TEST(CliReport, TwoRunsOverlaidOnSharedAxesWithTheKeysThatDiffer) {
  const std::string k1 = ::testing::TempDir() + "/bb_report_k1", k2 = ::testing::TempDir() + "/bb_report_k2";
  const std::string html = ::testing::TempDir() + "/bb_report_k1_k2.html";
  fs::remove_all(k1);
  fs::remove_all(k2);
  fs::remove(html);
  ASSERT_EQ(run_cli("train " + lm_args(k1, 8, 1) + " report=false").code, 0);
  EXPECT_FALSE(fs::exists(k1 + "/report.html"));  // report=false
  ASSERT_EQ(run_cli("train " + lm_args(k2, 2, 4) + " report=false").code, 0);
  CliResult r = run_cli("report " + k1 + " " + k2 + " --out " + html);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("2 runs of 16 steps"), std::string::npos) << r.output;

  const nlohmann::json view = browser_view(html);
  const std::string a = "bb_report_k1: train.micro_batch_size=8, train.grad_accum_steps=1";
  const std::string b = "bb_report_k2: train.micro_batch_size=2, train.grad_accum_steps=4";
  for (const std::string& label : {a, b}) {
    expect_drawn(view, "loss-step", label + ": training loss", 8);
    expect_drawn(view, "loss-step", label + ": validation loss", 3);
    expect_drawn(view, "lr", label + ": learning rate", 8);
  }
  EXPECT_EQ(view["charts"]["loss-step"]["series"].size(), 4u);
  EXPECT_TRUE(view["charts"].contains("memory-0"));
  EXPECT_TRUE(view["charts"].contains("memory-1"));
  // The table of differing keys names exactly the two keys, with each run's value.
  const auto& diff = view["tables"]["differing-keys"];
  ASSERT_EQ(diff.size(), 3u) << diff.dump();
  EXPECT_EQ(diff[1], nlohmann::json({"train.micro_batch_size", "8", "2"}));
  EXPECT_EQ(diff[2], nlohmann::json({"train.grad_accum_steps", "1", "4"}));
  EXPECT_GT(view["screenshot"]["colours"]["#1f77b4"].get<int64_t>(), 500);
  EXPECT_GT(view["screenshot"]["colours"]["#d62728"].get<int64_t>(), 500);
}

TEST(CliReport, VisionRunShowsAccuracyAndTheConfusionMatrix) {
  const char* fashion = "/usr/share/datasets/fashion-mnist";
  ASSERT_TRUE(fs::exists(std::string(fashion) + "/train-images-idx3-ubyte.gz")) << "run scripts/setup.sh";
  const std::string out = ::testing::TempDir() + "/bb_report_vision";
  fs::remove_all(out);
  CliResult r = run_cli(std::string("train model.type=resnet model.width=0.25 data.format=fashion-mnist data.path=") +
                        fashion + " data.limit=64 data.test_limit=40 train.micro_batch_size=8 train.grad_accum_steps=2 "
                        "train.epochs=2 train.log_every=0 out_dir=" + out);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto records = metrics(out);
  ASSERT_EQ(records.size(), 8u);  // 64 images in windows of 16, twice
  const nlohmann::json view = browser_view(out + "/report.html");
  expect_drawn(view, "loss-step", "training loss", 8);
  expect_drawn(view, "test-accuracy", "test accuracy", 2);
  expect_drawn(view, "speed", "images/s", 8);
  ASSERT_TRUE(view["heatmaps"].contains("confusion-0")) << view["heatmaps"].dump();
  const auto& cells = view["heatmaps"]["confusion-0"];
  ASSERT_EQ(cells.size(), 100u);  // ten classes
  int64_t total = 0;
  for (const auto& c : cells) total += c.get<int64_t>();
  EXPECT_EQ(total, 40);  // every test image once
  EXPECT_EQ(records.back()["confusion"].size(), 10u);
}

TEST(CliReport, ARunInProgressGivesWhatItHasSoFar) {
  const std::string out = ::testing::TempDir() + "/bb_report_partial";
  fs::remove_all(out);
  ASSERT_EQ(run_cli("train " + lm_args(out, 4, 1) + " report=false").code, 0);
  // A writer stopped in the middle of a line (kill -9 during the write).
  std::string text = read_file(out + "/metrics.jsonl");
  text += "{\"step\": 9, \"loss\": 2.";
  std::ofstream(out + "/metrics.jsonl", std::ios::trunc) << text;
  CliResult r = run_cli("report " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("1 run of 8 steps"), std::string::npos) << r.output;
  const std::string html = read_file(out + "/report.html");
  EXPECT_NE(html.find("still being written"), std::string::npos);
  EXPECT_NE(html.find("data-points=\"8\""), std::string::npos);
}

TEST(CliReport, BadInputIsOneSentenceNamingTheFile) {
  const std::string dir = ::testing::TempDir() + "/bb_report_bad";
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto expect_error = [](const std::string& args, const std::string& says) {
    CliResult r = run_cli(args);
    EXPECT_EQ(r.code, 1) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(says), std::string::npos) << args << "\n" << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  };
  expect_error("report " + dir + "/nowhere", dir + "/nowhere is not a folder");
  expect_error("report " + dir, dir + "/metrics.jsonl does not exist");
  std::ofstream(dir + "/metrics.jsonl") << "{\"step\": 1, \"loss\": 3}\nnot json\n{\"step\": 3, \"loss\": 2}\n";
  expect_error("report " + dir, dir + "/metrics.jsonl line 2 is not valid JSON");
  std::ofstream(dir + "/metrics.jsonl", std::ios::trunc) << "{\"step\": 2, \"loss\": 3}\n{\"step\": 1, \"loss\": 2}\n";
  expect_error("report " + dir, "line 2: step 1 comes after step 2");
  std::ofstream(dir + "/metrics.jsonl", std::ios::trunc) << "{\"step\": 1, \"loss\": \"low\"}\n";
  expect_error("report " + dir, "line 1: field 'loss' is not a number");
  std::ofstream(dir + "/metrics.jsonl", std::ios::trunc) << "{\"step\": 1, \"loss\": 3}\n";
  std::ofstream(dir + "/run.json") << "{\"kind\": ";
  expect_error("report " + dir, dir + "/run.json is not a JSON object");
  std::ofstream(dir + "/run.json", std::ios::trunc) << "{\"kind\": \"vision\"}";
  const std::string lm = ::testing::TempDir() + "/bb_report_lm";
  fs::remove_all(lm);
  fs::create_directories(lm);
  std::ofstream(lm + "/metrics.jsonl") << "{\"step\": 1, \"loss\": 3}\n";
  expect_error("report " + lm + " " + dir + " --out " + dir + "/r.html", "their curves share no axes");
  // A file that is not a report is replaced only with --overwrite; a report is replaced.
  const std::string mine = dir + "/notes.html";
  std::ofstream(mine) << "<html>my notes</html>";
  expect_error("report " + lm + " --out " + mine, "is not a bigbatch report; replace it with --overwrite");
  EXPECT_EQ(read_file(mine), "<html>my notes</html>");
  EXPECT_EQ(run_cli("report " + lm + " --out " + mine + " --overwrite").code, 0);
  EXPECT_EQ(run_cli("report " + lm + " --out " + mine).code, 0);  // now a report
  expect_error("train report=maybe", "key 'report' wants true or false, got 'maybe'");
  expect_error("train report=1", "key 'report' wants true or false, got '1'");
  expect_error("report " + lm + " --out " + lm + "/metrics.jsonl --overwrite", "is the metrics.jsonl of run");
  EXPECT_EQ(read_file(lm + "/metrics.jsonl"), "{\"step\": 1, \"loss\": 3}\n");
}

}  // namespace
}  // namespace bb::test
