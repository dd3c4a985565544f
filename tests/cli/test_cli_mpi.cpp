// `mpirun -np N bigbatch train`: rank 0 alone writes the run; the result equals one rank with
// N times the accumulation; resume on the same N is bit-identical and on another N continues
// the same run; a rank that dies or hangs ends the job naming it, and the run resumes.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "run_cli.h"
#include "spawn_cli.h"
#include "io/safetensors.h"

namespace bb::test {
namespace {
namespace fs = std::filesystem;

// Open MPI refuses root without these (CI runs as root); one thread a rank; MPI keeps its
// allocations to the end, which LeakSanitizer would call leaks.
const std::string kMpiEnv =
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=0 ";
const std::string kMpiFlags = " --oversubscribe --bind-to none -x OMP_NUM_THREADS -x ASAN_OPTIONS ";

CliResult mpirun_cli(int ranks, const std::string& args) {
  CliResult r;
  const std::string cmd = kMpiEnv + "mpirun -np " + std::to_string(ranks) + kMpiFlags + BIGBATCH_BINARY + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// SGD: AdamW's first steps move each weight by about lr whatever the gradient's size, so
// they would turn the rounding of near-zero gradients into differences of a whole step.
const std::string kRun =
    "model.n_layer=2 model.n_head=2 model.n_embd=32 model.block_size=32 model.dropout=0.1 train.micro_batch_size=2 "
    "train.optimizer=sgd train.lr=0.05 train.warmup_steps=2 train.eval_every=0 train.log_every=1 "
    "sample.max_new_tokens=0 report=false ";

std::string out_dir(const std::string& name) {
  const std::string d = ::testing::TempDir() + "/bb_cli_mpi_" + name;
  fs::remove_all(d);
  return d;
}

// Largest difference over all tensors, relative to each tensor's largest value.
double max_relative_difference(const std::string& a, const std::string& b) {
  NamedTensors ta = load_safetensors_dir(a), tb = load_safetensors_dir(b);
  EXPECT_EQ(ta.size(), tb.size());
  double worst = 0;
  for (size_t i = 0; i < ta.size() && i < tb.size(); ++i) {
    EXPECT_EQ(ta[i].first, tb[i].first);
    std::vector<float> x = ta[i].second.to_floats(), y = tb[i].second.to_floats();
    double d = 0, s = 1e-12;
    for (size_t k = 0; k < x.size(); ++k) {
      d = std::max(d, std::abs(double(x[k]) - double(y[k])));
      s = std::max(s, std::abs(double(y[k])));
    }
    worst = std::max(worst, d / s);
  }
  return worst;
}

bool same_bytes(const std::string& a, const std::string& b) { return read_file(a) == read_file(b); }

TEST(CliMpi, TwoRanksTrainAsOneRankWithTwiceTheAccumulationAndOnlyRankZeroWrites) {
  const std::string two = out_dir("two"), one = out_dir("one");
  CliResult r = mpirun_cli(2, "train " + kRun + "train.steps=4 train.grad_accum_steps=2 out_dir=" + two);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("effective batch 8 sequences = 2 ranks x 2 micro-batches of 2"), std::string::npos) << r.output;
  size_t lines = 0;  // one progress line a step: rank 1 prints nothing
  for (size_t at = r.output.find("/4 | loss"); at != std::string::npos; at = r.output.find("/4 | loss", at + 1))
    ++lines;
  EXPECT_EQ(lines, 4u) << r.output;
  CliResult s = run_cli("train " + kRun + "train.steps=4 train.grad_accum_steps=4 out_dir=" + one);
  ASSERT_EQ(s.code, 0) << s.output;
  EXPECT_LE(max_relative_difference(two, one), 1e-5);
  std::ifstream metrics(two + "/metrics.jsonl");
  int rows = 0;
  for (std::string line; std::getline(metrics, line);) ++rows;
  EXPECT_EQ(rows, 4);  // written once, by rank 0
}

TEST(CliMpi, ResumeOnTheSameRanksIsBitIdenticalAndOnOtherRanksContinuesTheRun) {
  const std::string whole = out_dir("whole"), cut = out_dir("cut"), other = out_dir("other");
  const std::string args = "train " + kRun + "train.steps=6 train.checkpoint_every=0 ";
  ASSERT_EQ(mpirun_cli(2, args + "train.grad_accum_steps=2 out_dir=" + whole).code, 0);
  CliResult a = mpirun_cli(2, args + "train.grad_accum_steps=2 out_dir=" + cut + " --stop-after 3");
  ASSERT_EQ(a.code, 0) << a.output;
  fs::copy(cut, other, fs::copy_options::recursive);
  CliResult b = mpirun_cli(2, args + "train.grad_accum_steps=2 out_dir=" + cut + " --resume");
  ASSERT_EQ(b.code, 0) << b.output;
  EXPECT_NE(b.output.find("resumed from"), std::string::npos) << b.output;
  EXPECT_TRUE(same_bytes(whole + "/model.safetensors", cut + "/model.safetensors"));
  // One rank of 4 micro-batches holds the same effective batch of 8 as 2 ranks of 2.
  CliResult c = run_cli(args + "train.grad_accum_steps=4 out_dir=" + other + " --resume");
  ASSERT_EQ(c.code, 0) << c.output;
  EXPECT_LE(max_relative_difference(other, whole), 1e-5);
}

TEST(CliMpi, ThreeRanksResumeARunOfOneRank) {
  // 12 sequences a step: 1 rank x 6 x 2, then 3 ranks x 2 x 2.
  const std::string whole = out_dir("whole3"), cut = out_dir("cut3");
  const std::string args = "train " + kRun + "train.steps=4 train.checkpoint_every=0 ";
  ASSERT_EQ(run_cli(args + "train.grad_accum_steps=6 out_dir=" + whole).code, 0);
  ASSERT_EQ(run_cli(args + "train.grad_accum_steps=6 out_dir=" + cut + " --stop-after 2").code, 0);
  CliResult r = mpirun_cli(3, args + "train.grad_accum_steps=2 out_dir=" + cut + " --resume");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_LE(max_relative_difference(cut, whole), 1e-5);
}

// ZeRO-1: every rank writes its shard of the optimizer state and the manifest lists them; the
// run resumes bit-identically on the same ranks and continues on 3 ranks, on one rank without
// ZeRO, and from a plain data-parallel checkpoint; a missing shard makes no checkpoint.
TEST(CliMpi, ZeroCheckpointsAreShardedAndResumeOnAnyRanks) {
  const std::string whole = out_dir("zwhole"), cut = out_dir("zcut"), three = out_dir("zthree"), one = out_dir("zone"),
                    plain = out_dir("zplain"), torn = out_dir("ztorn"), bent = out_dir("zbent");
  // SGD with momentum (kRun): its momentum buffers are the sharded state.
  const std::string args = "train " + kRun + "train.steps=6 train.checkpoint_every=0 dist.bucket_mb=0.02 ";
  ASSERT_EQ(mpirun_cli(2, args + "dist.zero=1 train.grad_accum_steps=3 out_dir=" + whole).code, 0);
  CliResult a = mpirun_cli(2, args + "dist.zero=1 train.grad_accum_steps=3 out_dir=" + cut + " --stop-after 3");
  ASSERT_EQ(a.code, 0) << a.output;
  const std::string ckpt = cut + "/checkpoint";
  EXPECT_TRUE(fs::exists(ckpt + "/optimizer-rank-0-of-2.safetensors"));
  EXPECT_TRUE(fs::exists(ckpt + "/optimizer-rank-1-of-2.safetensors"));
  EXPECT_FALSE(fs::exists(ckpt + "/optimizer.safetensors"));
  const std::string manifest = read_file(ckpt + "/manifest.json");
  EXPECT_NE(manifest.find("\"zero\""), std::string::npos) << manifest;
  for (const std::string& d : {three, one, torn, bent}) fs::copy(cut, d, fs::copy_options::recursive);

  CliResult b = mpirun_cli(2, args + "dist.zero=1 train.grad_accum_steps=3 out_dir=" + cut + " --resume");
  ASSERT_EQ(b.code, 0) << b.output;
  EXPECT_TRUE(same_bytes(whole + "/model.safetensors", cut + "/model.safetensors"));
  // 12 sequences a step throughout: 2 x 3 x 2, then 3 x 2 x 2, or 1 x 6 x 2.
  CliResult c = mpirun_cli(3, args + "dist.zero=1 train.grad_accum_steps=2 out_dir=" + three + " --resume");
  ASSERT_EQ(c.code, 0) << c.output;
  EXPECT_LE(max_relative_difference(three, whole), 1e-5);
  CliResult d = run_cli(args + "train.grad_accum_steps=6 out_dir=" + one + " --resume");
  ASSERT_EQ(d.code, 0) << d.output;
  EXPECT_LE(max_relative_difference(one, whole), 1e-5);

  // Plain data parallel stops, ZeRO-1 resumes its whole state sharded; the same run as ZeRO's.
  ASSERT_EQ(mpirun_cli(2, args + "train.grad_accum_steps=3 out_dir=" + plain + " --stop-after 3").code, 0);
  CliResult e = mpirun_cli(2, args + "dist.zero=1 train.grad_accum_steps=3 out_dir=" + plain + " --resume");
  ASSERT_EQ(e.code, 0) << e.output;
  EXPECT_LE(max_relative_difference(plain, whole), 1e-5);

  fs::remove(torn + "/checkpoint/optimizer-rank-1-of-2.safetensors");
  CliResult f = mpirun_cli(2, args + "dist.zero=1 train.grad_accum_steps=3 out_dir=" + torn + " --resume");
  EXPECT_NE(f.code, 0) << f.output;
  EXPECT_NE(f.output.find("no complete checkpoint"), std::string::npos) << f.output;

  // A manifest whose pieces overlap (rank 1's first piece made rank 0's) is named, not read.
  nlohmann::json m = nlohmann::json::parse(read_file(bent + "/checkpoint/manifest.json"));
  m["zero"]["shards"][1]["pieces"][0] = m["zero"]["shards"][0]["pieces"][0];
  std::ofstream(bent + "/checkpoint/manifest.json") << m.dump();
  CliResult g = mpirun_cli(2, args + "dist.zero=1 train.grad_accum_steps=3 out_dir=" + bent + " --resume");
  EXPECT_NE(g.code, 0) << g.output;
  EXPECT_NE(g.output.find("manifest.json: the shard pieces of"), std::string::npos) << g.output;
}

TEST(CliMpi, ZeroValuesAndVerifyUnderZeroAreRefused) {
  CliResult a = run_cli("train " + kRun + "train.steps=1 dist.zero=2 out_dir=" + out_dir("zbad"));
  EXPECT_EQ(a.code, 1) << a.output;
  EXPECT_NE(a.output.find("dist.zero must be 0 or 1, got 2"), std::string::npos) << a.output;
  CliResult b = mpirun_cli(2, "verify " + kRun + "train.grad_accum_steps=2 dist.zero=1");
  EXPECT_NE(b.code, 0) << b.output;
  EXPECT_NE(b.output.find("verify with dist.zero=0"), std::string::npos) << b.output;
}

// The optimizer column of a plan's first row ("... |     params      grads  optimizer ..."), in bytes.
double optimizer_column(const std::string& plan) {
  const size_t row = plan.find("\n    1 ");
  std::istringstream in(plan.substr(plan.find('|', row) + 1));
  double value = 0;
  std::string unit;
  for (int field = 0; field < 3; ++field) in >> value >> unit;
  return value * (unit == "GiB" ? 1 << 30 : unit == "MiB" ? 1 << 20 : unit == "KiB" ? 1 << 10 : 1);
}

TEST(CliMpi, PlanRunsOnRankZeroAndSaysItIsPerRank) {
  const std::string args = "plan --memory 8GiB model.n_layer=1 model.n_embd=128 model.n_head=2 model.block_size=32 "
                           "train.micro_batch_size=2 train.grad_accum_steps=2 --precisions fp32 --checkpointing none ";
  CliResult r = mpirun_cli(2, args);
  ASSERT_EQ(r.code, 0) << r.output;
  const size_t at = r.output.find("per rank of 2: 8 sequences a step in all");
  EXPECT_NE(at, std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("plan for an effective batch", r.output.find("plan for an effective batch") + 1),
            std::string::npos) << "printed once, by rank 0\n" << r.output;
  // The planner knows ZeRO-1: rank 0's optimizer state is half of the whole.
  CliResult z = mpirun_cli(2, args + "dist.zero=1");
  ASSERT_EQ(z.code, 0) << z.output;
  EXPECT_NE(z.output.find("optimizer: rank 0's shard, 1/2 of the state"), std::string::npos) << z.output;
  const double whole = optimizer_column(r.output), shard = optimizer_column(z.output);
  EXPECT_NEAR(shard / whole, 0.5, 0.02) << r.output << z.output;
}

// The pid of the bigbatch process that is rank `rank` of a running mpirun (Open MPI puts
// OMPI_COMM_WORLD_RANK in each rank's environment).
pid_t rank_pid(const std::string& marker, int rank) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string env = read_file(e.path().string() + "/environ"), cmd = read_file(e.path().string() + "/cmdline");
    for (char& ch : cmd) ch = ch == '\0' ? ' ' : ch;
    if (cmd.find(BIGBATCH_BINARY) != 0 || cmd.find(marker) == std::string::npos) continue;
    const std::string want = std::string("OMPI_COMM_WORLD_RANK=") + std::to_string(rank) + '\0';
    if (env.find(want) != std::string::npos) return static_cast<pid_t>(std::stol(name));
  }
  return -1;
}

