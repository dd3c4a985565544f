// SentencePiece-style BPE: normalisation with offsets back into the text, byte fallback, and
// the tokenizers library's merge order (a heap of the lowest rank, then the leftmost pair).
#include "data/metaspace_bpe.h"

#include <fmt/format.h>

#include <queue>

#include "core/error.h"

namespace bb {
namespace {

constexpr std::string_view kSpace = "\xe2\x96\x81";  // "▁"
constexpr int64_t kMaxIdGap = 1 << 16;  // ids this far past the vocabulary's size: a corrupt file

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

size_t utf8_length(unsigned char lead) {
  return lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xe ? 3 : (lead >> 3) == 0x1e ? 4 : 1;
}

// What a token decodes to: its bytes for <0xNN>, else its text with "▁" as a space.
std::string decoded(const std::string& token) {
  const auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; };
  if (token.size() == 6 && token.compare(0, 3, "<0x") == 0 && token[5] == '>' && hex(token[3]) >= 0 && hex(token[4]) >= 0)
    return std::string(1, static_cast<char>(hex(token[3]) * 16 + hex(token[4])));
  std::string out;
  for (size_t i = 0; i < token.size();) {
    if (token.compare(i, kSpace.size(), kSpace) == 0) {
      out += ' ';
      i += kSpace.size();
    } else {
      out += token[i++];
    }
  }
  return out;
}

}  // namespace

MetaspaceBpeTokenizer::MetaspaceBpeTokenizer(const MetaspaceSpec& spec)
    : prepend_(spec.prepend), split_(spec.split), fuse_unk_(spec.fuse_unk) {
  const int64_t max_id = static_cast<int64_t>(spec.vocab.size() + spec.added.size()) + kMaxIdGap;
  for (const auto& [token, id] : spec.vocab) {
    if (id < 0 || id >= max_id)
      throw FormatError(fmt::format("{}: token '{}' has id {}, outside the {} ids of the vocabulary and added tokens",
                                    spec.source, token, id, max_id));
    if (static_cast<size_t>(id) >= text_.size()) text_.resize(id + 1);
    text_[id] = decoded(token);
    ids_.emplace(token, static_cast<int32_t>(id));
  }
  for (int b = 0; b < 256; ++b) {
    byte_ids_[b] = -1;
    if (!spec.byte_fallback) continue;
    byte_ids_[b] = static_cast<int32_t>(token_id(fmt::format("<0x{:02X}>", b)));
    if (byte_ids_[b] < 0)
      throw FormatError(fmt::format("{}: model.byte_fallback is set but the vocabulary has no token <0x{:02X}>",
                                    spec.source, b));
  }
  if (!spec.unk.empty() && (unk_ = static_cast<int32_t>(token_id(spec.unk))) < 0)
    throw FormatError(fmt::format("{}: model.unk_token '{}' is not in the vocabulary", spec.source, spec.unk));
  for (size_t rank = 0; rank < spec.merges.size(); ++rank) {
    const auto& [left, right] = spec.merges[rank];
    const int64_t l = token_id(left), r = token_id(right), m = token_id(left + right);
    if (l < 0 || r < 0 || m < 0)
      throw FormatError(fmt::format("{}: merge {} '{} {}' names a token that is not in the vocabulary", spec.source,
                                    rank + 1, left, right));
    merges_.try_emplace(pair_key(int32_t(l), int32_t(r)), Merge{static_cast<int32_t>(rank), static_cast<int32_t>(m)});
  }
  for (const auto& [text, id] : spec.added) {
    if (text.empty() || id < 0 || id >= max_id)
      throw FormatError(fmt::format("{}: added token '{}' with id {} is not valid", spec.source, text, id));
    if (static_cast<size_t>(id) >= text_.size()) text_.resize(id + 1);
    text_[id] = text;
    added_.add(text, static_cast<int32_t>(id));
  }
}

