// Tokenizer interface and the byte-level tokenizer (ids 0-255 are bytes, 256 ends a
// document). BPE and SentencePiece tokenizers implement the same interface.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bb {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<int64_t> encode(std::string_view text) const = 0;
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual int64_t eos_id() const = 0;  // ends a document; -1 when the vocabulary has none
  // Start a sequence and pad a batch; -1 when none. encode() never adds BOS or EOS: callers do.
  virtual int64_t bos_id() const { return -1; }
  virtual int64_t pad_id() const { return -1; }
  virtual std::string name() const = 0;
};

// BOS/EOS/pad ids a model folder names (tokenizer_config.json, config.json); -1 for none.
struct SpecialIds {
  int64_t bos = -1, eos = -1, pad = -1;
};

class ByteTokenizer final : public Tokenizer {
 public:
  std::vector<int64_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t vocab_size() const override { return 257; }
  int64_t eos_id() const override { return 256; }
  std::string name() const override { return "byte"; }
};

// The tokenizer a name stands for: "byte", or the path of a model folder holding
// tokenizer.json, vocab.json + merges.txt or tokenizer.model (see data/tokenizer_files.h);
// throws ConfigError for anything else.
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& name);

}  // namespace bb
