// `bigbatch merge`: a base model plus a LoRA adapter in, one plain Hugging Face model folder
// out, with W + (alpha / r) B A folded into each adapted weight. Tokenizer files of the base
// folder are copied along so the merged folder is complete. The output never replaces its
// sources, nor another model without --overwrite.
#include <fmt/format.h>

#include <filesystem>

#include "cli/commands.h"
#include "train/job.h"
#include "core/error.h"
#include "io/atomic_dir.h"
#include "io/hf_model.h"
#include "io/peft.h"
#include "nn/lora.h"

namespace bb {

namespace {

namespace fs = std::filesystem;

// --out must be neither source (by any path to it) and, unless --overwrite, hold no model.
void check_merge_out(const MergeArgs& a) {
  std::error_code ec;
  for (const auto& [flag, dir] : {std::pair<const char*, std::string>{"--base", a.base_dir}, {"--adapter", a.adapter_dir}})
    if (fs::equivalent(a.out_dir, dir, ec))
      throw ConfigError(fmt::format("--out {} is the {} folder; merging would overwrite what it reads", a.out_dir, flag));
  if (fs::exists(a.out_dir) && !fs::is_directory(a.out_dir))
    throw ConfigError(fmt::format("--out {} is a file, not a folder", a.out_dir));
  const auto existing = model_folder_files(a.out_dir);
  if (!a.overwrite && !existing.empty())
    throw ConfigError(fmt::format("--out {} already holds a model ({}); choose another folder or pass --overwrite",
                                  a.out_dir, existing.front()));
}

}  // namespace

int run_merge(const MergeArgs& a) {
  check_merge_out(a);
  auto adapted = load_causal_lm(a.base_dir);
  LoraOptions o = load_peft_adapter(a.adapter_dir, *adapted);
  NamedTensors merged = merged_weights(*adapted);
  auto model = load_causal_lm(a.base_dir);  // a plain copy to receive the folded weights
  for (auto& [name, t] : merged) model->set_parameter(name, t);
  write_model_folder(a.out_dir, [&](const std::string& staging) {
    save_causal_lm(staging, *model, tokenizer_for_model(a.base_dir)->special());
    for (const char* f : kTokenizerFiles)
      if (fs::exists(fs::path(a.base_dir) / f)) fs::copy_file(fs::path(a.base_dir) / f, fs::path(staging) / f);
    // the adapter trained with its own template when data.chat_template named one
    const fs::path adapter_template = fs::path(a.adapter_dir) / "chat_template.jinja";
    if (fs::exists(adapter_template))
      fs::copy_file(adapter_template, fs::path(staging) / "chat_template.jinja", fs::copy_options::overwrite_existing);
  });
  fmt::print("merged {} adapted layers (r {}, alpha {}) of {} into {}\n", lora_layers(*adapted).size(), o.r,
             o.alpha, a.base_dir, a.out_dir);
  return 0;
}

}  // namespace bb
