// CNN training throughput (images/s) and peak memory on the network of the PyTorch peer
// (../shared/peers/torch_cnn_bench.py: Fashion-MNIST, stem 32 + three residual blocks of
// 32/64/128 with BatchNorm, batch 128, SGD momentum 0.9, weight decay 5e-4), timed the same
// way: 3 warmup steps, then windows of --iters optimizer steps, best and median images/s.
// Batches come through the background loader, as in `bigbatch train`.
// Run bench/run_cnn_bench.sh for ours and the peer's figures in one run, as ratios.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench_util.h"
#include "core/process_memory.h"
#include "data/idx.h"
#include "data/prefetch.h"
#include "models/image_classifier.h"
#include "optim/optimizer.h"
#include "train/precision.h"
#include "train/trainer.h"

using namespace bb;

int main(int argc, char** argv) {
  CLI::App app{"CNN training benchmark"};
  std::string data_dir = "/usr/share/datasets/fashion-mnist", precision = "fp32", tag, bn = "micro";
  int64_t bs = 128, accum = 1, iters = 30, windows = 3;
  app.add_option("--data", data_dir);
  // Each a count of at least one: the rates and the blocks a step divide by them.
  app.add_option("--bs", bs, "images per micro-batch")->check(CLI::PositiveNumber);
  app.add_option("--accum", accum, "micro-batches per optimizer step")->check(CLI::PositiveNumber);
  app.add_option("--iters", iters, "optimizer steps per timed window")->check(CLI::PositiveNumber);
  app.add_option("--windows", windows, "timed windows")->check(CLI::PositiveNumber);
  app.add_option("--precision", precision, "fp32 or bf16");
  app.add_option("--tag", tag);
  bool profile = false;
  bench::add_profile_option(app, profile);
  CLI11_PARSE(app, argc, argv);
  give_large_blocks_their_own_pages();  // as the CLI does: the same resident memory

  ImageDataset data(load_fashion_mnist(data_dir, "train"),
                    ImageTransform{.mean = {0.2860f}, .std = {0.3530f}, .shuffle = true, .seed = 0});
  PrefetchDataset loader(data, 2);
  auto model = make_image_classifier(ImageModelOptions{.arch = "resnet", .in_channels = 1, .classes = 10});
  SGD opt(default_param_groups(model->named_parameters()), SGDOptions{.momentum = 0.9f, .weight_decay = 5e-4f});
  SingleProcess comm;
  const ImageClassifier& m = *model;
  Trainer trainer([&m](const Batch& b, const Context& ctx, int64_t* n) { return m.loss(b.tokens, b.targets, ctx, n); },
                  opt, loader, Schedule{.kind = "constant", .lr = 0.05f},
                  TrainerOptions{.micro_batch = bs, .grad_accum = accum, .grad_clip = 0.0f,
                                 .precision = parse_precision(precision)},
                  comm);
  trainer.on_window_end([&m] { m.finish_window(); });
  const int64_t rss_init = peak_rss_bytes();
  for (int i = 0; i < 3; ++i) trainer.step();
  std::vector<double> rates;
  double loss = 0;
  const int64_t allocations_before = Allocator::of(Device::CPU).stats().allocations;
  for (int64_t w = 0; w < windows; ++w) {
    const double secs = bench::seconds_of([&] {
      for (int64_t i = 0; i < iters; ++i) loss = trainer.step().loss;
    });
    rates.push_back(static_cast<double>(iters * accum * bs) / secs);
  }
  const bench::Stats s = bench::stats_of(rates);
  const MemoryStats mem = Allocator::of(Device::CPU).stats();
  if (profile) bench::print_profile(trainer);
  nlohmann::json out = {{"impl", "bigbatch"}, {"tag", tag}, {"bs", bs}, {"accum", accum}, {"precision", precision},
                        {"params", model->parameter_count()}, {"img_s_best", s.max}, {"img_s_med", s.median},
                        {"img_s_all", rates}, {"loss", loss}, {"peak_rss_MiB", peak_rss_bytes() / 1048576.0},
                        {"rss_init_MiB", rss_init / 1048576.0}, {"counted_peak_MiB", mem.total_peak / 1048576.0},
                        {"reserved_peak_MiB", mem.reserved_peak / 1048576.0},  // with the allocator's cache
                        // blocks the cache could not serve, a timed step: 0 once the cache has settled
                        {"fresh_blocks_per_step", double(mem.allocations - allocations_before) / double(windows * iters)},
                        {"prefetch_hits", loader.hits()}};
  fmt::print("{}\n", out.dump());
  return 0;
}
