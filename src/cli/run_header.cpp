// run.json: see run_header.h.
#include "cli/run_header.h"

#include <fmt/format.h>

#include <ctime>

#include "core/error.h"

namespace bb {

namespace {

nlohmann::json by_category(const std::array<int64_t, kNumCategories>& bytes) {
  nlohmann::json j = nlohmann::json::object();
  for (int c = 0; c < kNumCategories; ++c) j[std::string(category_name(Category(c)))] = bytes[c];
  return j;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// What every run's header holds: the batch, the precision and the configuration.
nlohmann::json common_header(const char* kind, const RunConfig& cfg, const std::string& config_file,
                             const std::vector<std::string>& overrides, int ranks, int64_t total_steps) {
  nlohmann::json config = nlohmann::json::object();
  for (const auto& [key, value] : config_values(cfg)) config[key] = value;
  return {{"kind", kind},
          {"format", 1},
          {"started", utc_now()},
          {"config_file", config_file.empty() ? "the default job" : config_file},
          {"overrides", overrides},
          {"micro_batch", cfg.train.micro_batch_size},
          {"grad_accum", cfg.train.grad_accum_steps},
          {"ranks", ranks},
          {"effective_batch", cfg.train.micro_batch_size * cfg.train.grad_accum_steps * ranks},
          {"precision", cfg.train.precision},
          {"checkpointing", cfg.train.checkpointing},
          {"total_steps", total_steps},
          {"config", config}};
}

}  // namespace

nlohmann::json memory_prediction(const RunConfig& cfg, const PlanRow* plan, int64_t budget) {
  if (plan) {
    return {{"source", "plan"},
            {"budget", budget},
            {"overhead", plan->overhead},
            {"peak", plan->memory.total_peak},
            {"peak_by", by_category(plan->memory.peak)},
            {"step_seconds", plan->step_seconds},
            {"plan", fmt::format("micro-batch {} x {} accumulation, checkpointing {}, {}", plan->micro_batch,
                                 plan->accum, plan->checkpointing, plan->precision)}};
  }
  try {
    const MemoryStats s = dry_run(cfg);
    return {{"source", "dry run"}, {"peak", s.total_peak}, {"peak_by", by_category(s.peak)}};
  } catch (const Error& e) {
    // The prediction only annotates the report: a dry run that cannot be made must not stop
    // the training run, and the report says why it has no prediction.
    return {{"source", "dry run"}, {"error", e.what()}};
  }
}

nlohmann::json language_run_header(const RunConfig& cfg, const std::string& config_file,
                                   const std::vector<std::string>& overrides, const Job& job,
                                   const nlohmann::json& prediction) {
  nlohmann::json h = common_header("language", cfg, config_file, overrides, job.comm->size(), job.total_steps);
  int64_t trained = 0;
  for (const auto& g : job.optimizer->params()) trained += g.param.numel();
  h["model"] = job.model->model_type();
  h["model_init"] = cfg.model_init;
  h["parameters"] = job.model->parameter_count();
  h["trained_parameters"] = trained;
  h["lora_r"] = cfg.lora.r;
  h["block_size"] = job.block_size;
  h["tokenizer"] = job.tokenizer->name();
  h["train_tokens"] = job.corpus.train_tokens;
  if (!job.corpus.chat_format.empty()) h["chat_template"] = job.corpus.chat_format;
  h["prediction"] = prediction;
  return h;
}

nlohmann::json vision_run_header(const RunConfig& cfg, const std::string& config_file,
                                 const std::vector<std::string>& overrides, const VisionJob& job) {
  nlohmann::json h = common_header("vision", cfg, config_file, overrides, job.comm->size(), job.total_steps);
  int64_t trained = 0;
  for (const auto& g : job.optimizer->params()) trained += g.param.numel();
  const ImageSet& train = job.data.train->images();
  h["model"] = cfg.model_type;
  h["parameters"] = job.model->parameter_count();
  h["trained_parameters"] = trained;
  h["classes"] = train.classes;
  h["train_images"] = train.count;
  h["image_shape"] = {train.channels, train.height, train.width};
  h["batchnorm"] = cfg.vision.batchnorm;
  h["prediction"] = {{"error", "the planner plans language models only"}};
  return h;
}

}  // namespace bb
