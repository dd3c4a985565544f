// bigbatch: the command line. It parses arguments, runs a subcommand, and is the one place
// where an error becomes a message and an exit code (1: bad input or failed check).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <exception>

#include "cli/commands.h"
#include "core/error.h"
#include "train/config.h"

namespace {

std::string keys_help() {
  std::string s = "Configuration keys (YAML sections, or key=value on the command line):\n";
  for (const auto& k : bb::config_keys()) s += fmt::format("  {:<24} {:<7} {}\n", k.name, k.type, k.doc);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bigbatch: exact gradient accumulation for training on small memory"};
  app.require_subcommand(1);

  bb::TrainArgs train;
  auto* t = app.add_subcommand("train", "Train a model (the default job without a config)");
  t->add_option("config", train.config, "YAML config file");
  t->add_option("overrides", train.overrides, "key=value overrides");
  t->add_flag("--resume", train.resume, "continue from out_dir/checkpoint");
  t->add_option("--stop-after", train.stop_after, "stop after N steps of this run, with a checkpoint");
  t->footer(keys_help());

  bb::EvalArgs ev;
  auto* e = app.add_subcommand("eval", "Mean loss per target token of a saved model on a text file");
  e->add_option("--model", ev.model_dir, "model folder (config.json + model.safetensors)")->required();
  e->add_option("--data", ev.data_path, "text file or folder")->required();
  e->add_option("--format", ev.format, "text or documents");
  e->add_option("--batches", ev.batches, "micro-batches to evaluate");
  e->add_option("--micro-batch", ev.micro_batch, "sequences per micro-batch");

  bb::GenerateArgs gen;
  auto* g = app.add_subcommand("generate", "Sample text from a saved model");
  g->add_option("--model", gen.model_dir, "model folder")->required();
  g->add_option("--prompt", gen.prompt, "text to continue")->required();
  g->add_option("--max-new-tokens", gen.max_new_tokens, "tokens to sample");
  g->add_option("--temperature", gen.temperature, "0 for greedy");
  g->add_option("--top-k", gen.top_k, "sample among the k likeliest (0: all)");
  g->add_option("--seed", gen.seed, "sampling seed");

  bb::VerifyArgs ver;
  auto* v = app.add_subcommand("verify",
                               "Check on your model and data that K micro-batches give the update of one batch");
  v->add_option("config", ver.config, "YAML config file");
  v->add_option("overrides", ver.overrides, "key=value overrides");
  v->add_option("--tolerance", ver.tolerance, "largest relative error accepted");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& err) {
    return app.exit(err);
  }
  try {
    if (*t) return bb::run_train(train);
    if (*e) return bb::run_eval(ev);
    if (*g) return bb::run_generate(gen);
    if (*v) return bb::run_verify(ver);
  } catch (const bb::Error& err) {
    fmt::print(stderr, "bigbatch: {}\n", err.what());
    return 1;
  } catch (const std::exception& err) {
    fmt::print(stderr, "bigbatch: unexpected error: {}\n", err.what());
    return 2;
  }
  return 0;
}