int64_t MetaspaceBpeTokenizer::token_id(std::string_view token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

std::vector<int64_t> MetaspaceBpeTokenizer::encode(std::string_view text) const {
  std::vector<size_t> starts;
  return encode_with_starts(text, starts);
}

std::vector<int64_t> MetaspaceBpeTokenizer::encode_with_starts(std::string_view text, std::vector<size_t>& starts) const {
  std::vector<int64_t> ids;
  starts.clear();
  added_.split(text, [&](std::string_view run, size_t offset) { encode_run(run, offset, offset == 0, ids, starts); },
               [&](int32_t id, size_t offset) {
                 ids.push_back(id);
                 starts.push_back(offset);
               });
  return ids;
}

// One run of plain text: spaces become "▁" (and "▁" goes first where prepend_ says), each
// byte of the result remembering the text's byte it came from; then BPE over the whole run,
// or over each piece that starts at a "▁" when split_.
void MetaspaceBpeTokenizer::encode_run(std::string_view run, size_t offset, bool at_start, std::vector<int64_t>& ids,
                                       std::vector<size_t>& starts) const {
  if (run.empty()) return;
  std::string norm;
  std::vector<size_t> origin;  // origin[i]: the byte of `text` that norm[i] came from
  const bool starts_with_space = run[0] == ' ';
  const bool prepend = prepend_ == MetaspaceSpec::Prepend::always ||
                       (prepend_ == MetaspaceSpec::Prepend::if_missing && !starts_with_space) ||
                       (prepend_ == MetaspaceSpec::Prepend::first_if_missing && at_start && !starts_with_space);
  if (prepend) norm.append(kSpace), origin.insert(origin.end(), kSpace.size(), offset);
  for (size_t i = 0; i < run.size(); ++i) {
    if (run[i] == ' ') {
      norm.append(kSpace);
      origin.insert(origin.end(), kSpace.size(), offset + i);
    } else {
      norm += run[i];
      origin.push_back(offset + i);
    }
  }
  size_t from = 0;
  if (split_)
    for (size_t at = kSpace.size(); at < norm.size(); ++at)
      if (norm.compare(at, kSpace.size(), kSpace) == 0) {
        encode_piece(std::string_view(norm).substr(from, at - from), origin, from, ids, starts);
        from = at;
      }
  encode_piece(std::string_view(norm).substr(from), origin, from, ids, starts);
}

void MetaspaceBpeTokenizer::encode_piece(std::string_view piece, const std::vector<size_t>& origin, size_t from,
                                         std::vector<int64_t>& ids, std::vector<size_t>& starts) const {
  struct Symbol {
    int32_t id;
    int prev, next;
    size_t start;  // in the normalised run
    bool alive;
  };
  std::vector<Symbol> word;
  auto push = [&](int32_t id, size_t start) {
    const int n = static_cast<int>(word.size());
    word.push_back({id, n - 1, n + 1, start, true});
  };
  for (size_t i = 0; i < piece.size();) {
    const size_t len = std::min(utf8_length(static_cast<unsigned char>(piece[i])), piece.size() - i);
    const int64_t id = token_id(piece.substr(i, len));
    if (id >= 0) {
      push(static_cast<int32_t>(id), from + i);
    } else if (byte_ids_[0] >= 0) {
      for (size_t b = 0; b < len; ++b) push(byte_ids_[static_cast<unsigned char>(piece[i + b])], from + i + b);
    } else if (unk_ >= 0 && !(fuse_unk_ && !word.empty() && word.back().id == unk_)) {
      push(unk_, from + i);
    }
    i += len;
  }
  if (word.empty()) return;
  word.back().next = -1;
  // The lowest rank first, then the leftmost: the tokenizers library's order.
  struct Candidate {
    int32_t rank;
    int pos;
    int32_t merged;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto consider = [&](int pos) {
    if (pos < 0 || word[pos].next < 0) return;
    auto it = merges_.find(pair_key(word[pos].id, word[word[pos].next].id));
    if (it != merges_.end()) heap.push({it->second.rank, pos, it->second.merged});
  };
  for (int i = 0; i + 1 < static_cast<int>(word.size()); ++i) consider(i);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    Symbol& s = word[c.pos];
    if (!s.alive || s.next < 0) continue;
    auto it = merges_.find(pair_key(s.id, word[s.next].id));
    if (it == merges_.end() || it->second.merged != c.merged) continue;  // the pair changed since
    Symbol& right = word[s.next];
    right.alive = false;
    s.id = c.merged;
    s.next = right.next;
    if (s.next >= 0) word[s.next].prev = c.pos;
    consider(s.prev);
    consider(c.pos);
  }
  for (const Symbol& s : word)
    if (s.alive) {
      ids.push_back(s.id);
      starts.push_back(origin[s.start]);
    }
}

std::string MetaspaceBpeTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string text;
  for (int64_t id : ids)  // ids past the vocabulary (a padded embedding) decode to nothing
    if (id >= 0 && id < vocab_size()) text += text_[static_cast<size_t>(id)];
  // the "▁" put before the text is not the text's (the decoder's Strip; a Metaspace decoder
  // drops the first space even where none was put, as Hugging Face's does)
  if (prepend_ != MetaspaceSpec::Prepend::never && !text.empty() && text[0] == ' ') text.erase(0, 1);
  return text;
}

}  // namespace bb
