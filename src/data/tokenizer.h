// Tokenizer interface and the byte-level tokenizer (ids 0-255 are bytes, 256 ends a
// document). BPE and SentencePiece tokenizers implement the same interface.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bb {

// The special tokens a model folder declares (tokenizer_config.json, tokenizer.json,
// config.json, generation_config.json); ids are -1 for none.
struct SpecialIds {
  int64_t bos = -1, eos = -1, pad = -1;
  // BOS goes before every sequence (add_bos_token, or a post_processor that writes it).
  bool add_bos = false;
  // Every id that ends a generation: eos and the others the configs list (Llama 3 has three).
  std::vector<int64_t> stop;
  // The tokens' text, as chat templates print them ("<s>", "<|begin_of_text|>"); empty for none.
  std::string bos_text, eos_text;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Added and special tokens written in the text ("<|eot_id|>") encode to their ids.
  virtual std::vector<int64_t> encode(std::string_view text) const = 0;
  // encode() that also gives each token's first byte in `text` (starts[i] for ids[i]), for
  // loss masks over byte ranges. The default decodes growing prefixes: right for tokenizers
  // whose decoding concatenates the tokens' text, and slow.
  virtual std::vector<int64_t> encode_with_starts(std::string_view text, std::vector<size_t>& starts) const;
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual std::string name() const = 0;

  // encode() never adds BOS or EOS: callers do, as special().add_bos says.
  const SpecialIds& special() const { return special_; }
  int64_t eos_id() const { return special_.eos; }  // ends a document; -1 when the vocabulary has none
  int64_t bos_id() const { return special_.bos; }
  int64_t pad_id() const { return special_.pad; }
  // The id that fills a batch's rows past their end (never trained: their targets are
  // ignored): the configured pad, else EOS, else 0.
  int64_t batch_pad_id() const { return special_.pad >= 0 ? special_.pad : std::max<int64_t>(special_.eos, 0); }
  // The ids that end a generation: special().stop, or eos alone when that is empty.
  std::vector<int64_t> stop_ids() const;
  void set_special_ids(SpecialIds ids) { special_ = std::move(ids); }

 private:
  SpecialIds special_;
};

class ByteTokenizer final : public Tokenizer {
 public:
  ByteTokenizer();
  std::vector<int64_t> encode(std::string_view text) const override;
  std::vector<int64_t> encode_with_starts(std::string_view text, std::vector<size_t>& starts) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t vocab_size() const override { return 257; }
  std::string name() const override { return "byte"; }
};

// The tokenizer a name stands for: "byte", or the path of a model folder holding
// tokenizer.json, vocab.json + merges.txt or tokenizer.model (see data/tokenizer_files.h);
// throws ConfigError for anything else.
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& name);

}  // namespace bb
