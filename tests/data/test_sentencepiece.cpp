// SentencePiece through libsentencepiece: a small model is trained at test time with Debian's
// spm_train (Llama's settings: BPE, byte fallback, no normalisation) on a fortunes file, then
// loaded directly and from a model folder. scripts/setup.sh installs spm_train.
#include <gtest/gtest.h>

#include "core/error.h"
#include "data/sentencepiece_proto.h"
#include "data/sentencepiece_tokenizer.h"
#include "data/tokenizer_files.h"
#include "text_files.h"

namespace bb {
namespace {

class SentencePiece : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = test::make_temp_dir("spm");
    const auto r = test::run_command(
        "spm_train --input=" + test::kFortunes + "/wisdom --model_prefix=" + dir_ +
        "/tokenizer --vocab_size=500 --model_type=bpe --character_coverage=1.0 --byte_fallback=true"
        " --normalization_rule_name=identity --remove_extra_whitespaces=false --pad_id=3"
        " --minloglevel=2 >/dev/null 2>&1");
    trained_ = r.code == 0;
  }
  void SetUp() override {
    ASSERT_TRUE(trained_) << "spm_train failed or is missing (scripts/setup.sh installs sentencepiece)";
  }
  static std::string dir_;
  static bool trained_;
};
std::string SentencePiece::dir_;
bool SentencePiece::trained_ = false;

TEST_F(SentencePiece, RoundTripsText) {
  SentencePieceTokenizer tok(dir_ + "/tokenizer.model");
  EXPECT_EQ(tok.vocab_size(), 500);
  EXPECT_EQ(tok.name(), "sentencepiece");
  // the training text, and text it never saw (other scripts go through byte fallback)
  for (const std::string& text : {test::read_text(test::kFortunes + "/wisdom"),
                                  test::read_text(test::kTokenizerTests + "/unicode_sample.txt")}) {
    ASSERT_FALSE(text.empty());
    const auto ids = tok.encode(text);
    EXPECT_LT(ids.size(), text.size());
    for (int64_t id : ids) ASSERT_TRUE(id >= 0 && id < tok.vocab_size()) << id;
    EXPECT_EQ(tok.decode(ids), text);
  }
  EXPECT_EQ(tok.decode({tok.vocab_size(), -1}), "");  // ids past the vocabulary decode to nothing
}

TEST_F(SentencePiece, SpecialIdsFromTheModelAndTheFolder) {
  SentencePieceTokenizer tok(dir_ + "/tokenizer.model");
  EXPECT_EQ(tok.bos_id(), 1);  // spm_train's defaults: unk 0, bos 1, eos 2; pad as trained
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.pad_id(), 3);
  EXPECT_EQ(tok.token_id("</s>"), 2);
  EXPECT_EQ(tok.token_id("no such piece"), -1);

  const std::string folder = test::make_temp_dir("spm_folder");
  std::filesystem::copy_file(dir_ + "/tokenizer.model", folder + "/tokenizer.model");
  auto loaded = make_tokenizer(folder);
  EXPECT_EQ(loaded->name(), "sentencepiece");
  EXPECT_EQ(loaded->encode("A stitch in time"), tok.encode("A stitch in time"));
  // config.json ids give way to the token strings of tokenizer_config.json
  test::write_text(folder + "/config.json", R"({"bos_token_id": 1, "eos_token_id": 0, "pad_token_id": null})");
  test::write_text(folder + "/tokenizer_config.json", R"({"eos_token": "</s>", "pad_token": "<unk>"})");
  loaded = load_tokenizer(folder);
  EXPECT_EQ(loaded->bos_id(), 1);
  EXPECT_EQ(loaded->eos_id(), 2);
  EXPECT_EQ(loaded->pad_id(), 0);
}

TEST(SentencePieceFiles, MissingOrBrokenModel) {
  const std::string dir = test::make_temp_dir("spm_bad");
  const std::string path = dir + "/tokenizer.model";
  try {
    SentencePieceTokenizer tok(path);
    ADD_FAILURE() << "no FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  test::write_text(path, "this is not a protobuf");
  try {
    load_tokenizer(dir);
    ADD_FAILURE() << "no FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not a SentencePiece model"), std::string::npos) << e.what();
  }
}

// A GGUF "llama" tokenizer carries the pieces, scores and types: a model rebuilt from them
// (data/sentencepiece_proto.h) encodes as the trained one, byte fallback included.
TEST_F(SentencePiece, AModelRebuiltFromItsPiecesEncodesTheSame) {
  SentencePieceTokenizer tok(dir_ + "/tokenizer.model");
  const SentencePieceVocab v = tok.vocab();
  ASSERT_EQ(v.pieces.size(), 500u);
  EXPECT_EQ(v.pieces[0].type, 2);  // <unk>
  EXPECT_EQ(v.pieces[1].type, 3);  // <s>
  EXPECT_EQ(v.pieces[3].type, 3);  // the pad piece
  EXPECT_EQ(v.pieces[4].text, "<0x00>");
  EXPECT_EQ(v.pieces[4].type, 6);
  EXPECT_TRUE(v.byte_fallback);
  EXPECT_TRUE(v.add_dummy_prefix);
  EXPECT_EQ(v.unk, 0);
  EXPECT_EQ(v.pad, 3);
  auto rebuilt = SentencePieceTokenizer::from_proto(sentencepiece_model_proto(v), "rebuilt");
  for (const std::string& text : {test::read_text(test::kFortunes + "/wisdom"),
                                  test::read_text(test::kTokenizerTests + "/unicode_sample.txt"),
                                  std::string("  two leading spaces, </s> a control piece, and\ttabs")})
    EXPECT_EQ(rebuilt->encode(text), tok.encode(text));
  EXPECT_EQ(rebuilt->pad_id(), 3);
  EXPECT_THROW(read_sentencepiece_vocab(std::string("\x0a\xff\xff\xff", 4), "garbage"), FormatError);
  EXPECT_THROW(SentencePieceTokenizer::from_proto("not a model", "garbage"), FormatError);
}

}  // namespace
}  // namespace bb
