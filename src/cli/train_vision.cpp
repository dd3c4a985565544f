// `bigbatch train` for image classifiers: Trainer::step over K micro-batches read through
// the background loader, a progress line with images/s, test accuracy after every epoch,
// metrics.jsonl, checkpoints and resume, and the saved model (model.safetensors + config.json).
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/checkpoint_report.h"
#include "cli/report.h"
#include "cli/run_dir.h"
#include "cli/run_header.h"
#include "cli/run_record.h"
#include "cli/ranks.h"
#include "cli/signals.h"
#include "cli/step_profile.h"
#include "cli/vision_commands.h"
#include "core/allocator.h"
#include "core/error.h"
#include "core/process_memory.h"
#include "io/atomic_dir.h"
#include "train/checkpoint.h"
#include "train/vision_job.h"

namespace bb {
namespace fs = std::filesystem;

namespace {

// What BatchNorm does under accumulation matters for accuracy: say it once, before training.
void print_batchnorm_note(const RunConfig& cfg) {
  if (cfg.train.grad_accum_steps <= 1) return;
  const auto& mode = cfg.vision.batchnorm;
  if (mode == "micro")
    fmt::print("  batchnorm: micro (model.batchnorm) - each micro-batch of {} normalises with its own statistics, so "
               "training is not identical to one batch of {}; running statistics merge the whole window exactly\n",
               cfg.train.micro_batch_size, cfg.train.micro_batch_size * cfg.train.grad_accum_steps);
  else if (mode == "frozen")
    fmt::print("  batchnorm: frozen (model.batchnorm) - running statistics normalise and never update, so K x B "
               "gives exactly the gradients of one batch of {}\n",
               cfg.train.micro_batch_size * cfg.train.grad_accum_steps);
}

}  // namespace

int run_train_vision(const TrainArgs& a, const RunConfig& cfg) {
  auto job = make_vision_job(cfg);
  VisionJob& j = *job;
  const std::string ckpt = cfg.out_dir + "/checkpoint", metrics_path = cfg.out_dir + "/metrics.jsonl";
  const bool lead = lead_rank();  // rank 0 writes the run folder; every rank trains
  world().set_timeout(cfg.dist.timeout_s);
  if (lead) prepare_out_dir(cfg, a.resume, a.overwrite);  // before step 1: writable, and no run replaced unasked
  const std::string config_yaml = to_yaml(cfg);
  const ImageSet& train = j.data.train->images();
  const int64_t per_step = effective_batch(cfg);
  fmt::print("bigbatch train: {} {} ({} parameters), {}\n", a.config.empty() ? "command line" : a.config,
             cfg.model_type, j.model->parameter_count(), cfg.train.precision);
  fmt::print("  data {}: {} training images {}x{}x{}, {} test images, {} classes\n", cfg.data.path, train.count,
             train.height, train.width, train.channels, j.data.test ? j.data.test->size() : 0, train.classes.size());
  fmt::print("  effective batch {} images = {}{} of {}, {} ({:.2f} epochs)\n", per_step, ranks_times(),
             count_of(cfg.train.grad_accum_steps, "micro-batch", "micro-batches"), cfg.train.micro_batch_size,
             count_of(j.total_steps, "step"),
             cfg.vision.epochs > 0 ? double(cfg.vision.epochs) : double(j.total_steps * per_step) / train.count);
  print_batchnorm_note(cfg);

  if (a.resume) {
    const std::string found = find_checkpoint(ckpt);
    if (found.empty())
      throw FormatError(fmt::format("--resume: there is no complete checkpoint in {}; start afresh with --overwrite", ckpt));
    CheckpointInfo info = load_checkpoint(found, *j.model, *j.optimizer, *j.trainer);
    if (info.config_yaml != config_yaml)
      fmt::print("  note: the configuration differs from the checkpoint's; continuing with the new one\n");
    fmt::print("  resumed from {} at step {}\n", found, j.trainer->steps_done());
    if (lead) trim_metrics(metrics_path, j.trainer->steps_done());
  } else if (lead) {
    std::ofstream(metrics_path, std::ios::trunc);
  }
  std::ofstream metrics;
  if (lead) metrics.open(metrics_path, std::ios::app);
  if (lead) write_run_header(cfg.out_dir, vision_run_header(cfg, a.config, a.overrides, j));

  Allocator& alloc = Allocator::of(Device::CPU);
  const Precision precision = parse_precision(cfg.train.precision);
  const auto run_start = std::chrono::steady_clock::now();
  int64_t run_steps = 0;
  const RunClock clock{.start = run_start, .first_step = j.trainer->steps_done()};
  StopSignals signals;  // SIGINT/SIGTERM: finish the step, checkpoint, exit 130/143
  StepProfile profile(cfg.train.profile, j.total_steps - j.trainer->steps_done());
  while (j.trainer->steps_done() < j.total_steps) {
    const int64_t epoch_before = j.trainer->samples_done() / train.count;
    alloc.reset_window_peaks();  // the metrics record this step's own peak
    profile.before_step();
    auto t0 = std::chrono::steady_clock::now();
    StepResult r = j.trainer->step(j.next_window());  // train.epochs: cut at the epoch's end
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    profile.after_step(j.trainer->steps_done() == j.total_steps);
    ++run_steps;
    const bool last = r.step == j.total_steps;
    const double epoch = static_cast<double>(j.trainer->samples_done()) / train.count;
    nlohmann::json m = step_metrics(r, secs);
    m["epoch"] = epoch;
    m["images"] = r.samples;
    m["images_per_s"] = secs > 0 ? r.samples / secs : 0.0;
    const bool epoch_end = static_cast<int64_t>(epoch) > epoch_before || last;
    if (cfg.train.log_every > 0 && (r.step % cfg.train.log_every == 0 || r.step == 1 || last))
      fmt::print("step {:>5}/{} | epoch {:.2f} | loss {:.4f} | lr {:.2e} | {:>6.0f} img/s | mem {} (peak {}) | {} "
                 "elapsed, ETA {}\n", r.step, j.total_steps, epoch, r.loss, r.lr, m["images_per_s"].get<double>(),
                 format_bytes(alloc.stats().total_live), format_bytes(alloc.stats().total_peak),
                 format_duration(clock.elapsed()), format_duration(clock.eta(r.step, j.total_steps)));
    if (lead && epoch_end && j.data.test) {
      ClassifierEval e = evaluate_classifier(*j.model, *j.data.test, j.info.options.classes,
                                             cfg.train.micro_batch_size, precision);
      m["test_accuracy"] = e.accuracy;
      m["test_loss"] = e.loss;
      m["confusion"] = e.confusion;
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
      fmt::print("epoch {:.2f}: test accuracy {:.2f}% ({} images), test loss {:.4f}, {:.0f} s\n", epoch,
                 100 * e.accuracy, e.samples, e.loss, elapsed);
    }
    if (lead) metrics << m.dump() << "\n" << std::flush;
    const bool stop = a.stop_after > 0 && run_steps >= a.stop_after;
    const int signal = agreed_signal(signals.received());  // read once: the checkpoint and the exit agree
    if ((lead || sharded_checkpoints(*j.trainer)) && ((cfg.train.checkpoint_every > 0 && r.step % cfg.train.checkpoint_every == 0) || epoch_end || stop ||
                 signal))
      save_checkpoint_and_report(ckpt, *j.model, *j.optimizer, *j.trainer, config_yaml, cfg);
    if (auto code = stop_after_step(signal, stop, last, r.step, run_steps, ckpt, a)) return *code;
  }
  if (!lead) return signals.received() ? signals.exit_code() : 0;
  write_model_folder(cfg.out_dir, [&](const std::string& staging) { save_image_classifier(staging, *j.model, j.info); });
  fmt::print("saved {}/model.safetensors and config.json; peak memory {} counted, {} resident\n", cfg.out_dir,
             format_bytes(alloc.stats().total_peak), format_bytes(peak_rss_bytes()));
  if (cfg.report) fmt::print("report {}/report.html\n", cfg.out_dir);
  return signals.received() ? signals.exit_code() : 0;  // a signal after the last step: all is saved
}

}  // namespace bb
