// A hash map keyed by std::string that string_views can look up without making a string
// (the tokenizers look up every piece of every text).
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace bb {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

}  // namespace bb
