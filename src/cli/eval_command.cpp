// `bigbatch eval` and `bigbatch generate` on a saved model folder.
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/report.h"
#include "core/error.h"
#include "data/dataset.h"
#include "io/hf_model.h"
#include "train/job.h"

namespace bb {

int run_eval(const EvalArgs& a) {
  auto model = load_causal_lm(a.model_dir);
  ByteTokenizer tok;
  TextDataOptions d;
  d.path = a.data_path;
  d.format = a.format;
  d.val_fraction = 0;
  d.block_size = model->max_positions();
  TextCorpus corpus = load_text_corpus(d, tok);
  if (a.batches <= 0 || a.micro_batch <= 0) throw ConfigError("--batches and --micro-batch must be positive");
  double loss = evaluate(*model, *corpus.train, a.batches, a.micro_batch, Precision::kFP32);
  fmt::print("mean loss per target token: {:.4f} (perplexity {:.2f}) over {} micro-batches of {}\n", loss,
             std::exp(loss), a.batches, a.micro_batch);
  return 0;
}

int run_generate(const GenerateArgs& a) {
  auto model = load_causal_lm(a.model_dir);
  ByteTokenizer tok;
  fmt::print("{}\n", sample_text(*model, tok, a.prompt, a.max_new_tokens, a.temperature, a.top_k, a.seed));
  return 0;
}

}  // namespace bb
