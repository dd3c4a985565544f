// SentencePiece-style BPE as tokenizer.json writes it (Llama 2's, Mistral's, TinyLlama's,
// Gemma's): the vocabulary is text with "▁" for each space, the text's spaces become "▁" (and
// one "▁" goes before it, as the normalizer or the Metaspace pre-tokenizer says), symbols
// start as characters and merge by rank, and a character without a token becomes the <0xNN>
// tokens of its bytes (byte_fallback) or <unk>. Added tokens ("<s>") are matched verbatim
// first; the text between them is normalised run by run, as the tokenizers library does.
// Files are read by data/tokenizer_files.h into a MetaspaceSpec.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/added_tokens.h"
#include "data/string_map.h"
#include "data/tokenizer.h"

namespace bb {

struct MetaspaceSpec {
  std::string source;  // the file it came from, for error messages
  std::vector<std::pair<std::string, int64_t>> vocab;       // as the file writes them ("▁the")
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  std::vector<std::pair<std::string, int64_t>> added;       // literal text -> id
  // Where "▁" goes before a run of plain text: never; always (a Prepend normalizer); unless the
  // run starts with one already (Metaspace, prepend_scheme "always"); that, and only for the
  // run at the very start of the text (prepend_scheme "first").
  enum class Prepend : uint8_t { never, always, if_missing, first_if_missing } prepend = Prepend::never;
  bool split = false;  // Metaspace split: merges stay within pieces that start at each "▁"
  bool byte_fallback = false;
  std::string unk;  // unk_token; empty: a character without a token is left out
  bool fuse_unk = false;
};

class MetaspaceBpeTokenizer final : public Tokenizer {
 public:
  // Throws FormatError naming spec.source for a merge naming an unknown token, a byte without
  // its <0xNN> token under byte_fallback, or an unk_token that is not in the vocabulary.
  explicit MetaspaceBpeTokenizer(const MetaspaceSpec& spec);
  std::vector<int64_t> encode(std::string_view text) const override;
  std::vector<int64_t> encode_with_starts(std::string_view text, std::vector<size_t>& starts) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(text_.size()); }
  std::string name() const override { return "sentencepiece-bpe"; }
  int64_t token_id(std::string_view token) const;  // a vocabulary token as the file writes it, or -1
  // What an id decodes to ("<s>", " the"); empty past the vocabulary.
  std::string token_text(int64_t id) const {
    return id >= 0 && id < vocab_size() ? text_[static_cast<size_t>(id)] : std::string();
  }

 private:
  struct Merge {
    int32_t rank, merged;
  };
  void encode_run(std::string_view run, size_t offset, bool at_start, std::vector<int64_t>& ids,
                  std::vector<size_t>& starts) const;
  void encode_piece(std::string_view piece, const std::vector<size_t>& origin, size_t from,
                    std::vector<int64_t>& ids, std::vector<size_t>& starts) const;

  std::vector<std::string> text_;  // id -> the bytes it decodes to
  StringMap<int32_t> ids_;  // as written -> id
  std::unordered_map<uint64_t, Merge> merges_;  // (left << 32 | right) -> merge
  int32_t byte_ids_[256];                      // <0xNN> tokens; -1 without byte_fallback
  int32_t unk_ = -1;
  AddedTokens added_;
  MetaspaceSpec::Prepend prepend_;
  bool split_, fuse_unk_;
};

}  // namespace bb
