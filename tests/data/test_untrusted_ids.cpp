// Token ids and paths from outside: an id far past the vocabulary is one FormatError before
// any table is sized for it (it used to end in std::bad_alloc), special ids must lie inside
// the vocabulary, and a FIFO or folder given as a data file is refused rather than read.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "../io/error_words.h"
#include "data/bpe_tokenizer.h"
#include "data/byte_level.h"
#include "data/instruct_dataset.h"
#include "data/sentencepiece_tokenizer.h"
#include "data/tokenizer_files.h"
#include "text_files.h"

namespace bb::test {
namespace {

using nlohmann::json;

json byte_vocab() {
  json v = json::object();
  for (int b = 0; b < 256; ++b) v[byte_level::byte_to_char(static_cast<unsigned char>(b))] = b;
  return v;
}

TEST(UntrustedIds, VocabIdFarPastTheVocabularyIsRefused) {
  json v = byte_vocab();
  v["big"] = 1000000000;
  expect_error_naming([&] { BpeTokenizer tok(parse_vocab_merges(v.dump(), "", "vocab.json", "merges.txt")); },
                      {"vocab.json", "'big'", "1000000000"});
  v["big"] = 256;  // dense ids are fine
  BpeTokenizer tok(parse_vocab_merges(v.dump(), "", "vocab.json", "merges.txt"));
  EXPECT_EQ(tok.vocab_size(), 257);
}

TEST(UntrustedIds, AddedTokenIdFarPastTheVocabularyIsRefused) {
  const json j = {{"pre_tokenizer", {{"type", "ByteLevel"}}},
                  {"model", {{"type", "BPE"}, {"vocab", byte_vocab()}, {"merges", json::array()}}},
                  {"added_tokens", {{{"id", 1000000000}, {"content", "<|endoftext|>"}}}}};
  expect_error_naming([&] { BpeTokenizer tok(parse_tokenizer_json(j.dump(), "tokenizer.json")); },
                      {"<|endoftext|>", "1000000000"});
}

TEST(UntrustedIds, SpecialIdOutsideTheVocabularyIsRefused) {
  const std::string dir = make_temp_dir("special_ids");
  write_text(dir + "/vocab.json", byte_vocab().dump());
  write_text(dir + "/merges.txt", "#version: 0.2\n");
  write_text(dir + "/config.json", R"({"eos_token_id": 1000000000})");
  expect_error_naming([&] { load_tokenizer(dir); }, {dir, "eos_token_id", "1000000000"});
  write_text(dir + "/config.json", R"({"eos_token_id": 255, "bos_token_id": -5})");
  expect_error_naming([&] { load_tokenizer(dir); }, {dir, "bos_token_id", "-5"});
  write_text(dir + "/config.json", R"({"eos_token_id": 255})");
  EXPECT_EQ(load_tokenizer(dir)->eos_id(), 255);
}

TEST(UntrustedIds, FifoOrFolderAsDataFileIsRefused) {
  const std::string dir = make_temp_dir("fifo_data");
  const std::string fifo = dir + "/train.jsonl";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  TextDataOptions o;
  o.path = fifo;
  o.block_size = 16;
  ByteTokenizer tok;
  expect_error_naming([&] { load_instruct_corpus(o, tok); }, {fifo, "regular file"});  // used to block
  const std::string tok_dir = make_temp_dir("fifo_tok");
  ASSERT_EQ(mkfifo((tok_dir + "/vocab.json").c_str(), 0600), 0);
  write_text(tok_dir + "/merges.txt", "#version: 0.2\n");
  expect_error_naming([&] { load_tokenizer(tok_dir); }, {tok_dir + "/vocab.json", "regular file"});
}

// Found by fuzz_sentencepiece: libsentencepiece throws its own exception type for a model
// with an empty piece, which used to escape as something other than a FormatError.
TEST(UntrustedIds, SentencePieceModelWithAnEmptyPieceIsAFormatError) {
  const std::string path = std::string(BIGBATCH_FIXTURES) + "/tokenizers/empty_piece.model";
  expect_error_naming([&] { SentencePieceTokenizer tok(path); }, {path, "not a SentencePiece model"});
}

}  // namespace
}  // namespace bb::test
