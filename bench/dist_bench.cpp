// Data-parallel training speed: run it under mpirun (or alone for the one-rank baseline).
// A GPT-2 on random tokens, K micro-batches of B per rank; rank 0 prints one JSON line with
// tokens/s over all ranks, the step time's median and spread, the share of step time each
// rank spent blocked on communication, the bytes a rank sent per step against a ring
// all-reduce's 2(N-1)/N of the gradient bytes, and every rank's peak memory.
#include <fmt/format.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench_util.h"
#include "core/allocator.h"
#include "core/process_memory.h"
#include "dist/communicator.h"
#include "dist/grad_sync.h"
#include "models/gpt2.h"
#include "optim/optimizer.h"
#include "train/job.h"
#include "train/trainer.h"

using namespace bb;

int main(int argc, char** argv) {
  CLI::App app{"data-parallel GPT-2 training speed (run under mpirun)"};
  int64_t layers = 6, embd = 384, heads = 6, seq = 256, vocab = 8192, mb = 4, accum = 2, steps = 5, warmup = 1;
  double bucket_mb = 25;
  bool overlap = true;
  std::string precision = "fp32";
  app.add_option("--layers", layers)->check(CLI::PositiveNumber);
  app.add_option("--embd", embd)->check(CLI::PositiveNumber);
  app.add_option("--heads", heads)->check(CLI::PositiveNumber);
  app.add_option("--seq", seq)->check(CLI::PositiveNumber);
  app.add_option("--vocab", vocab)->check(CLI::PositiveNumber);
  app.add_option("--mb", mb, "micro-batch per rank")->check(CLI::PositiveNumber);
  app.add_option("--accum", accum, "micro-batches per rank and step (K)")->check(CLI::PositiveNumber);
  app.add_option("--steps", steps)->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup)->check(CLI::NonNegativeNumber);
  app.add_option("--bucket-mb", bucket_mb)->check(CLI::PositiveNumber);
  app.add_option("--overlap", overlap, "send buckets during the last backward (1) or after it (0)");
  app.add_option("--precision", precision);
  bool zero = false;
  app.add_option("--zero", zero, "ZeRO-1: shard the optimizer state (1) or not (0)");
  CLI11_PARSE(app, argc, argv);
  give_large_blocks_their_own_pages();  // as the CLI does: the same resident memory

  Communicator& comm = world();
  GPT2 model(GPT2Config{.n_layer = layers, .n_head = heads, .n_embd = embd, .block_size = seq, .vocab_size = vocab}, 0);
  bench::RandomTokens data(vocab, seq);
  std::vector<ParamGroup> groups = default_param_groups(model.named_parameters());
  const int64_t bucket_bytes = static_cast<int64_t>(bucket_mb * (1 << 20));
  if (zero) {  // this rank's pieces, as make_optimizer lays them out for dist.zero=1
    std::vector<int64_t> numels;
    for (const ParamGroup& g : groups) numels.push_back(g.param.numel());
    const auto pieces = zero_pieces(numels, bucket_bytes, comm.rank(), comm.size());
    for (size_t i = 0; i < groups.size(); ++i) groups[i].offset = pieces[i].offset, groups[i].length = pieces[i].length;
  }
  AdamW opt(groups, AdamWOptions{.weight_decay = 0.0f});
  TrainerOptions o{.micro_batch = mb, .grad_accum = accum, .grad_clip = 1.0f, .precision = parse_precision(precision)};
  o.sample_slots = seq;
  o.bucket_bytes = bucket_bytes;
  o.overlap = overlap;
  o.zero = zero;
  Trainer trainer(lm_loss(model), opt, data, Schedule{.kind = "constant", .lr = 1e-4f}, o, comm);
  for (int64_t i = 0; i < warmup; ++i) trainer.step();
  comm.reset_stats();
  std::vector<double> times;
  int64_t tokens = 0;
  for (int64_t i = 0; i < steps; ++i) times.push_back(bench::seconds_of([&] { tokens += trainer.step().tokens; }));
  double total = 0;
  for (double t : times) total += t;
  const CommStats cs = comm.stats();
  int64_t grad_bytes = 0;
  for (const ParamGroup& p : opt.params()) grad_bytes += p.param.numel() * 4;
  // Per rank: wait share, bytes a step, peak RSS, counted peak, optimizer state; gathered.
  const MemoryStats mem = Allocator::of(Device::CPU).stats();
  const double mine[5] = {cs.wait_seconds / total, double(cs.bytes_sent) / double(steps), double(peak_rss_bytes()),
                          double(mem.total_peak), double(mem.peak[static_cast<int>(Category::OptimizerState)])};
  std::vector<double> all(5 * comm.size());
  comm.allgather(mine, sizeof mine, all.data());
  if (comm.rank() != 0) return 0;
  const bench::Stats s = bench::stats_of(times);
  nlohmann::json ranks = nlohmann::json::array();
  for (int r = 0; r < comm.size(); ++r)
    ranks.push_back({{"wait_share", all[5 * r]}, {"bytes_per_step", all[5 * r + 1]},
                     {"peak_rss_MiB", all[5 * r + 2] / 1048576.0}, {"counted_peak_MiB", all[5 * r + 3] / 1048576.0},
                     {"optimizer_MiB", all[5 * r + 4] / 1048576.0}});
  const int n = comm.size();
  nlohmann::json out = {{"ranks", n}, {"threads", omp_get_max_threads()}, {"overlap", overlap}, {"zero", zero}, {"mb", mb},
                        {"accum", accum}, {"effective_batch", mb * accum * n}, {"seq", seq},
                        {"params", model.parameter_count()}, {"grad_MiB", grad_bytes / 1048576.0},
                        {"bucket_mb", bucket_mb}, {"tok_s", double(tokens) / total}, {"step_s_med", s.median},
                        {"step_s_min", s.min}, {"step_s_max", s.max},
                        {"ring_bytes_per_step", 2.0 * (n - 1) / n * double(grad_bytes)}, {"per_rank", ranks}};
  fmt::print("{}\n", out.dump());
  return 0;
}
