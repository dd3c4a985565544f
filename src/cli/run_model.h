// The model a language-model run leaves in out_dir, each folder written with
// write_model_folder (no kill leaves a mismatched config and weights): the full model, or the
// LoRA adapter in PEFT's layout; a LoRA run without model.init also saves the random base it
// trained on in out_dir/base, named by the adapter's base_model_name_or_path.
#pragma once
#include <string>

#include "train/job.h"

namespace bb {

// Saves the run's model and tokenizer files; returns what it wrote, for the closing line.
std::string save_run_model(const RunConfig& cfg, const Job& job);

}  // namespace bb
