// `bigbatch merge`: a base model plus a LoRA adapter in, one plain Hugging Face model folder
// out, with W + (alpha / r) B A folded into each adapted weight. Tokenizer files of the base
// folder are copied along so the merged folder is complete.
#include <fmt/format.h>

#include <filesystem>

#include "cli/commands.h"
#include "io/hf_model.h"
#include "io/peft.h"
#include "nn/lora.h"

namespace bb {

int run_merge(const MergeArgs& a) {
  namespace fs = std::filesystem;
  auto adapted = load_causal_lm(a.base_dir);
  LoraOptions o = load_peft_adapter(a.adapter_dir, *adapted);
  NamedTensors merged = merged_weights(*adapted);
  auto model = load_causal_lm(a.base_dir);  // a plain copy to receive the folded weights
  for (auto& [name, t] : merged) model->set_parameter(name, t);
  save_causal_lm(a.out_dir, *model);
  for (const char* f : {"tokenizer.json", "tokenizer.model", "vocab.json", "merges.txt", "tokenizer_config.json",
                        "special_tokens_map.json", "generation_config.json"})
    if (fs::exists(fs::path(a.base_dir) / f))
      fs::copy_file(fs::path(a.base_dir) / f, fs::path(a.out_dir) / f, fs::copy_options::overwrite_existing);
  fmt::print("merged {} adapted layers (r {}, alpha {}) of {} into {}\n", lora_layers(*adapted).size(), o.r,
             o.alpha, a.base_dir, a.out_dir);
  return 0;
}

}  // namespace bb
