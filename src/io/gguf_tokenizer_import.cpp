// tokenizer.ggml.* -> a bigbatch tokenizer: the inverse of io/gguf_tokenizer.cpp. llama.cpp's
// token types say what each entry is: control and user-defined tokens are matched in text
// verbatim (added tokens), the others are the vocabulary.
#include <fmt/format.h>

#include "core/error.h"
#include "data/bpe_tokenizer.h"
#include "data/byte_level.h"
#include "data/sentencepiece_tokenizer.h"
#include "io/gguf_import.h"
#include "io/gguf_reader.h"

namespace bb {

namespace {

// llama_token_type (llama.h)
constexpr int32_t kNormal = 1, kControl = 3, kUserDefined = 4;

const std::vector<std::string>& tokens_of(const gguf::Reader& r) { return r.strings("tokenizer.ggml.tokens"); }

// One type per token (all normal when the key is absent, as llama.cpp reads it).
std::vector<int32_t> types_of(const gguf::Reader& r, size_t n) {
  if (!r.has("tokenizer.ggml.token_type")) return std::vector<int32_t>(n, kNormal);
  const auto& t = r.numbers("tokenizer.ggml.token_type");
  if (t.size() != n)
    throw FormatError(fmt::format("{}: tokenizer.ggml.token_type has {} entries for {} tokens", r.path(), t.size(), n));
  std::vector<int32_t> out;
  for (double v : t) out.push_back(static_cast<int32_t>(v));
  return out;
}

int64_t id_key(const gguf::Reader& r, const std::string& key, size_t n) {
  const int64_t id = r.integer(key, -1);
  if (id >= static_cast<int64_t>(n))
    throw FormatError(fmt::format("{}: {} is {}, past the {} tokens", r.path(), key, id, n));
  return id;
}

SpecialIds special_of(const gguf::Reader& r, size_t n, bool add_bos_default) {
  SpecialIds s;
  s.bos = id_key(r, "tokenizer.ggml.bos_token_id", n);
  s.eos = id_key(r, "tokenizer.ggml.eos_token_id", n);
  s.pad = id_key(r, "tokenizer.ggml.padding_token_id", n);
  s.add_bos = s.bos >= 0 && r.integer("tokenizer.ggml.add_bos_token", add_bos_default) != 0;
  return s;
}

bool is_byte_tokenizer(const gguf::Reader& r) {
  const auto& tokens = tokens_of(r);
  bool bytes = tokens.size() >= 257 && tokens[256] == "<|endoftext|>" &&
               (!r.has("tokenizer.ggml.merges") || r.strings("tokenizer.ggml.merges").empty());
  for (int b = 0; bytes && b < 256; ++b) bytes = tokens[b] == byte_level::byte_to_char(static_cast<unsigned char>(b));
  for (size_t i = 257; bytes && i < tokens.size(); ++i) bytes = tokens[i].rfind("[PAD", 0) == 0;
  return bytes;
}

// tokenizer.ggml.pre (llama-vocab.cpp's names) -> BpeSpec's pre-tokenisation.
void set_pre(const gguf::Reader& r, BpeSpec& spec) {
  const std::string pre = r.string("tokenizer.ggml.pre", "gpt-2");
  if (pre == "gpt-2" || pre == "gpt2") {
    spec.split_digits = 0;
  } else if (pre == "llama-bpe" || pre == "llama3") {
    spec.split_digits = 3;
    spec.ignore_merges = true;
  } else if (pre == "qwen2") {
    spec.split_digits = 1;
  } else {
    throw FormatError(fmt::format("{}: tokenizer.ggml.pre is '{}', a pre-tokenizer bigbatch does not compute "
                                  "(gpt-2, llama-bpe, qwen2); set data.tokenizer to the model's tokenizer folder",
                                  r.path(), pre));
  }
}

std::unique_ptr<Tokenizer> bpe_tokenizer(const gguf::Reader& r) {
  const auto& tokens = tokens_of(r);
  const std::vector<int32_t> types = types_of(r, tokens.size());
  BpeSpec spec;
  spec.source = r.path();
  set_pre(r, spec);
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (types[i] == kControl || types[i] == kUserDefined) spec.added.emplace_back(tokens[i], static_cast<int64_t>(i));
    else spec.vocab.emplace_back(tokens[i], static_cast<int64_t>(i));
  }
  if (r.has("tokenizer.ggml.merges"))
    for (const std::string& m : r.strings("tokenizer.ggml.merges")) {
      const size_t space = m.find(' ');
      if (space == std::string::npos || space == 0 || space + 1 == m.size())
        throw FormatError(fmt::format("{}: tokenizer.ggml.merges holds '{}', not two tokens", r.path(), m));
      spec.merges.emplace_back(m.substr(0, space), m.substr(space + 1));
    }
  auto tok = std::make_unique<BpeTokenizer>(spec);
  tok->set_special_ids(special_of(r, tokens.size(), false));
  return tok;
}

std::unique_ptr<Tokenizer> sentencepiece_tokenizer(const gguf::Reader& r) {
  const auto& tokens = tokens_of(r);
  const std::vector<int32_t> types = types_of(r, tokens.size());
  const auto& scores = r.numbers("tokenizer.ggml.scores");
  if (scores.size() != tokens.size())
    throw FormatError(fmt::format("{}: tokenizer.ggml.scores has {} entries for {} tokens", r.path(), scores.size(),
                                  tokens.size()));
  SentencePieceVocab v;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (types[i] < 1 || types[i] > 6)
      throw FormatError(fmt::format("{}: token {} has type {}, not a llama.cpp token type", r.path(), i, types[i]));
    v.pieces.push_back({tokens[i], static_cast<float>(scores[i]), types[i]});
    v.byte_fallback = v.byte_fallback || types[i] == 6;
  }
  const SpecialIds special = special_of(r, tokens.size(), true);
  v.unk = id_key(r, "tokenizer.ggml.unknown_token_id", tokens.size());
  v.bos = special.bos;
  v.eos = special.eos;
  v.pad = special.pad;
  v.add_dummy_prefix = r.integer("tokenizer.ggml.add_space_prefix", 1) != 0;
  auto tok = SentencePieceTokenizer::from_proto(sentencepiece_model_proto(v), r.path());
  tok->set_special_ids(special);
  return tok;
}

}  // namespace

std::unique_ptr<Tokenizer> gguf_tokenizer(const std::string& path) {
  const gguf::Reader r(path);
  const std::string kind = r.string("tokenizer.ggml.model", "");
  if ((kind == "gpt2" || kind == "llama") && !r.has("tokenizer.ggml.tokens"))
    throw FormatError(fmt::format("{}: tokenizer.ggml.model is '{}' but there is no tokenizer.ggml.tokens; set "
                                  "data.tokenizer to the folder of the model's tokenizer files", path, kind));
  if (kind == "gpt2") return is_byte_tokenizer(r) ? make_tokenizer("byte") : bpe_tokenizer(r);
  if (kind == "llama") return sentencepiece_tokenizer(r);
  throw FormatError(fmt::format("{}: its tokenizer (tokenizer.ggml.model '{}') is not one bigbatch reads from GGUF "
                                "(gpt2, llama); set data.tokenizer to the folder of the model's tokenizer files "
                                "(tokenizer.json, tokenizer.model, or vocab.json and merges.txt)", path, kind));
}

}  // namespace bb
