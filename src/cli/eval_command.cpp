// `bigbatch eval` and `bigbatch generate` on a saved model folder.
#include <fmt/format.h>

#include <cmath>
#include <filesystem>

#include "cli/commands.h"
#include "cli/report.h"
#include "cli/vision_commands.h"
#include "core/error.h"
#include "data/chat_format.h"
#include "data/dataset.h"
#include "io/hf_model.h"
#include "io/peft.h"
#include "train/job.h"

namespace bb {

namespace {
// The folder whose chat format a saved model uses: an adapter trained with its own template
// (data.chat_template) carries it; otherwise the model's.
std::string chat_format_dir(const std::string& model_dir, const std::string& adapter_dir) {
  namespace fs = std::filesystem;
  return !adapter_dir.empty() && fs::exists(fs::path(adapter_dir) / "chat_template.jinja") ? adapter_dir : model_dir;
}
}  // namespace

int run_eval(const EvalArgs& a) {
  if (is_image_model_dir(a.model_dir)) return run_eval_vision(a);  // cli/eval_vision.cpp
  if (a.data_path.empty()) throw ConfigError("eval: --data is required for a language model");
  auto model = load_causal_lm(a.model_dir);
  if (!a.adapter_dir.empty()) load_peft_adapter(a.adapter_dir, *model);
  auto tok_ptr = tokenizer_for_model(a.model_dir);
  const Tokenizer& tok = *tok_ptr;
  TextDataOptions d;
  d.path = a.data_path;
  d.format = a.format;
  d.val_fraction = 0;
  d.block_size = model->max_positions();
  d.tokenizer_dir = chat_format_dir(a.model_dir, a.adapter_dir);
  d.too_long = a.too_long;
  if (d.format != "text" && d.format != "documents" && d.format != "instruct")
    throw ConfigError(fmt::format("eval: --format '{}' is not known (text, documents or instruct)", d.format));
  TextCorpus corpus = load_corpus(d, tok);
  if (a.batches <= 0 || a.micro_batch <= 0) throw ConfigError("--batches and --micro-batch must be positive");
  double loss = 0;
  try {
    loss = evaluate(*model, *corpus.train, a.batches, a.micro_batch, Precision::kFP32);
  } catch (const FormatError& e) {
    throw FormatError(fmt::format("eval: {}: {}", a.data_path, e.what()));  // which data held no tokens
  }
  fmt::print("mean loss per target token: {:.4f} (perplexity {:.2f}) over {} of {}\n", loss, std::exp(loss),
             count_of(a.batches, "micro-batch", "micro-batches"), a.micro_batch);
  return 0;
}

int run_generate(const GenerateArgs& a) {
  // Checked before the model loads, in the flags' own names (nan fails each test).
  if (!(a.temperature >= 0))
    throw ConfigError(fmt::format("generate: --temperature must be 0 (greedy) or positive, got {}", a.temperature));
  if (a.top_k < 0) throw ConfigError(fmt::format("generate: --top-k must be 0 (all) or positive, got {}", a.top_k));
  if (!(a.top_p > 0 && a.top_p <= 1))
    throw ConfigError(fmt::format("generate: --top-p must be in (0, 1] (1: all), got {}", a.top_p));
  if (!a.system.empty() && !a.chat) throw ConfigError("generate: --system needs --chat");
  if (a.max_new_tokens < 0)
    throw ConfigError(fmt::format("generate: --max-new-tokens must not be negative, got {}", a.max_new_tokens));
  auto model = load_causal_lm(a.model_dir);
  if (!a.adapter_dir.empty()) load_peft_adapter(a.adapter_dir, *model);
  auto tok = tokenizer_for_model(a.model_dir);
  SamplingOptions o;
  o.max_new_tokens = a.max_new_tokens;
  o.temperature = static_cast<float>(a.temperature);
  o.top_k = a.top_k;
  o.top_p = static_cast<float>(a.top_p);
  o.seed = a.seed;
  if (!a.chat) {
    stream_sample(*model, *tok, a.prompt, o);
    return 0;
  }
  const ChatFormat format = load_chat_format(chat_format_dir(a.model_dir, a.adapter_dir), "");
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  if (!a.system.empty()) messages.push_back({{"role", "system"}, {"content", a.system}});
  messages.push_back({{"role", "user"}, {"content", a.prompt}});
  stream_sample(*model, *tok, render_chat_prompt(format, messages, tok->special()), o, false);
  return 0;
}

}  // namespace bb
