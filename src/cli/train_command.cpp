// `bigbatch train`: the training loop around Trainer::step with progress lines, metrics,
// validation, checkpoints, resume, the final model and a sample.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/checkpoint_report.h"
#include "cli/plan_support.h"
#include "cli/ranks.h"
#include "cli/report.h"
#include "cli/run_dir.h"
#include "cli/run_header.h"
#include "cli/run_record.h"
#include "cli/run_model.h"
#include "cli/signals.h"
#include "cli/step_profile.h"
#include "cli/vision_commands.h"
#include "core/allocator.h"
#include "core/error.h"
#include "core/process_memory.h"
#include "io/hf_model.h"
#include "io/peft.h"
#include "train/checkpoint.h"
#include "train/job.h"
#include "train/vision_job.h"

namespace bb {
namespace fs = std::filesystem;

int run_train(const TrainArgs& args) {
  TrainArgs a = args;
  if (a.config.find('=') != std::string::npos && !fs::exists(a.config)) {
    a.overrides.insert(a.overrides.begin(), a.config);  // only overrides were given
    a.config.clear();
  }
  RunConfig cfg = load_run_config(a.config, a.overrides);
  if (is_vision_model_type(cfg.model_type)) {
    // The planner plans language models only; a budget must not be accepted and then ignored.
    if (!a.memory_budget.empty())
      throw ConfigError(fmt::format("--memory-budget plans language models only, and model.type '{}' is a vision "
                                    "model: set train.micro_batch_size and train.checkpointing yourself",
                                    cfg.model_type));
    return run_train_vision(a, cfg);  // cli/train_vision.cpp
  }
  // The corpus first: the plan must fit the process that holds it.
  JobData data = load_job_data(cfg);
  PlanRow plan;
  const int64_t budget = a.memory_budget.empty() ? 0 : parse_bytes(a.memory_budget);
  // Each rank would measure its own plans, and ranks that chose differently could not train
  // together: plan once with `bigbatch plan` and pass its keys to every rank.
  if (budget > 0 && world().size() > 1)
    throw ConfigError("--memory-budget plans in one process: run `bigbatch plan` without mpirun and pass the plan's "
                      "train.micro_batch_size, train.grad_accum_steps, train.checkpointing and train.precision");
  if (budget > 0) cfg = plan_to_budget(cfg, budget, &plan);
  auto job = make_job(cfg, std::move(data));
  const std::string ckpt = cfg.out_dir + "/checkpoint";
  const bool lead = lead_rank();  // rank 0 writes the run folder; every rank trains
  world().set_timeout(cfg.dist.timeout_s);
  if (lead) prepare_out_dir(cfg, a.resume, a.overwrite);  // before step 1: writable, and no run replaced unasked
  const std::string config_yaml = to_yaml(cfg);

  const int64_t tokens_per_step = effective_batch(cfg) * job->block_size;
  int64_t trainable = 0;
  for (const auto& g : job->optimizer->params()) trainable += g.param.numel();
  fmt::print("bigbatch train: {}{} {} ({} parameters, {} trained), {}\n",
             a.config.empty() ? "default config" : a.config,
             a.overrides.empty() ? "" : fmt::format(" + {}:", count_of(a.overrides.size(), "override")), job->model->model_type(),
             job->model->parameter_count(), trainable, cfg.train.precision);
  if (!cfg.model_init.empty()) fmt::print("  from {}\n", cfg.model_init);
  fmt::print("  data {}: {} training tokens, {} validation tokens ({} tokenizer)\n", cfg.data.path,
             job->corpus.train_tokens, job->corpus.val_tokens, job->tokenizer->name());
  if (!job->corpus.chat_format.empty())
    fmt::print("  chats in the format of {}, loss on {}\n", job->corpus.chat_format,
               cfg.data.train_on == "all" ? "every turn" : "the assistant's turns");
  if (job->corpus.dropped > 0)
    fmt::print("  {} left out: longer than the block size of {} (data.too_long=drop)\n",
               count_of(job->corpus.dropped, "example"), job->block_size);
  if (cfg.data.packing)
    fmt::print("  packed: {} in {} of {} tokens ({:.1f}% filled), attention within each example\n",
               count_of(job->corpus.packed_examples, "example"), count_of(job->corpus.train->size(), "row"),
               job->block_size, 100.0 * job->corpus.packed_fill);
  fmt::print("  effective batch {} {} = {}{} of {} (up to {} tokens a step), {}{}\n", effective_batch(cfg),
             cfg.data.packing ? "packed rows" : "sequences", ranks_times(),
             count_of(cfg.train.grad_accum_steps, "micro-batch", "micro-batches"), cfg.train.micro_batch_size, tokens_per_step,
             count_of(job->total_steps, "step"),
             cfg.vision.epochs > 0 ? fmt::format(" ({} of {} samples)", count_of(cfg.vision.epochs, "epoch"),
                                                 job->corpus.train->size()) : "");

  fmt::print("  learning rate {:.3g}{}, checkpointing {}\n", scaled_lr(cfg),
             cfg.train.lr_scaling == "none" ? std::string()
                 : fmt::format(" ({} scaling of {:.3g} from an effective batch of {})", cfg.train.lr_scaling,
                               cfg.train.lr, cfg.train.lr_reference_batch),
             cfg.train.checkpointing);
  if (a.resume) {
    const std::string found = find_checkpoint(ckpt);
    if (found.empty())
      throw FormatError(fmt::format("--resume: there is no complete checkpoint in {}; start afresh with --overwrite", ckpt));
    CheckpointInfo info = load_checkpoint(found, *job->model, *job->optimizer, *job->trainer);
    if (info.config_yaml != config_yaml)
      fmt::print("  note: the configuration differs from the checkpoint's; continuing with the new one\n");
    fmt::print("  resumed from {} at step {}\n", found, job->trainer->steps_done());
    if (lead) trim_metrics(cfg.out_dir + "/metrics.jsonl", job->trainer->steps_done());
  } else if (lead) {
    std::ofstream(cfg.out_dir + "/metrics.jsonl", std::ios::trunc);
  }
  std::ofstream metrics;
  if (lead) metrics.open(cfg.out_dir + "/metrics.jsonl", std::ios::app);
  if (lead) write_run_header(cfg.out_dir, language_run_header(cfg, a.config, a.overrides, *job,
                                                    memory_prediction(cfg, budget > 0 ? &plan : nullptr, budget)));

  Allocator& alloc = Allocator::of(Device::CPU);
  const Precision precision = parse_precision(cfg.train.precision);
  int64_t run_steps = 0;
  StopSignals signals;  // SIGINT/SIGTERM: finish the step, checkpoint, exit 130/143
  StepProfile profile(cfg.train.profile, job->total_steps - job->trainer->steps_done());
  const RunClock clock{.first_step = job->trainer->steps_done()};
  while (job->trainer->steps_done() < job->total_steps) {
    alloc.reset_window_peaks();  // the metrics record this step's own peak
    profile.before_step();
    auto t0 = std::chrono::steady_clock::now();
    StepResult r = job->trainer->step(job->next_window());  // train.epochs: cut at the epoch's end
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    profile.after_step(job->trainer->steps_done() == job->total_steps);
    ++run_steps;
    nlohmann::json m = step_metrics(r, secs);
    const bool last = r.step == job->total_steps;
    if (lead && job->corpus.val && cfg.train.eval_every > 0 && (r.step % cfg.train.eval_every == 0 || last)) {
      double val = evaluate(*job->model, *job->corpus.val, cfg.train.eval_batches, cfg.train.micro_batch_size, precision);
      m["val_loss"] = val;
    }
    if (lead) metrics << m.dump() << "\n" << std::flush;
    const bool empty = r.skipped && r.tokens == 0;  // always said: the window taught nothing
    if (empty || (cfg.train.log_every > 0 &&
                  (r.step % cfg.train.log_every == 0 || r.step == 1 || last || m.contains("val_loss"))))
      fmt::print("{}\n", progress_line(r, secs, job->total_steps, alloc.stats(), m, clock));
    const bool stop = a.stop_after > 0 && run_steps >= a.stop_after;
    const int signal = agreed_signal(signals.received());  // read once: the checkpoint and the exit agree
    if ((lead || sharded_checkpoints(*job->trainer)) && ((cfg.train.checkpoint_every > 0 && r.step % cfg.train.checkpoint_every == 0) || last || stop || signal))
      save_checkpoint_and_report(ckpt, *job->model, *job->optimizer, *job->trainer, config_yaml, cfg);
    if (auto code = stop_after_step(signal, stop, last, r.step, run_steps, ckpt, a)) return *code;
  }
  if (!lead) return signals.received() ? signals.exit_code() : 0;
  const std::string saved = save_run_model(cfg, *job);  // cli/run_model.cpp
  fmt::print("saved {}; peak memory {} counted ({} with the allocator's cache), {} resident\n", saved,
             format_bytes(alloc.stats().total_peak), format_bytes(alloc.stats().reserved_peak),
             format_bytes(peak_rss_bytes()));
  if (cfg.report) fmt::print("report {}/report.html\n", cfg.out_dir);
  if (signals.received()) return signals.exit_code();  // came after the last step: all is saved
  print_sample(*job->model, *job->tokenizer, cfg);
  return 0;
}

}  // namespace bb
