// SentencePiece tokenizer (Llama's tokenizer.model), through Debian's libsentencepiece. The
// library is hidden behind a pointer so that only this file's .cpp includes its headers.
#pragma once
#include <memory>
#include <string>

#include "data/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace bb {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // Loads a tokenizer.model; throws FormatError naming the path when it is missing or does
  // not parse. BOS/EOS/pad ids start as the model's own.
  explicit SentencePieceTokenizer(const std::string& path);
  ~SentencePieceTokenizer() override;

  std::vector<int64_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t vocab_size() const override { return vocab_size_; }
  int64_t eos_id() const override { return special_.eos; }
  int64_t bos_id() const override { return special_.bos; }
  int64_t pad_id() const override { return special_.pad; }
  std::string name() const override { return "sentencepiece"; }

  void set_special_ids(const SpecialIds& ids) { special_ = ids; }
  // The id of a piece ("</s>"), or -1 when the model has none.
  int64_t token_id(const std::string& piece) const;

 private:
  std::string path_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  int64_t vocab_size_ = 0;
  SpecialIds special_;
};

}  // namespace bb
