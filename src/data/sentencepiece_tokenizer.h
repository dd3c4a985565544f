// SentencePiece tokenizer (Llama's tokenizer.model), through Debian's libsentencepiece. The
// library is hidden behind a pointer so that only this file's .cpp includes its headers.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/sentencepiece_proto.h"
#include "data/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
namespace util {
class Status;
}
}

namespace bb {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // Loads a tokenizer.model; throws FormatError naming the path when it is missing or does
  // not parse. BOS/EOS/pad ids start as the model's own.
  explicit SentencePieceTokenizer(const std::string& path);
  // A model given as a serialized ModelProto (data/sentencepiece_proto.h); `source` names it
  // in errors (a GGUF file).
  static std::unique_ptr<SentencePieceTokenizer> from_proto(const std::string& serialized, const std::string& source);
  ~SentencePieceTokenizer() override;

  std::vector<int64_t> encode(std::string_view text) const override;
  std::vector<int64_t> encode_with_starts(std::string_view text, std::vector<size_t>& starts) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t vocab_size() const override { return vocab_size_; }
  std::string name() const override { return "sentencepiece"; }

  // The id of a piece ("</s>"), or -1 when the model has none.
  int64_t token_id(const std::string& piece) const;
  // The text of an id's piece ("</s>"); empty past the vocabulary.
  std::string token_text(int64_t id) const;
  // The model's pieces, scores, types and settings (data/sentencepiece_proto.h): what a GGUF
  // "llama" tokenizer carries.
  SentencePieceVocab vocab() const;

 private:
  SentencePieceTokenizer() = default;
  void load(const std::string& source, const std::function<sentencepiece::util::Status()>& read);
  std::string path_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  int64_t vocab_size_ = 0;
  std::vector<std::pair<std::string, int64_t>> control_;  // control pieces, longest first

  // Appends the ids of text that holds no control piece, and each one's first byte (plus
  // offset) to starts when it is given.
  void encode_plain(std::string_view text, std::vector<int64_t>& out, size_t offset, std::vector<size_t>* starts) const;
  void encode_split(std::string_view text, std::vector<int64_t>& out, std::vector<size_t>* starts) const;
};

}  // namespace bb
