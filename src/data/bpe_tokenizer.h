// Byte-level BPE tokenizers (GPT-2's, Llama 3's): text is split by the pre-tokenisation pattern, each
// piece's bytes are merged pairwise by rank, and added tokens (<|endoftext|>) are matched
// verbatim first. Files are read by data/tokenizer_files.h into a BpeSpec.
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/added_tokens.h"
#include "data/string_map.h"
#include "data/tokenizer.h"

namespace bb {

struct BpeSpec {
  std::string source;  // the file(s) it came from, for error messages
  // tokens and merges in GPT-2's printable byte mapping (a space is "Ġ"), as the files hold them
  std::vector<std::pair<std::string, int64_t>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  std::vector<std::pair<std::string, int64_t>> added;       // literal text -> id
  bool add_prefix_space = false;  // a space is put before text that does not start with one
  // The pre-tokenisation pattern: 0 GPT-2's; 3 Llama 3's (digits by threes); 1 Qwen 2's (one
  // digit a piece). See byte_level.h.
  int split_digits = 0;
  bool ignore_merges = false;  // a piece that is a token is that token (Llama 3), not merged
};

class BpeTokenizer final : public Tokenizer {
 public:
  // Throws FormatError naming spec.source when a merge names a token the vocabulary lacks,
  // or a byte has no token.
  explicit BpeTokenizer(const BpeSpec& spec);

  std::vector<int64_t> encode(std::string_view text) const override;
  std::vector<int64_t> encode_with_starts(std::string_view text, std::vector<size_t>& starts) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(tokens_.size()); }
  std::string name() const override { return "gpt2-bpe"; }

  // The id of a vocabulary or added token written as text ("<|endoftext|>"), or -1.
  int64_t token_id(std::string_view text) const;
  // The bytes an id stands for ("<|endoftext|>"); empty past the vocabulary.
  std::string token_text(int64_t id) const {
    return id >= 0 && id < vocab_size() ? tokens_[static_cast<size_t>(id)] : std::string();
  }
  // Makes text matched verbatim before pre-tokenisation encode to id.
  void add_token(const std::string& text, int64_t id);

 private:
  struct Merge {
    int32_t rank, merged;
  };
  using StringMap = bb::StringMap<int32_t>;

  void encode_plain(std::string_view text, std::vector<int64_t>& ids) const;
  void encode_piece(std::string_view piece, std::vector<int64_t>& ids) const;
  std::vector<int32_t> merge_piece(std::string_view piece) const;
  void set_token(int64_t id, const std::string& bytes);

  std::vector<std::string> tokens_;  // id -> bytes
  StringMap ids_;                    // bytes -> id
  int32_t byte_ids_[256];
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> merge
  AddedTokens added_;
  bool add_prefix_space_ = false;
  int split_digits_ = 0;
  bool ignore_merges_ = false;

  // Pieces repeat a lot in text; their ids are kept (encode is const and may be called from
  // a loader thread, hence the lock).
  mutable std::mutex cache_mutex_;
  mutable bb::StringMap<std::vector<int32_t>> cache_;
};

}  // namespace bb
