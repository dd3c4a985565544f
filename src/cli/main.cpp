// bigbatch: the command line. It parses arguments, runs a subcommand, and is the one place
// where an error becomes a message and an exit code (1: bad input or failed check).
#include <fmt/format.h>

#include <omp.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "cli/vision_commands.h"
#include "core/error.h"
#include "core/process_memory.h"
#include "dist/communicator.h"
#include "train/config.h"

namespace {

std::string keys_help() {
  std::string s = "Configuration keys (YAML sections, or key=value on the command line):\n";
  for (const auto& k : bb::config_keys()) s += fmt::format("  {:<24} {:<7} {}\n", k.name, k.type, k.doc);
  return s;
}

// --threads on the subcommands that compute; 0 keeps OpenMP's default (OMP_NUM_THREADS, else
// one thread per core).
void add_threads_option(CLI::App* sub, int* threads) {
  sub->add_option("--threads", *threads, "CPU threads (0: OMP_NUM_THREADS, else one per core)")
      ->check(CLI::NonNegativeNumber);
}

}  // namespace

int main(int argc, char** argv) {
  // Progress lines reach a log file as they happen, not when the buffer fills.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  // Resident memory must follow the allocator's own books, under a budget above all.
  bb::give_large_blocks_their_own_pages();
  CLI::App app{"bigbatch: exact gradient accumulation for training on small memory"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("bigbatch ") + BIGBATCH_VERSION);
  app.option_defaults()->always_capture_default();  // --help shows each option's default
  int threads = 0;

  bb::TrainArgs train;
  auto* t = app.add_subcommand("train", "Train a model (the default job without a config)");
  t->add_option("config", train.config, "YAML config file");
  t->add_option("overrides", train.overrides, "key=value overrides");
  t->add_flag("--resume", train.resume, "continue from out_dir/checkpoint");
  t->add_flag("--overwrite", train.overwrite,
              "replace a run already in out_dir (deletes its metrics, checkpoint and saved model)");
  t->add_option("--stop-after", train.stop_after, "stop after N steps of this run, with a checkpoint");
  t->add_option("--memory-budget", train.memory_budget,
                "plan micro-batch, checkpointing and precision to fit this memory (e.g. 2GiB)");
  add_threads_option(t, &threads);
  t->footer(keys_help());

  bb::EvalArgs ev;
  auto* e = app.add_subcommand(
      "eval", "Evaluate a saved model: mean loss per target token on text, or accuracy and a confusion matrix for images");
  e->add_option("--model", ev.model_dir, "model folder (config.json + model.safetensors)")->required();
  e->add_option("--data", ev.data_path, "text file or folder (vision: test images; default Fashion-MNIST)");
  e->add_option("--format", ev.format, "text, documents or instruct (JSON lines, loss on completions)");
  e->add_option("--adapter", ev.adapter_dir, "PEFT LoRA adapter folder to apply");
  e->add_option("--too-long", ev.too_long,
                "instruct: an example longer than the model's positions is an error, or cut (truncate), or left out (drop)");
  e->add_option("--batches", ev.batches, "micro-batches to evaluate");
  e->add_option("--micro-batch", ev.micro_batch, "sequences per micro-batch");
  add_threads_option(e, &threads);

  bb::GenerateArgs gen;
  auto* g = app.add_subcommand("generate", "Sample text from a saved model");
  g->add_option("--model", gen.model_dir, "model folder")->required();
  g->add_option("--prompt", gen.prompt, "text to continue")->required();
  g->add_option("--max-new-tokens", gen.max_new_tokens, "tokens to sample");
  g->add_option("--temperature", gen.temperature, "0 for greedy");
  g->add_option("--top-k", gen.top_k, "sample among the k likeliest (0: all)");
  g->add_option("--seed", gen.seed, "sampling seed");
  g->add_option("--adapter", gen.adapter_dir, "PEFT LoRA adapter folder to apply");
  g->add_option("--top-p", gen.top_p, "sample among the likeliest tokens holding this probability (1: all)");
  g->add_flag("--chat", gen.chat,
              "the prompt is a user message: render it with the model's chat template and the generation prompt, "
              "print only the reply");
  g->add_option("--system", gen.system, "with --chat: a system message before the prompt");
  add_threads_option(g, &threads);

  bb::MergeArgs merge;
  auto* mg = app.add_subcommand("merge", "Fold a LoRA adapter into its base model and save a plain model");
  mg->add_option("--base", merge.base_dir, "base model folder")->required();
  mg->add_option("--adapter", merge.adapter_dir, "PEFT adapter folder")->required();
  mg->add_option("--out", merge.out_dir, "folder for the merged model (not --base or --adapter)")->required();
  mg->add_flag("--overwrite", merge.overwrite, "replace a model already in --out");

  bb::ExportArgs exp;
  auto* x = app.add_subcommand("export",
                               "Export a saved model for inference: an image classifier to ONNX (BatchNorm folded), "
                               "a GPT-2 or Llama to GGUF for llama.cpp");
  x->add_option("--model", exp.model_dir, "model folder (config.json + model.safetensors)")->required();
  x->add_option("--format", exp.format, "onnx or gguf (default: onnx for image classifiers, gguf for language models)");
  x->add_option("--type", exp.type, "gguf: weight encoding f32, f16, bf16, q8_0 or q4_0 (norms and biases stay f32)")
      ->capture_default_str();
  x->add_option("--adapter", exp.adapter_dir, "gguf: PEFT LoRA adapter folder to fold into the weights");
  x->add_option("--out", exp.out,
                "output file (default MODEL/model.onnx or MODEL/model-TYPE.gguf; never one of the model's own files)");
  x->add_flag("--overwrite", exp.overwrite, "replace an existing --out file");

  bb::PlanArgs plan;
  auto* pl = app.add_subcommand("plan", "Predict memory and step time of each plan for a memory budget");
  pl->add_option("config", plan.config, "YAML config file");
  pl->add_option("overrides", plan.overrides, "key=value overrides");
  pl->add_option("--memory", plan.memory, "memory budget, e.g. 2GiB")->required();
  pl->add_option("--precisions", plan.precisions, "precisions to consider (default fp32,bf16)");
  pl->add_option("--checkpointing", plan.policies, "policies to consider (default none,selective,every:2,full)");
  add_threads_option(pl, &threads);

  bb::VerifyArgs ver;
  auto* v = app.add_subcommand("verify",
                               "Check on your model and data that K micro-batches give the update of one batch");
  v->add_option("config", ver.config, "YAML config file");
  v->add_option("overrides", ver.overrides, "key=value overrides");
  v->add_option("--tolerance", ver.tolerance,
                "largest relative error accepted (0: by precision, fp32 1e-4, bf16 3e-2, fp16 1e-2)");
  v->add_flag("--mean-of-means", ver.mean_of_means,
              "accumulate as many tools do (each micro-batch normalised by its own token count, then "
              "averaged): verify must FAIL on data whose micro-batches hold different token counts");

  add_threads_option(v, &threads);

  bb::ReportArgs rep;
  auto* rp = app.add_subcommand(
      "report", "Write one HTML file with the loss, memory and speed charts of runs, overlaid when several");
  rp->add_option("run_dirs", rep.run_dirs, "run folders (out_dir of bigbatch train)")->required();
  rp->add_option("--out", rep.out, "HTML file (default RUN_DIR/report.html for one run, report.html for several)");
  rp->add_flag("--overwrite", rep.overwrite, "replace an --out file that is not a bigbatch report");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& err) {
    if (err.get_exit_code() == 0) return app.exit(err);  // --help, --version
    // CLI11's own codes (105, 106, ...) mean nothing to a shell script: bad input is 1.
    fmt::print(stderr, "bigbatch: {} (bigbatch --help lists the commands and options)\n", err.what());
    return 1;
  }
  if (threads > 0) omp_set_num_threads(threads);  // before any work starts its threads
  // Under mpirun every rank runs this program; rank 0 alone prints progress, and an error on
  // any rank names it and ends the whole job.
  std::string rank_prefix;
  try {
    bb::Communicator& world = bb::world();
    if (world.size() > 1) {
      rank_prefix = fmt::format("rank {}: ", world.rank());
      if (world.rank() != 0 && !std::freopen("/dev/null", "w", stdout))
        throw bb::Error("cannot silence the standard output of a rank other than 0");
    }
  } catch (const bb::Error& err) {
    fmt::print(stderr, "bigbatch: {}\n", err.what());
    return 1;
  }
  auto fail = [&](const std::string& message, int code) {
    fmt::print(stderr, "bigbatch: {}{}\n", message.rfind("rank ", 0) == 0 ? "" : rank_prefix, message);
    std::fflush(stdout);
    std::fflush(stderr);
    if (!rank_prefix.empty()) bb::abort_world(code);  // the other ranks would wait for this one
    return code;
  };
  try {
    if (*t) return bb::run_train(train);
    if (*e) return bb::run_eval(ev);
    if (*g) return bb::run_generate(gen);
    if (*mg) return bb::run_merge(merge);
    if (*v) return bb::run_verify(ver);
    if (*pl) return bb::run_plan(plan);
    if (*x) return bb::run_export(exp);
    if (*rp) return bb::run_report(rep);
  } catch (const bb::Error& err) {
    return fail(err.what(), 1);
  } catch (const std::exception& err) {
    return fail(std::string("unexpected error: ") + err.what(), 2);
  }
  return 0;
}
