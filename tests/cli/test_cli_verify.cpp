// `bigbatch verify` in both directions: it passes where accumulation is right (GPT-2, Llama,
// LoRA, a model.init folder with Hub dropout, documents and instruction data of very different
// lengths, bf16) and fails on the same data when accumulated as the mean of micro-batch means.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "run_cli.h"

namespace bb::test {
namespace {

namespace fs = std::filesystem;

// Documents of 1 to about 60 bytes: micro-batches then hold very different token counts.
std::string uneven_documents() {
  std::string text;
  for (int i = 0; i < 200; ++i) {
    text += std::string(1 + (i * 37) % 60, char('a' + i % 26)) + " end\n%\n";
  }
  return write_file("verify_docs.txt", text);
}

// Instruction pairs whose completions range from one word to a paragraph.
std::string uneven_instructions() {
  std::string lines;
  for (int i = 0; i < 64; ++i) {
    std::string completion = "yes";
    for (int w = 0; w < (i * 13) % 25; ++w) completion += " and more words";
    lines += nlohmann::json{{"prompt", "question " + std::to_string(i) + "?"}, {"completion", completion}}.dump() + "\n";
  }
  return write_file("verify_instruct.jsonl", lines);
}

std::string tiny(const std::string& data, const std::string& format) {
  return "model.n_layer=1 model.n_head=2 model.n_embd=32 model.block_size=64 train.micro_batch_size=2 "
         "train.grad_accum_steps=4 data.path=" + data + " data.format=" + format +
         (format == "instruct" ? " data.too_long=truncate" : "") +
         " out_dir=" + ::testing::TempDir() + "/bb_verify_out";
}

void expect_pass(const std::string& args) {
  CliResult r = run_cli("verify " + args);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("PASS"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("gradients, per tensor"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("update of one SGD step"), std::string::npos) << r.output;
}

void expect_fail(const std::string& args) {
  CliResult r = run_cli("verify " + args);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("FAIL"), std::string::npos) << r.output;
}

TEST(CliVerify, Gpt2DocumentsPassAndMeanOfMeansFails) {
  const std::string args = tiny(uneven_documents(), "documents");
  expect_pass(args);
  expect_fail(args + " --mean-of-means");
}

TEST(CliVerify, InstructionDataPassesAndMeanOfMeansFails) {
  const std::string args = tiny(uneven_instructions(), "instruct");
  expect_pass(args);
  expect_fail(args + " --mean-of-means");
}

// Packed rows (several examples a row, attention within each): K micro-batches of B rows
// still give the gradient of one batch of K*B rows, and the mean of means still fails.
TEST(CliVerify, PackedRowsPass) {
  for (const std::string model : {"", " model.type=llama model.n_kv_head=1"}) {
    expect_pass(tiny(uneven_instructions(), "instruct") + model + " data.packing=true");
    expect_pass(tiny(uneven_documents(), "documents") + model + " data.packing=true");
  }
  expect_fail(tiny(uneven_instructions(), "instruct") + " data.packing=true --mean-of-means");
}

TEST(CliVerify, LlamaPasses) {
  expect_pass(tiny(uneven_documents(), "documents") + " model.type=llama model.n_kv_head=1");
  expect_fail(tiny(uneven_documents(), "documents") + " model.type=llama model.n_kv_head=1 --mean-of-means");
}

TEST(CliVerify, Bf16PassesAtItsOwnStatedTolerance) {
  CliResult r = run_cli("verify " + tiny(uneven_documents(), "documents") + " train.precision=bf16");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("tolerance 3.0e-02 for bf16"), std::string::npos) << r.output;
  expect_fail(tiny(uneven_documents(), "documents") + " train.precision=bf16 --mean-of-means");
}

// A model.init folder as the Hub ships GPT-2: resid_pdrop 0.1 in config.json. Dropout must be
// off for the check there too, and under LoRA with lora.dropout.
TEST(CliVerify, ModelInitWithHubDropoutAndLoraPass) {
  const std::string base = ::testing::TempDir() + "/bb_verify_base";
  fs::remove_all(base);
  CliResult t = run_cli("train " + tiny(uneven_documents(), "documents") +
                        " train.steps=2 train.checkpoint_every=0 train.eval_every=0 sample.max_new_tokens=0 out_dir=" + base);
  ASSERT_EQ(t.code, 0) << t.output;
  auto cfg = nlohmann::json::parse(read_file(base + "/config.json"));
  cfg["resid_pdrop"] = 0.1;
  cfg["embd_pdrop"] = 0.1;
  cfg["attn_pdrop"] = 0.1;
  std::ofstream(base + "/config.json") << cfg.dump(2);
  const std::string data = " data.path=" + uneven_documents() + " data.format=documents train.micro_batch_size=2 "
                           "train.grad_accum_steps=4 model.block_size=64 out_dir=" + ::testing::TempDir() + "/bb_verify_out";
  expect_pass("model.init=" + base + data);
  expect_pass("model.init=" + base + data + " lora.r=4 lora.alpha=8 lora.dropout=0.2");
  expect_fail("model.init=" + base + data + " lora.r=4 lora.alpha=8 lora.dropout=0.2 --mean-of-means");
}

TEST(CliVerify, ANegativeOrNanToleranceIsRefused) {
  for (const char* t : {"-1", "nan", "inf"}) {
    CliResult r = run_cli("verify " + tiny(uneven_documents(), "documents") + " --tolerance " + t);
    EXPECT_EQ(r.code, 1) << t << ": " << r.output;
    EXPECT_NE(r.output.find("--tolerance must be a finite number"), std::string::npos) << r.output;
  }
}

TEST(CliVerify, AnAbsurdMemorySizeIsRefused) {
  for (const char* m : {"1e18GiB", "nan", "0"}) {
    CliResult r = run_cli(std::string("plan ") + tiny(uneven_documents(), "documents") + " --memory " + m);
    EXPECT_EQ(r.code, 1) << m << ": " << r.output;
    EXPECT_NE(r.output.find("memory size"), std::string::npos) << m << ": " << r.output;
  }
}

TEST(CliVerify, AWindowWithoutTargetTokensIsRefused) {
  // Every completion starts beyond block_size: nothing would be compared.
  std::string lines;
  for (int i = 0; i < 16; ++i)
    lines += nlohmann::json{{"prompt", std::string(80, 'p')}, {"completion", "answer"}}.dump() + "\n";
  const std::string data = write_file("verify_no_targets.jsonl", lines);
  CliResult r = run_cli("verify " + tiny(data, "instruct"));
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("no target tokens"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("PASS"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace bb::test