// Starts a long two-rank run, waits for its first checkpoint, then does `fault` to rank 1.
void fault_and_resume(const std::string& name, int sig) {
  const std::string dir = out_dir(name), log = dir + ".log";
  const std::string args = "train " + kRun + "train.steps=100000 train.checkpoint_every=3 train.grad_accum_steps=1 "
                           "dist.timeout_s=5 out_dir=" + dir;
  const std::string cmd = kMpiEnv + "exec mpirun -np 2" + kMpiFlags + BIGBATCH_BINARY + " " + args + " > " + log + " 2>&1";
  pid_t job = fork();
  if (job == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  pid_t victim = -1;
  while (std::chrono::steady_clock::now() < give_up && (victim < 0 || !fs::exists(dir + "/checkpoint"))) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (victim < 0) victim = rank_pid(dir, 1);
  }
  ASSERT_GT(victim, 0) << read_file(log);
  ASSERT_TRUE(fs::exists(dir + "/checkpoint")) << read_file(log);
  kill(victim, sig);
  const auto t0 = std::chrono::steady_clock::now();
  ChildExit e;
  const bool ended = exited_within(job, 60, &e);
  if (!ended) {
    kill(job, SIGKILL);
    kill(victim, SIGKILL);
    wait_child(job);
  }
  if (sig == SIGSTOP) kill(victim, SIGKILL);  // mpirun's own cleanup may leave a stopped process
  ASSERT_TRUE(ended) << "the job did not end within 60 s of the fault\n" << read_file(log);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(e.code, 0);
  const std::string out = read_file(log);
  EXPECT_NE(out.find("rank 1"), std::string::npos) << out;
  std::printf("the job ended %.1f s after the fault\n", secs);
  // The last complete checkpoint resumes (on one rank, the same effective batch).
  CliResult r = run_cli("train " + kRun + "train.steps=100000 train.checkpoint_every=3 train.grad_accum_steps=2 "
                        "out_dir=" + dir + " --resume --stop-after 1");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("resumed from"), std::string::npos) << r.output;
}

