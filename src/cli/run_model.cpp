// Saving a language-model run's model, adapter and (for LoRA from scratch) base: see run_model.h.
#include "cli/run_model.h"

#include <fmt/format.h>

#include <filesystem>

#include "io/atomic_dir.h"
#include "io/hf_model.h"
#include "io/peft.h"
#include "nn/lora.h"

namespace bb {

namespace {

bool is_adapter_parameter(const std::string& name) {
  return name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos;
}

// The frozen base the adapter trained on, as a plain model: the run's initial weights (in
// lora.base_dtype when that is bf16; a q8_0 / q4_0 base as its dequantized values, which
// safetensors can hold), without the adapters.
void save_lora_base(const RunConfig& cfg, const Job& job, const std::string& dir) {
  RunConfig plain = cfg;
  plain.lora.r = 0;
  plain.lora.base_dtype = "fp32";
  auto base = make_causal_lm(plain);
  bool quantized = false;
  for (const auto& [name, t] : job.model->named_parameters()) quantized = quantized || is_block_quantized(t.dtype());
  if (quantized) {
    for (const auto& [name, t] : base_weights(*job.model)) base->set_parameter(name, t);
  } else {
    for (const auto& [name, t] : job.model->named_parameters())
      if (!is_adapter_parameter(name)) base->set_parameter(name, t);
  }
  write_model_folder(dir, [&](const std::string& staging) {
    save_causal_lm(staging, *base, job.tokenizer->special());
    copy_tokenizer_files(cfg, staging);
  });
}

}  // namespace

std::string save_run_model(const RunConfig& cfg, const Job& job) {
  namespace fs = std::filesystem;
  if (cfg.lora.r <= 0) {
    write_model_folder(cfg.out_dir, [&](const std::string& staging) {
      save_causal_lm(staging, *job.model, job.tokenizer->special());
      copy_tokenizer_files(cfg, staging);
    });
    return fmt::format("{}/model.safetensors and config.json", cfg.out_dir);
  }
  std::string base_name = cfg.model_init, base_note;
  if (base_name.empty()) {  // the base is the seeded random model: without it the adapter is useless
    const std::string base_dir = (fs::path(cfg.out_dir) / "base").string();
    save_lora_base(cfg, job, base_dir);
    base_name = fs::absolute(base_dir).lexically_normal().string();
    base_note = fmt::format(" and its random base model {} (no model.init)", base_dir);
  }
  write_model_folder(cfg.out_dir, [&](const std::string& staging) {
    save_peft_adapter(staging, *job.model, job.lora, base_name);
    copy_tokenizer_files(cfg, staging);
  });
  return fmt::format("the LoRA adapter {}/adapter_model.safetensors and adapter_config.json{}", cfg.out_dir,
                     base_note);
}

}  // namespace bb
