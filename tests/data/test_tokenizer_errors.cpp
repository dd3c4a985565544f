// Tokenizer files that are broken, truncated or incomplete: each gives a FormatError naming
// the file and the field. A tiny hand-made byte-level vocabulary stands in for GPT-2's.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/bpe_tokenizer.h"
#include "data/byte_level.h"
#include "data/metaspace_bpe.h"
#include "data/tokenizer_files.h"
#include "text_files.h"

namespace bb {
namespace {
using nlohmann::json;

// The 256 bytes, then "he", "ll", "hell" by the merges below.
json tiny_vocab() {
  json v = json::object();
  for (int b = 0; b < 256; ++b) v[byte_level::byte_to_char(static_cast<unsigned char>(b))] = b;
  v["he"] = 256, v["ll"] = 257, v["hell"] = 258;
  return v;
}
const char* kTinyMerges = "#version: 0.2\nh e\nl l\nhe ll\n";

template <class F>
void expect_format_error(F&& load, const std::vector<std::string>& parts) {
  try {
    load();
    ADD_FAILURE() << "no FormatError";
  } catch (const FormatError& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

struct Files {
  std::string dir = test::make_temp_dir("tok_errors");
  std::string put(const std::string& name, const std::string& text) const {
    test::write_text(dir + "/" + name, text);
    return dir + "/" + name;
  }
};

TEST(BpeFiles, TinyVocabularyMergesByRank) {
  Files f;
  BpeTokenizer tok(read_vocab_merges(f.put("vocab.json", tiny_vocab().dump()), f.put("merges.txt", kTinyMerges)));
  EXPECT_EQ(tok.encode("hello hell"), (std::vector<int64_t>{258, 'o', ' ', 258}));
  EXPECT_EQ(tok.decode({258, 'o', 999}), "hello");  // ids past the vocabulary decode to nothing
  EXPECT_EQ(tok.eos_id(), -1);
}

TEST(BpeFiles, BrokenVocabJson) {
  Files f;
  const std::string merges = f.put("merges.txt", kTinyMerges), text = tiny_vocab().dump();
  const std::string truncated = f.put("vocab.json", text.substr(0, text.size() / 2));
  expect_format_error([&] { read_vocab_merges(truncated, merges); }, {truncated, "not valid JSON"});
  json bad = tiny_vocab();
  bad["he"] = "x";
  const std::string typed = f.put("typed.json", bad.dump());
  expect_format_error([&] { read_vocab_merges(typed, merges); }, {typed, "'he'", "not an integer"});
  bad = tiny_vocab();
  bad.erase(byte_level::byte_to_char('\n'));
  const std::string holed = f.put("holed.json", bad.dump());
  expect_format_error([&] { (void)BpeTokenizer(read_vocab_merges(holed, merges)); }, {holed, "byte 0x0a"});
  expect_format_error([&] { read_vocab_merges(f.dir + "/absent.json", merges); }, {f.dir + "/absent.json"});
}

TEST(BpeFiles, MalformedMerges) {
  Files f;
  const std::string vocab = f.put("vocab.json", tiny_vocab().dump());
  const std::string three = f.put("three.txt", "#version: 0.2\nh e\nl l x\n");
  expect_format_error([&] { read_vocab_merges(vocab, three); }, {three, "line 3"});
  const std::string unknown = f.put("unknown.txt", "h e\nq zz\n");
  expect_format_error([&] { (void)BpeTokenizer(read_vocab_merges(vocab, unknown)); }, {unknown, "merge 2", "'q zz'"});
}

TEST(BpeFiles, BrokenTokenizerJson) {
  Files f;
  const json good = {{"pre_tokenizer", {{"type", "ByteLevel"}}},
                     {"model", {{"type", "BPE"}, {"vocab", tiny_vocab()}, {"merges", {"h e", "l l", {"he", "ll"}}}}}};
  BpeTokenizer tok(read_tokenizer_json(f.put("good.json", good.dump())));
  EXPECT_EQ(tok.encode("hello"), (std::vector<int64_t>{258, 'o'}));

  const std::string truncated = f.put("truncated.json", good.dump().substr(0, 300));
  expect_format_error([&] { read_tokenizer_json(truncated); }, {truncated, "not valid JSON"});
  const auto broken = [&](const char* name, auto&& edit, std::vector<std::string> parts) {
    json j = good;
    edit(j);
    const std::string path = f.put(name, j.dump());
    parts.push_back(path);
    expect_format_error([&] { (void)BpeTokenizer(read_tokenizer_json(path)); }, parts);
  };
  broken("no_merges.json", [](json& j) { j["model"].erase("merges"); }, {"model.merges"});
  broken("no_model.json", [](json& j) { j.erase("model"); }, {"model"});
  broken("wordpiece.json", [](json& j) { j["model"]["type"] = "WordPiece"; }, {"model.type", "WordPiece"});
  broken("bad_merge.json", [](json& j) { j["model"]["merges"][1] = 5; }, {"model.merges[1]"});
  broken("metaspace.json", [](json& j) { j["pre_tokenizer"]["type"] = "Metaspace"; }, {"pre_tokenizer", "Metaspace"});
  broken("bad_added.json", [](json& j) { j["added_tokens"] = {{{"content", "<s>"}}}; }, {"added_tokens[0]"});
  broken("bad_vocab.json", [](json& j) { j["model"]["vocab"] = json::array(); }, {"model.vocab"});
  broken("null_pre.json", [](json& j) { j["pre_tokenizer"] = nullptr; }, {"pre_tokenizer type null"});
  broken("typed.json", [](json& j) { j["pre_tokenizer"]["use_regex"] = "yes"; }, {"does not hold a tokenizer"});
}

TEST(TokenizerFolder, EmptyOrBrokenFolder) {
  Files f;
  expect_format_error([&] { load_tokenizer(f.dir); }, {f.dir, "holds no tokenizer"});
  f.put("vocab.json", tiny_vocab().dump());
  f.put("merges.txt", kTinyMerges);
  const std::string config = f.put("config.json", "{\"eos_token_id\": ");
  expect_format_error([&] { load_tokenizer(f.dir); }, {config, "not valid JSON"});
  f.put("config.json", "[1, 2]");
  expect_format_error([&] { load_tokenizer(f.dir); }, {config, "not hold a JSON object"});
  f.put("config.json", R"({"eos_token_id": 258, "pad_token_id": [257]})");
  const auto tok = load_tokenizer(f.dir);
  EXPECT_EQ(tok->eos_id(), 258);
  EXPECT_EQ(tok->pad_id(), 257);
  EXPECT_EQ(tok->bos_id(), -1);
}

// SentencePiece-style tokenizer.json files whose parts do not fit together.
TEST(TokenizerErrors, SentencePieceStyleFilesThatDoNotFitTogether) {
  const std::string sp = "\u2581";
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"a", 2}, {sp, 3}, {sp + "a", 4}};
  auto file = [&](json model_changes) {
    json model = {{"type", "BPE"}, {"unk_token", "<unk>"}, {"byte_fallback", false}, {"vocab", vocab},
                  {"merges", json::array({sp + " a"})}};
    if (!model_changes.is_null()) model.update(model_changes);
    return json{{"normalizer", {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", sp}}},
                {"pre_tokenizer", nullptr}, {"model", model}}
        .dump();
  };
  EXPECT_NO_THROW(MetaspaceBpeTokenizer(parse_metaspace_json(file({}), "t.json")));
  expect_format_error([&] { MetaspaceBpeTokenizer(parse_metaspace_json(file({{"byte_fallback", true}}), "t.json")); },
                      {"t.json", "byte_fallback", "<0x00>"});
  expect_format_error([&] { MetaspaceBpeTokenizer(parse_metaspace_json(file({{"unk_token", "<oops>"}}), "t.json")); },
                      {"t.json", "unk_token '<oops>' is not in the vocabulary"});
  expect_format_error([&] { MetaspaceBpeTokenizer(parse_metaspace_json(file({{"merges", {"a b"}}}), "t.json")); },
                      {"t.json", "merge 1 'a b'"});
  expect_format_error([&] { parse_metaspace_json(file({{"dropout", 0.1}}), "t.json"); }, {"t.json", "model.dropout"});
  expect_format_error([&] { parse_metaspace_json("{\"model\": 3", "t.json"); }, {"t.json", "not valid JSON"});
  // a token shaped like a byte token but not one decodes as its text
  vocab["<0xZZ>"] = 5;
  const MetaspaceBpeTokenizer tok(parse_metaspace_json(file({}), "t.json"));
  EXPECT_EQ(tok.decode({5}), "<0xZZ>");
  EXPECT_EQ(tok.decode(tok.encode("a a")), "a a");
}

}  // namespace
}  // namespace bb
