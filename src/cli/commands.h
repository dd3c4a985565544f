// The subcommands of `bigbatch`. Each returns the process exit code; errors propagate as
// exceptions to main(), which prints them as one sentence.
#pragma once
#include <string>
#include <vector>

namespace bb {

struct TrainArgs {
  std::string config;  // empty: the default job
  std::vector<std::string> overrides;
  bool resume = false;
  bool overwrite = false;  // replace a run already in out_dir (metrics, checkpoint, model)
  int64_t stop_after = 0;  // stop (with a checkpoint) after this many steps of this run
  std::string memory_budget;  // plan micro-batch, checkpointing and precision to fit this
};
int run_train(const TrainArgs& a);

struct EvalArgs {
  std::string model_dir, data_path, format = "text";
  std::string adapter_dir;  // a PEFT LoRA adapter to apply (empty: none)
  int64_t batches = 16, micro_batch = 8;
  std::string too_long = "error";  // instruct: an example past the model's positions
};
int run_eval(const EvalArgs& a);

struct GenerateArgs {
  std::string model_dir, prompt;
  int64_t max_new_tokens = 200, top_k = 40;
  double temperature = 0.8;
  uint64_t seed = 0;
  std::string adapter_dir;  // a PEFT LoRA adapter to apply (empty: none)
  double top_p = 1.0;
  bool chat = false;   // the prompt is a user message, put in the model's chat format
  std::string system;  // with chat: a system message first (empty: none)
};
int run_generate(const GenerateArgs& a);

struct MergeArgs {
  std::string base_dir, adapter_dir, out_dir;
  bool overwrite = false;  // replace a model already in out_dir
};
// Folds a LoRA adapter into its base model's weights and saves a plain model folder.
int run_merge(const MergeArgs& a);

struct PlanArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string memory;
  std::string precisions, policies;  // comma lists; empty = all
};
int run_plan(const PlanArgs& a);

struct VerifyArgs {
  std::string config;
  std::vector<std::string> overrides;
  double tolerance = 0;        // 0: the precision's own (verify_tolerance)
  bool mean_of_means = false;  // accumulate wrongly on purpose: verify must FAIL
};
// The default tolerance of `verify` for a precision (fp32 1e-4; bf16 and fp16 round each
// micro-batch's products differently from the large batch's, so they get their own).
double verify_tolerance(const std::string& precision);
int run_verify(const VerifyArgs& a);

struct ReportArgs {
  std::vector<std::string> run_dirs;
  std::string out;         // empty: RUN_DIR/report.html for one run, ./report.html for several
  bool overwrite = false;  // replace an --out file that is not a bigbatch report
};
// Writes the HTML report of one run or several overlaid (cli/html_report.h).
int run_report(const ReportArgs& a);

}  // namespace bb
