// What a user notices first: --version, parse errors that exit 1 with a sentence, --help
// with defaults, --threads, counts in the singular, elapsed time and ETA on the progress
// line, generate printing tokens as they come and only valid UTF-8, and a Llama config.json
// with the tokenizer's BOS and EOS ids.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "data/utf8_stream.h"
#include "run_cli.h"
#include "spawn_cli.h"

namespace bb::test {
namespace {

std::string corpus() {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "a small corpus line " + std::to_string(i % 11) + "\n";
  return write_file("usability_corpus.txt", text);
}

const std::string kTiny =
    "model.n_layer=1 model.n_head=2 model.n_embd=32 model.block_size=32 train.micro_batch_size=2 "
    "train.grad_accum_steps=1 train.eval_every=0 train.checkpoint_every=0 sample.max_new_tokens=0 ";

// A byte-level model trained for three steps: its samples are close to random bytes.
std::string tiny_model() {
  static const std::string dir = [] {
    const std::string out = ::testing::TempDir() + "/bb_usability_model";
    std::filesystem::remove_all(out);
    CliResult r = run_cli("train " + kTiny + "train.steps=3 data.path=" + corpus() + " out_dir=" + out);
    EXPECT_EQ(r.code, 0) << r.output;
    return out;
  }();
  return dir;
}

TEST(CliUsability, VersionComesFromTheProject) {
  CliResult r = run_cli("--version");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(^bigbatch [0-9]+\.[0-9]+\.[0-9]+\n$)"))) << r.output;
}

TEST(CliUsability, ParseErrorsExitOneWithASentence) {
  for (const char* args : {"train --no-such-flag", "eval", "generate --model x --prompt a --top-k many", "frobnicate",
                           "train --threads -2"}) {
    CliResult r = run_cli(args);
    EXPECT_EQ(r.code, 1) << args << ": " << r.output;
    EXPECT_EQ(r.output.rfind("bigbatch: ", 0), 0u) << args << ": " << r.output;
    EXPECT_NE(r.output.find("--help"), std::string::npos) << r.output;
  }
  EXPECT_EQ(run_cli("train --help").code, 0);
}

TEST(CliUsability, HelpShowsDefaults) {
  CliResult ev = run_cli("eval --help");
  EXPECT_NE(ev.output.find("--batches INT=16"), std::string::npos) << ev.output;
  EXPECT_NE(ev.output.find("--micro-batch INT=8"), std::string::npos) << ev.output;
  CliResult gen = run_cli("generate --help");
  EXPECT_NE(gen.output.find("--temperature FLOAT=0.8"), std::string::npos) << gen.output;
  EXPECT_NE(gen.output.find("--top-k INT=40"), std::string::npos) << gen.output;
  for (const char* sub : {"train", "eval", "generate", "verify", "plan"}) {
    CliResult r = run_cli(std::string(sub) + " --help");
    EXPECT_NE(r.output.find("--threads"), std::string::npos) << sub;
    EXPECT_NE(r.output.find("OMP_NUM_THREADS"), std::string::npos) << sub;
  }
}

TEST(CliUsability, SingularCountsThreadsAndEta) {
  const std::string out = ::testing::TempDir() + "/bb_usability_run";
  std::filesystem::remove_all(out);
  CliResult r = run_cli("train --threads 1 " + kTiny + "train.steps=2 train.log_every=1 data.path=" + corpus() +
                        " out_dir=" + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find(" overrides:"), std::string::npos) << r.output;  // several
  EXPECT_NE(r.output.find("= 1 micro-batch of 2 "), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("1 micro-batches"), std::string::npos) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(step +2/2 .*\| [0-9]+s elapsed, ETA 0s)"))) << r.output;
  const std::string yaml = write_file("usability.yaml", "model:\n  n_layer: 1\n  n_head: 2\n  n_embd: 32\n  block_size: 32\n"
                                      "train:\n  steps: 1\n  eval_every: 0\n  micro_batch_size: 2\n"
                                      "sample:\n  max_new_tokens: 0\ndata:\n  path: " + corpus() + "\n");
  std::filesystem::remove_all(out + "_one");
  CliResult one = run_cli("train " + yaml + " out_dir=" + out + "_one");
  ASSERT_EQ(one.code, 0) << one.output;
  EXPECT_NE(one.output.find(" + 1 override:"), std::string::npos) << one.output;
  CliResult ev = run_cli("eval --model " + tiny_model() + " --data " + corpus() + " --batches 1 --micro-batch 2");
  EXPECT_NE(ev.output.find("over 1 micro-batch of 2"), std::string::npos) << ev.output;
}

TEST(CliUsability, GenerateWritesOnlyValidUtf8) {
  // Near-random bytes: most are not valid UTF-8 on their own.
  CliResult r = run_cli("generate --model " + tiny_model() + " --prompt caf\xC3\xA9 --max-new-tokens 200 --temperature 1.5 --seed 3");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("caf\xC3\xA9", 0), 0u);
  EXPECT_EQ(valid_utf8(r.output), r.output);                   // nothing left to replace
  EXPECT_NE(r.output.find("\xEF\xBF\xBD"), std::string::npos);  // and bad bytes were replaced
}

TEST(CliUsability, GeneratePrintsTokensAsTheyCome) {
  // Output must reach the file while generation still runs, not only at exit.
  const std::string log = ::testing::TempDir() + "/bb_generate_stream.log";
  pid_t pid = spawn_cli("generate --model " + tiny_model() + " --prompt abc --max-new-tokens 1000000 --top-k 8 --seed 5",
                        log);
  std::string text;
  ChildExit e;
  bool done = false;
  for (int i = 0; i < 600 && text.size() < 64 && !(done = exited_within(pid, 0.05, &e)); ++i) text = read_file(log);
  if (!done) {
    kill(pid, SIGKILL);
    wait_child(pid);
  }
  EXPECT_FALSE(done) << "generation ended (EOS?) before the check: " << text;
  EXPECT_GE(text.size(), 64u) << text;
  EXPECT_EQ(text.rfind("abc", 0), 0u) << text;
}

TEST(CliUsability, LlamaConfigNamesBosAndEos) {
  const std::string out = ::testing::TempDir() + "/bb_usability_llama";
  std::filesystem::remove_all(out);
  CliResult r = run_cli("train model.type=llama " + kTiny + "train.steps=1 data.path=" + corpus() + " out_dir=" + out);
  ASSERT_EQ(r.code, 0) << r.output;
  auto cfg = nlohmann::json::parse(read_file(out + "/config.json"));
  EXPECT_EQ(cfg.value("eos_token_id", -1), 256) << cfg.dump();  // the byte tokenizer's end of document
  EXPECT_EQ(cfg.value("bos_token_id", -1), 256) << cfg.dump();  // which also starts one (no BOS of its own)
}

}  // namespace
}  // namespace bb::test
