// Crash safety through the command line: tiny runs killed with SIGKILL at seeded random
// moments (many inside checkpoint writes, since every step writes one) and resumed each time
// end at the bytes of an uninterrupted run, with every step in metrics.jsonl exactly once;
// SIGINT and SIGTERM stop at a step boundary with a checkpoint and the command to resume.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <sstream>

#include "run_cli.h"
#include "spawn_cli.h"

namespace bb::test {
namespace {
namespace fs = std::filesystem;

std::string corpus() {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "pack my box with five dozen liquor jugs " + std::to_string(i % 11) + "\n";
  return write_file("crash_corpus.txt", text);
}

std::string tiny(const std::string& out, int steps, int checkpoint_every) {
  return "train model.n_layer=1 model.n_head=2 model.n_embd=32 model.block_size=16 train.micro_batch_size=2 "
         "train.grad_accum_steps=2 train.steps=" + std::to_string(steps) +
         " train.checkpoint_every=" + std::to_string(checkpoint_every) +
         " train.eval_every=0 train.log_every=1 sample.max_new_tokens=0 data.path=" + corpus() + " out_dir=" + out;
}

// step -> loss of each metrics line; fails the test on a repeated step or a line that is not JSON.
std::map<int64_t, double> metrics_by_step(const std::string& out) {
  std::map<int64_t, double> steps;
  std::istringstream in(read_file(out + "/metrics.jsonl"));
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON in " << out << "/metrics.jsonl: " << line;
    if (j.is_discarded()) continue;
    const int64_t step = j["step"].get<int64_t>();
    EXPECT_EQ(steps.count(step), 0u) << "step " << step << " appears twice in " << out << "/metrics.jsonl";
    steps[step] = j["loss"].get<double>();
  }
  return steps;
}

// A checkpoint folder, when there is one, is complete: its manifest names files of those sizes.
void expect_checkpoint_complete(const std::string& dir) {
  if (!fs::exists(dir)) return;
  auto m = nlohmann::json::parse(read_file(dir + "/manifest.json"), nullptr, false);
  ASSERT_FALSE(m.is_discarded()) << dir << " has no valid manifest.json";
  for (const auto& [name, size] : m["files"].items())
    EXPECT_EQ(static_cast<int64_t>(fs::file_size(dir + "/" + name)), size.get<int64_t>()) << dir << "/" << name;
}

struct Variant {
  const char* name;
  std::string extra;                  // overrides on top of tiny()
  std::vector<std::string> compared;  // files that must equal the uninterrupted run's
};

int64_t checkpoint_steps(const std::string& dir) {
  if (!fs::exists(dir + "/manifest.json")) return 0;
  return nlohmann::json::parse(read_file(dir + "/manifest.json"))["optimizer_steps"].get<int64_t>();
}

double seconds_of(const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void kill_and_resume(const Variant& v, uint32_t seed, int kills) {
  const int steps = 20;
  const std::string ref = ::testing::TempDir() + "/bb_crash_ref_" + v.name;
  const std::string out = ::testing::TempDir() + "/bb_crash_" + v.name;
  const std::string log = ::testing::TempDir() + "/bb_crash_" + v.name + ".log";
  fs::remove_all(ref);
  fs::remove_all(out);
  CliResult straight;
  const double run_s = seconds_of([&] { straight = run_cli(tiny(ref, steps, 1) + " " + v.extra); });
  ASSERT_EQ(straight.code, 0) << straight.output;
  // A run with nothing left to train: process start, loading, the model saved again.
  CliResult again;
  const double start_s = seconds_of([&] { again = run_cli(tiny(ref, steps, 1) + " " + v.extra + " --resume"); });
  ASSERT_EQ(again.code, 0) << again.output;
  const double step_s = std::max(run_s - start_s, 0.0) / steps;

  // Most moments fall between the process start and about twice the share of the remaining
  // steps one kill should cover (loading, a step, its checkpoint write); the last few anywhere
  // in what is left, the final model save included.
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  int killed = 0, in_checkpoint_write = 0;
  for (int i = 0; i < kills; ++i) {
    const bool resume = fs::exists(out + "/checkpoint");
    const double remaining = static_cast<double>(steps - checkpoint_steps(out + "/checkpoint"));
    const double share = i < kills - 4 ? std::max(1.0, 2.0 * remaining / (kills - i)) : remaining + 1;
    const double at = unit(rng) * (start_s + step_s * share);
    pid_t pid = spawn_cli(tiny(out, steps, 1) + " " + v.extra + (resume ? " --resume" : " --overwrite"), log);
    ChildExit e;
    if (!exited_within(pid, at, &e)) {
      kill(pid, SIGKILL);
      wait_child(pid);
      ++killed;
      in_checkpoint_write += fs::exists(out + "/checkpoint.tmp");
    } else {
      ASSERT_EQ(e.code, 0) << "kill " << i << " (seed " << seed << "): the run failed:\n" << read_file(log);
    }
    expect_checkpoint_complete(out + "/checkpoint");
    if (fs::exists(out + "/config.json")) {
      EXPECT_TRUE(fs::exists(out + "/model.safetensors")) << "kill " << i;
    }
    if (fs::exists(out + "/adapter_config.json")) {
      EXPECT_TRUE(fs::exists(out + "/adapter_model.safetensors")) << "kill " << i;
    }
  }
  const bool resume = fs::exists(out + "/checkpoint");
  CliResult last = run_cli(tiny(out, steps, 1) + " " + v.extra + (resume ? " --resume" : " --overwrite"));
  ASSERT_EQ(last.code, 0) << last.output;
  std::printf("[ %s ] %d of %d runs killed (seed %u; uninterrupted run %.2f s, start %.2f s), %d inside a "
              "checkpoint write, the last at step %lld\n",
              v.name, killed, kills, seed, run_s, start_s, in_checkpoint_write,
              static_cast<long long>(checkpoint_steps(out + "/checkpoint")));
  for (const std::string& f : v.compared)
    EXPECT_TRUE(read_file(ref + "/" + f) == read_file(out + "/" + f)) << f << " differs after " << killed << " kills";
  const auto expected = metrics_by_step(ref), got = metrics_by_step(out);
  EXPECT_EQ(got.size(), static_cast<size_t>(steps));
  EXPECT_EQ(got, expected);  // every step once, each with the uninterrupted run's loss
}

TEST(CliCrash, KilledAtRandomMomentsEndsAtTheUninterruptedWeights) {
  for (const Variant& v : {Variant{"fp32", "", {"model.safetensors", "config.json"}},
                           Variant{"bf16_dropout", "train.precision=bf16 model.dropout=0.1", {"model.safetensors"}},
                           Variant{"lora", "lora.r=2 lora.alpha=4 lora.dropout=0.1 lora.target_modules=c_attn,c_fc",
                                   {"adapter_model.safetensors", "base/model.safetensors", "base/config.json"}}}) {
    SCOPED_TRACE(v.name);
    kill_and_resume(v, 20261201u + static_cast<uint32_t>(v.extra.size()), 20);
  }
}

// Signals a run once metrics show `after` steps; returns its exit and output. Several signals
// are sent while the run is stopped (SIGSTOP) and delivered together on SIGCONT, so the second
// lands before the run can act on the first however the machine schedules the two processes
// (sent a few milliseconds apart they raced the whole step, checkpoint and exit). They must
// differ: two pending SIGINTs merge into one.
ChildExit signal_run(const std::string& args, const std::string& out, const std::vector<int>& signals,
                     const std::string& log, int after) {
  pid_t pid = spawn_cli(args, log);
  const std::string metrics = out + "/metrics.jsonl";
  ChildExit e;
  for (int i = 0; i < 20000 && !exited_within(pid, 0.001, &e); ++i) {
    std::istringstream in(read_file(metrics));
    int lines = 0;
    for (std::string l; std::getline(in, l);) ++lines;
    if (lines >= after) {
      if (signals.size() == 1) {
        kill(pid, signals[0]);
        return wait_child(pid);
      }
      kill(pid, SIGSTOP);
      int status = 0;
      if (waitpid(pid, &status, WUNTRACED) != pid || !WIFSTOPPED(status)) {
        ADD_FAILURE() << "the run ended before it could be stopped:\n" << read_file(log);
        return e;
      }
      for (int sig : signals) kill(pid, sig);
      kill(pid, SIGCONT);
      return wait_child(pid);
    }
  }
  ADD_FAILURE() << "the run ended before " << after << " steps:\n" << read_file(log);
  return e;
}

void interrupt_then_resume(int sig, const char* name, int code) {
  const int steps = 30;
  static const std::string ref = [] {
    const std::string dir = ::testing::TempDir() + "/bb_signal_ref";
    fs::remove_all(dir);
    EXPECT_EQ(run_cli(tiny(dir, steps, 0) + " model.dropout=0.1").code, 0);
    return dir;
  }();
  const std::string out = ::testing::TempDir() + "/bb_signal_" + name, log = out + ".log";
  fs::remove_all(out);
  ChildExit e = signal_run(tiny(out, steps, 0) + " model.dropout=0.1", out, {sig}, log, 2);
  const std::string output = read_file(log);
  EXPECT_EQ(e.code, code) << output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(output, m, std::regex(std::string("interrupted by ") + name +
                                                      " after step ([0-9]+): checkpoint saved in (\\S+); continue "
                                                      "with:\n  (.*)\n")))
      << output;
  EXPECT_LT(std::stoi(m[1].str()), steps);
  EXPECT_EQ(m[2].str(), out + "/checkpoint");
  expect_checkpoint_complete(out + "/checkpoint");
  const std::string command = m[3].str();
  EXPECT_NE(command.find(" --resume"), std::string::npos) << command;
  // The printed command, run as printed, continues to the uninterrupted run's weights.
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  std::string resumed;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) resumed.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << resumed;
  EXPECT_NE(resumed.find("resumed from " + out + "/checkpoint at step " + m[1].str()), std::string::npos) << resumed;
  EXPECT_TRUE(read_file(ref + "/model.safetensors") == read_file(out + "/model.safetensors"));
  EXPECT_EQ(metrics_by_step(out), metrics_by_step(ref));
}