TEST(CliMpi, ARankThatDiesEndsTheJobNamingItAndTheRunResumes) { fault_and_resume("killed", SIGKILL); }
TEST(CliMpi, ARankThatHangsEndsTheJobWithinTheTimeoutNamingIt) { fault_and_resume("hung", SIGSTOP); }

// Two hosts: network namespaces joined by a veth pair (scripts/netns_hosts.sh), one rank in
// each, MPI over TCP on their addresses only. The sums are the same ring in the same order,
// so the model equals the one-host run's bit for bit.
TEST(CliMpi, TwoHostsOverTcpGiveTheOneHostResult) {
  const std::string script = std::string(BIGBATCH_SOURCE_DIR) + "/scripts/netns_hosts.sh";
  if (std::system((script + " up > /dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << "this machine refuses network namespaces (ip netns add needs root and CAP_SYS_ADMIN)";
  const std::string here = out_dir("one_host"), there = out_dir("two_hosts");
  const std::string hosts = write_file("bb_mpi_hosts", "10.77.0.1 slots=1\n10.77.0.2 slots=1\n");
  const std::string args = "train " + kRun + "train.steps=3 train.grad_accum_steps=2 ";
  ASSERT_EQ(mpirun_cli(2, args + "out_dir=" + here).code, 0);
  CliResult r;
  const std::string cmd = kMpiEnv + "ip netns exec bbA mpirun --hostfile " + hosts + " -np 2 --map-by node" + kMpiFlags +
                          "--mca plm_rsh_agent '" + script + " agent' --mca btl tcp,self --mca btl_tcp_if_include "
                          "10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 " + BIGBATCH_BINARY + " " + args +
                          "out_dir=" + there + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf;
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), p)) > 0;) r.output.append(buf.data(), n);
  r.code = pclose(p);
  std::system((script + " down > /dev/null 2>&1").c_str());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(same_bytes(here + "/model.safetensors", there + "/model.safetensors")) << r.output;
}

}  // namespace
}  // namespace bb::test
