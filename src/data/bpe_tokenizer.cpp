// GPT-2's byte-level BPE, as its encoder.py does it: per pre-tokenised piece, merge the
// adjacent pair of lowest rank (all its occurrences, left to right) until none is left.
#include "data/bpe_tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <climits>

#include "core/error.h"
#include "data/byte_level.h"

namespace bb {
namespace {

constexpr size_t kMaxCachedPieces = 1 << 18;  // cleared when full: bounds memory on odd text
// Token ids index a table: a vocabulary's ids are dense, so an id more than this far past
// the number of tokens is a corrupt file, refused before the table is sized for it.
constexpr int64_t kMaxIdGap = 1 << 16;

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

}  // namespace

BpeTokenizer::BpeTokenizer(const BpeSpec& spec)
    : add_prefix_space_(spec.add_prefix_space), split_digits_(spec.split_digits), ignore_merges_(spec.ignore_merges) {
  StringMap by_chars;  // vocabulary strings as the files write them -> id
  const int64_t max_id = static_cast<int64_t>(spec.vocab.size() + spec.added.size()) + kMaxIdGap;
  for (const auto& [chars, id] : spec.vocab) {
    if (id < 0 || id >= max_id)
      throw FormatError(fmt::format("{}: token '{}' has id {}, outside the {} ids of the vocabulary and added tokens",
                                    spec.source, chars, id, max_id));
    by_chars.emplace(chars, static_cast<int32_t>(id));
    set_token(id, byte_level::chars_to_bytes(chars));
  }
  for (int b = 0; b < 256; ++b) {
    auto it = by_chars.find(byte_level::byte_to_char(static_cast<unsigned char>(b)));
    if (it == by_chars.end())
      throw FormatError(fmt::format("{}: the vocabulary has no token for byte 0x{:02x}", spec.source, b));
    byte_ids_[b] = it->second;
  }
  merges_.reserve(spec.merges.size());
  for (size_t rank = 0; rank < spec.merges.size(); ++rank) {
    const auto& [left, right] = spec.merges[rank];
    auto l = by_chars.find(left), r = by_chars.find(right), m = by_chars.find(left + right);
    if (l == by_chars.end() || r == by_chars.end() || m == by_chars.end())
      throw FormatError(fmt::format("{}: merge {} '{} {}' names a token that is not in the vocabulary",
                                    spec.source, rank + 1, left, right));
    // a pair listed twice takes its last rank, as in the Python dict GPT-2 builds by zip
    merges_.insert_or_assign(pair_key(l->second, r->second), Merge{static_cast<int32_t>(rank), m->second});
  }
  for (const auto& [text, id] : spec.added) add_token(text, id);
}

void BpeTokenizer::set_token(int64_t id, const std::string& bytes) {
  if (static_cast<size_t>(id) >= tokens_.size()) tokens_.resize(id + 1);
  tokens_[id] = bytes;
  ids_.emplace(bytes, static_cast<int32_t>(id));
}

void BpeTokenizer::add_token(const std::string& text, int64_t id) {
  if (text.empty() || id < 0 || id > static_cast<int64_t>(tokens_.size()) + kMaxIdGap)
    throw FormatError(fmt::format("added token '{}' with id {} is not valid (the vocabulary has {} tokens)", text, id,
                                  tokens_.size()));
  if (static_cast<size_t>(id) >= tokens_.size() || tokens_[id] != text) set_token(id, text);
  added_.add(text, static_cast<int32_t>(id));
}

int64_t BpeTokenizer::token_id(std::string_view text) const {
  auto it = ids_.find(text);
  return it == ids_.end() ? -1 : it->second;
}

std::vector<int64_t> BpeTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids;
  ids.reserve(text.size() / 3);
  added_.split(text, [&](std::string_view plain, size_t) { encode_plain(plain, ids); },
               [&](int32_t id, size_t) { ids.push_back(id); });
  return ids;
}

// Byte-level tokens' bytes concatenate to the text, less the space add_prefix_space puts
// before each run of plain text.
std::vector<int64_t> BpeTokenizer::encode_with_starts(std::string_view text, std::vector<size_t>& starts) const {
  std::vector<int64_t> ids = encode(text);
  starts.resize(ids.size());
  size_t at = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    starts[i] = std::min(at, text.size());
    const std::string& bytes = tokens_[static_cast<size_t>(ids[i])];
    // a leading space the text does not have was added by add_prefix_space
    const bool added_space = add_prefix_space_ && !bytes.empty() && bytes[0] == ' ' &&
                             (at >= text.size() || text[at] != ' ');
    at += bytes.size() - (added_space ? 1 : 0);
  }
  return ids;
}

void BpeTokenizer::encode_plain(std::string_view text, std::vector<int64_t>& ids) const {
  if (text.empty()) return;
  std::string prefixed;
  if (add_prefix_space_ && text[0] != ' ') {
    prefixed.append(1, ' ').append(text);
    text = prefixed;
  }
  const auto piece = [&](std::string_view p) { encode_piece(p, ids); };
  if (split_digits_ > 0) byte_level::pretokenize_llama3(text, split_digits_, piece);
  else byte_level::pretokenize(text, piece);
}

void BpeTokenizer::encode_piece(std::string_view piece, std::vector<int64_t>& ids) const {
  if (piece.size() == 1) {
    ids.push_back(byte_ids_[static_cast<unsigned char>(piece[0])]);
    return;
  }
  if (ignore_merges_) {
    if (const auto it = ids_.find(piece); it != ids_.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(piece);
    if (it != cache_.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> merged = merge_piece(piece);
  ids.insert(ids.end(), merged.begin(), merged.end());
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() >= kMaxCachedPieces) cache_.clear();
  cache_.emplace(std::string(piece), std::move(merged));
}

std::vector<int32_t> BpeTokenizer::merge_piece(std::string_view piece) const {
  std::vector<int32_t> word(piece.size());
  for (size_t i = 0; i < piece.size(); ++i) word[i] = byte_ids_[static_cast<unsigned char>(piece[i])];
  while (word.size() > 1) {
    int32_t best_rank = INT32_MAX, left = 0, right = 0, merged = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = merges_.find(pair_key(word[i], word[i + 1]));
      if (it != merges_.end() && it->second.rank < best_rank) {
        best_rank = it->second.rank;
        left = word[i], right = word[i + 1], merged = it->second.merged;
      }
    }
    if (best_rank == INT32_MAX) break;
    size_t out = 0;
    for (size_t i = 0; i < word.size(); ++out) {
      if (i + 1 < word.size() && word[i] == left && word[i + 1] == right) {
        word[out] = merged;
        i += 2;
      } else {
        word[out] = word[i++];
      }
    }
    word.resize(out);
  }
  return word;
}

std::string BpeTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string text;
  for (int64_t id : ids)  // ids past the vocabulary (a padded embedding) decode to nothing
    if (id >= 0 && id < vocab_size()) text += tokens_[id];
  return text;
}

}  // namespace bb