TEST(CliCrash, SigintCheckpointsPrintsTheResumeCommandAndExits130) { interrupt_then_resume(SIGINT, "SIGINT", 130); }

TEST(CliCrash, SigtermCheckpointsAndExits143) { interrupt_then_resume(SIGTERM, "SIGTERM", 143); }

TEST(CliCrash, SecondSignalStopsAtOnceAndTheLastCheckpointStaysUsable) {
  const std::string out = ::testing::TempDir() + "/bb_signal_twice", log = out + ".log";
  fs::remove_all(out);
  // Ctrl-C, then a SIGTERM (say, from a service manager) before the step ends: the first asks
  // for a checkpoint at the step boundary, the second ends the run at once by its own signal.
  ChildExit e = signal_run(tiny(out, 400, 1), out, {SIGINT, SIGTERM}, log, 3);
  const std::string output = read_file(log);
  EXPECT_EQ(e.code, -1) << output;  // no exit status: not the orderly stop after a checkpoint
  EXPECT_TRUE(e.signal == SIGINT || e.signal == SIGTERM) << "ended by signal " << e.signal << "\n" << output;
  EXPECT_EQ(output.find("interrupted by"), std::string::npos) << output;
  expect_checkpoint_complete(out + "/checkpoint");
  ASSERT_TRUE(fs::exists(out + "/checkpoint/manifest.json")) << output;
  CliResult r = run_cli(tiny(out, 6, 1) + " --resume");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("resumed from"), std::string::npos) << r.output;
}

