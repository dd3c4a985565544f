// Token lists, merges, token types and special ids for llama.cpp's BPE ("gpt2") tokenizer.
#include "io/gguf_tokenizer.h"

#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/byte_level.h"
#include "data/sentencepiece_tokenizer.h"
#include "data/tokenizer_files.h"
#include "io/atomic_file.h"

namespace bb::gguf {

namespace {

namespace fs = std::filesystem;

// llama_token_type (llama.h)
constexpr int32_t kNormal = 1, kControl = 3, kUnused = 5;

// The byte tokenizer as byte-level BPE: token b is GPT-2's printable character for byte b, so
// with no merges llama.cpp maps every byte of any text to its own id, as bigbatch does.
BpeSpec byte_tokenizer_spec() {
  BpeSpec s;
  s.source = "the byte tokenizer";
  for (int b = 0; b < 256; ++b) s.vocab.emplace_back(byte_level::byte_to_char(static_cast<unsigned char>(b)), b);
  s.added.emplace_back("<|endoftext|>", 256);
  return s;
}

BpeSpec folder_spec(const std::string& dir) {
  const fs::path d(dir);
  if (fs::exists(d / "tokenizer.json")) {
    try {
      return read_tokenizer_json((d / "tokenizer.json").string());
    } catch (const FormatError&) {
      throw FormatError(fmt::format("{}/tokenizer.json is not a byte-level BPE tokenizer; GGUF export writes "
                                    "byte-level BPE and SentencePiece models (a tokenizer.model beside it), not a "
                                    "SentencePiece-style tokenizer.json alone", dir));
    }
  }
  if (fs::exists(d / "vocab.json") && fs::exists(d / "merges.txt"))
    return read_vocab_merges((d / "vocab.json").string(), (d / "merges.txt").string());
  return byte_tokenizer_spec();
}

// llama.cpp's name for the pre-tokenisation regex (llama-vocab.cpp's LLAMA_VOCAB_PRE_TYPE_*).
std::string pre_name(const BpeSpec& s) {
  switch (s.split_digits) {
    case 0: return "gpt-2";
    case 3: return "llama-bpe";
    case 1: return "qwen2";
  }
  throw FormatError(fmt::format("{}: a pre-tokenizer splitting digits by {} has no llama.cpp equivalent", s.source,
                                s.split_digits));
}

std::string chat_template(const std::string& dir) {
  const fs::path d(dir);
  if (fs::exists(d / "chat_template.jinja")) return read_text_file((d / "chat_template.jinja").string());
  if (fs::exists(d / "tokenizer_config.json")) {
    const auto j = nlohmann::json::parse(read_text_file((d / "tokenizer_config.json").string()), nullptr, false);
    if (j.is_object() && j.contains("chat_template") && j["chat_template"].is_string())
      return j["chat_template"].get<std::string>();
  }
  return "";
}

// The ids past the tokenizer's own, up to the embedding rows: unused padding tokens.
void pad_tokens(std::vector<std::string>& tokens, const std::vector<bool>& set) {
  for (size_t i = 0; i < tokens.size(); ++i)
    if (!set[i]) tokens[i] = fmt::format("[PAD{}]", i);
}

void add_bpe(Writer& w, const std::string& dir, int64_t vocab_size, const SpecialIds& special) {
  const BpeSpec spec = folder_spec(dir);
  if (spec.add_prefix_space)
    throw FormatError(fmt::format("{}: add_prefix_space has no equivalent in llama.cpp's BPE tokenizer", spec.source));
  std::vector<std::string> tokens(static_cast<size_t>(vocab_size));
  std::vector<int32_t> types(static_cast<size_t>(vocab_size), kUnused);
  std::vector<bool> set(static_cast<size_t>(vocab_size), false);
  auto put = [&](const std::string& text, int64_t id, int32_t type) {
    if (id < 0 || id >= vocab_size)
      throw FormatError(fmt::format("{}: token id {} is past the model's {} embedding rows", spec.source, id,
                                    vocab_size));
    tokens[id] = text;
    types[id] = type;
    set[id] = true;
  };
  for (const auto& [text, id] : spec.vocab) put(text, id, kNormal);
  // Added tokens are written as their text; llama.cpp matches control tokens only as specials.
  for (const auto& [text, id] : spec.added) put(text, id, kControl);
  pad_tokens(tokens, set);
  // GPT-2's vocab.json holds <|endoftext|> as a plain entry: the special ids are control
  // tokens all the same, or llama.cpp would try to render and match them as text.
  for (int64_t id : {special.bos, special.eos, special.pad})
    if (id >= 0 && id < vocab_size) types[id] = kControl;
  std::vector<std::string> merges;
  merges.reserve(spec.merges.size());
  for (const auto& [a, b] : spec.merges) merges.push_back(a + " " + b);

  w.add("tokenizer.ggml.model", std::string("gpt2"));
  w.add("tokenizer.ggml.pre", pre_name(spec));
  w.add("tokenizer.ggml.tokens", std::move(tokens));
  w.add("tokenizer.ggml.token_type", std::move(types));
  w.add("tokenizer.ggml.merges", std::move(merges));
}

// llama.cpp's "llama" model is SentencePiece's: every piece with its score and type, which
// share their numbers with llama.cpp's token types.
void add_sentencepiece(Writer& w, const std::string& path, int64_t vocab_size) {
  const SentencePieceVocab v = SentencePieceTokenizer(path).vocab();
  if (static_cast<int64_t>(v.pieces.size()) > vocab_size)
    throw FormatError(fmt::format("{}: {} pieces, more than the model's {} embedding rows", path, v.pieces.size(),
                                  vocab_size));
  std::vector<std::string> tokens(static_cast<size_t>(vocab_size));
  std::vector<float> scores(static_cast<size_t>(vocab_size), -1e4f);
  std::vector<int32_t> types(static_cast<size_t>(vocab_size), kUnused);
  std::vector<bool> set(static_cast<size_t>(vocab_size), false);
  for (size_t i = 0; i < v.pieces.size(); ++i) {
    tokens[i] = v.pieces[i].text;
    scores[i] = v.pieces[i].score;
    types[i] = v.pieces[i].type;
    set[i] = true;
  }
  pad_tokens(tokens, set);
  w.add("tokenizer.ggml.model", std::string("llama"));
  w.add("tokenizer.ggml.tokens", std::move(tokens));
  w.add("tokenizer.ggml.scores", std::move(scores));
  w.add("tokenizer.ggml.token_type", std::move(types));
  if (v.unk >= 0) w.add("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(v.unk));
  w.add("tokenizer.ggml.add_space_prefix", v.add_dummy_prefix);
}

}  // namespace

void add_tokenizer(Writer& w, const std::string& dir, int64_t vocab_size, const SpecialIds& special) {
  const fs::path spm = fs::path(dir) / "tokenizer.model";
  if (fs::exists(spm)) add_sentencepiece(w, spm.string(), vocab_size);
  else add_bpe(w, dir, vocab_size, special);
  // A model without a BOS uses its EOS there, as GPT-2 does (io/hf_model.h).
  const int64_t bos = special.bos >= 0 ? special.bos : special.eos;
  if (bos >= 0) w.add("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(bos));
  if (special.eos >= 0) w.add("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(special.eos));
  if (special.pad >= 0) w.add("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(special.pad));
  w.add("tokenizer.ggml.add_bos_token", special.add_bos);
  w.add("tokenizer.ggml.add_eos_token", false);
  const std::string tmpl = chat_template(dir);
  if (!tmpl.empty()) w.add("tokenizer.chat_template", tmpl);
}

}  // namespace bb::gguf
