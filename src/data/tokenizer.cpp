// The byte tokenizer and the tokenizer factory.
#include "data/tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "data/tokenizer_files.h"

namespace bb {

std::vector<int64_t> Tokenizer::stop_ids() const {
  if (!special_.stop.empty()) return special_.stop;
  if (special_.eos >= 0) return {special_.eos};
  return {};
}

std::vector<int64_t> Tokenizer::encode_with_starts(std::string_view text, std::vector<size_t>& starts) const {
  std::vector<int64_t> ids = encode(text);
  starts.assign(ids.size(), 0);
  for (size_t i = 1; i < ids.size(); ++i)
    starts[i] = std::min(text.size(), decode(std::vector<int64_t>(ids.begin(), ids.begin() + i)).size());
  return ids;
}

ByteTokenizer::ByteTokenizer() {
  SpecialIds ids;
  ids.eos = 256;
  set_special_ids(ids);
}

std::vector<int64_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::vector<int64_t> ByteTokenizer::encode_with_starts(std::string_view text, std::vector<size_t>& starts) const {
  starts.resize(text.size());
  for (size_t i = 0; i < text.size(); ++i) starts[i] = i;
  return encode(text);
}

std::string ByteTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string s;
  for (int64_t id : ids)
    if (id >= 0 && id < 256) s.push_back(static_cast<char>(id));
  return s;
}

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& name) {
  if (name == "byte") return std::make_unique<ByteTokenizer>();
  if (std::filesystem::is_directory(name)) return load_tokenizer(name);
  throw ConfigError(fmt::format("data.tokenizer '{}' is not known (byte, or a model folder)", name));
}

}  // namespace bb
