// `bigbatch export --format gguf`: a GPT-2 or Llama model folder (with a LoRA adapter folded
// in when --adapter names one) to one GGUF file that llama.cpp, Ollama and LM Studio load.
#include <fmt/format.h>

#include <filesystem>

#include "cli/vision_commands.h"
#include "core/error.h"
#include "io/gguf_model.h"
#include "io/gguf_tokenizer.h"
#include "io/hf_model.h"
#include "io/peft.h"
#include "nn/lora.h"
#include "train/job.h"

namespace bb {

int run_export_gguf(const ExportArgs& a) {
  const gguf::TensorType type = gguf::parse_tensor_type(a.type);
  const std::string out = a.out.empty() ? fmt::format("{}/model-{}.gguf", a.model_dir, a.type) : a.out;
  check_export_out(a, out);
  auto model = load_causal_lm(a.model_dir);
  if (!a.adapter_dir.empty()) {
    // As `bigbatch merge`: W + (alpha / r) B A, computed on an adapted copy, set on the plain model.
    auto adapted = load_causal_lm(a.model_dir);
    load_peft_adapter(a.adapter_dir, *adapted);
    for (auto& [name, t] : merged_weights(*adapted)) model->set_parameter(name, t);
  }
  gguf::Writer w;
  std::vector<std::string> notes;
  const std::string name = std::filesystem::path(a.model_dir).lexically_normal().filename().string();
  gguf::add_model(w, *model, type, name.empty() ? "model" : name, notes);
  gguf::add_tokenizer(w, a.model_dir, model->vocab_size(), tokenizer_for_model(a.model_dir)->special());
  w.write(out);
  for (const auto& n : notes) fmt::print("note: {}\n", n);
  fmt::print("wrote {}: {} {} tensors, {} ({} MiB)\n", out, w.tensors().size(), model->model_type(), a.type,
             fmt::format("{:.1f}", std::filesystem::file_size(out) / 1048576.0));
  return 0;
}

}  // namespace bb