TEST(CliCrash, VisionRunStopsOnSigtermWithACheckpointAndResumes) {
  const char* fashion = "/usr/share/datasets/fashion-mnist";
  ASSERT_TRUE(fs::exists(std::string(fashion) + "/train-images-idx3-ubyte.gz")) << "run scripts/setup.sh";
  const std::string out = ::testing::TempDir() + "/bb_signal_vision", log = out + ".log";
  fs::remove_all(out);
  const std::string args = std::string("train model.type=resnet model.width=0.25 data.format=fashion-mnist data.path=") +
                           fashion + " data.limit=64 data.test_limit=8 train.micro_batch_size=8 train.epochs=3 "
                           "train.checkpoint_every=0 train.log_every=1 out_dir=" + out;
  ChildExit e = signal_run(args, out, {SIGTERM}, log, 2);
  const std::string output = read_file(log);
  EXPECT_EQ(e.code, 143) << output;
  EXPECT_NE(output.find("interrupted by SIGTERM after step"), std::string::npos) << output;
  EXPECT_NE(output.find(" --resume"), std::string::npos) << output;
  expect_checkpoint_complete(out + "/checkpoint");
  ASSERT_TRUE(fs::exists(out + "/checkpoint/manifest.json"));
  CliResult r = run_cli(args + " --resume");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("resumed from " + out + "/checkpoint"), std::string::npos) << r.output;
  EXPECT_EQ(metrics_by_step(out).size(), 6u);  // 3 epochs of 2 steps (K 4 x 8 images), each once
}

}  // namespace
}  // namespace bb::test
