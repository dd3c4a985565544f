// Added and special tokens ("<|endoftext|>", "<s>") as tokenizers match them: verbatim in the
// text, longest first, before the plain text around them is tokenised.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bb {

class AddedTokens {
 public:
  // Makes `text` match as `id`; the same text again is ignored.
  void add(const std::string& text, int32_t id) {
    for (const auto& a : tokens_)
      if (a.first == text) return;
    tokens_.emplace_back(text, id);
    first_[static_cast<unsigned char>(text[0])] = true;
    std::stable_sort(tokens_.begin(), tokens_.end(), [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  }
  bool empty() const { return tokens_.empty(); }
  // Calls plain(text, offset) for each run of plain text (possibly empty) and token(id) for
  // each added token between them, in order.
  template <typename Plain, typename Token>
  void split(std::string_view text, Plain&& plain, Token&& token) const {
    size_t start = 0;  // plain text runs from here to the next added token
    for (size_t i = 0; i < text.size() && !tokens_.empty(); ++i) {
      if (!first_[static_cast<unsigned char>(text[i])]) continue;
      for (const auto& [t, id] : tokens_) {
        if (text.compare(i, t.size(), t) != 0) continue;
        plain(text.substr(start, i - start), start);
        token(id, i);
        start = i + t.size();
        i = start - 1;
        break;
      }
    }
    plain(text.substr(start), start);
  }

 private:
  std::vector<std::pair<std::string, int32_t>> tokens_;  // longest first
  bool first_[256] = {};                                  // bytes an added token starts with
};

}  // namespace bb
