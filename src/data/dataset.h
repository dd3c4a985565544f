// Datasets hand out batches by global sample index: sample i is always the same example, so
// K micro-batches of B see exactly the examples of one batch of K*B, and resuming needs
// only the count of samples consumed (the data cursor).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/tokenizer.h"

namespace bb {

struct Batch {
  Tensor tokens;   // (B, T) i64
  Tensor targets;  // (B, T) i64; -100 where no loss is taken (padding, prompts)
  // Packed rows only: (B, T) i64, each token's position in its own example (0 where one
  // starts); undefined when every row holds one sequence from position 0.
  Tensor positions;
  int64_t target_count = 0;  // targets that count
  int64_t samples = 0;
};

inline constexpr int64_t kIgnoreIndex = -100;

class Dataset {
 public:
  virtual ~Dataset() = default;
  // Samples [first, first + count), in order.
  virtual Batch batch(int64_t first, int64_t count) const = 0;
  // Samples per epoch; 0 for an endless stream of random windows.
  virtual int64_t size() const { return 0; }
};

// A seeded permutation of n items for each epoch, computed by a keyed sort so any sample
// index maps to an item without state; the permutation of the last epoch asked for is kept.
class EpochOrder {
 public:
  EpochOrder(int64_t n = 0, uint64_t seed = 0) : n_(n), seed_(seed) {}
  int64_t operator()(int64_t sample) const;  // the item of sample `sample` (epoch = sample / n)

 private:
  int64_t n_;
  uint64_t seed_;
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<int64_t> order_;
};

// Sequences padded to the longest in the batch, each truncated to block_size + 1 tokens:
// tokens seq[t], targets seq[t + 1] where (*trained)[t + 1] (every position when trained is
// null), else ignore_index; padding gets pad_id and no loss.
Batch padded_batch(const std::vector<const std::vector<int32_t>*>& seqs,
                   const std::vector<const std::vector<uint8_t>*>& trained, int64_t block_size, int64_t pad_id);

// Random windows of block_size + 1 tokens from one token stream; window i starts at a
// position drawn from a counter-based generator keyed by (seed, i).
class TokenWindows final : public Dataset {
 public:
  TokenWindows(std::vector<int32_t> tokens, int64_t block_size, uint64_t seed, std::string source);
  Batch batch(int64_t first, int64_t count) const override;
  int64_t tokens() const { return static_cast<int64_t>(tokens_.size()); }

 private:
  std::vector<int32_t> tokens_;
  int64_t block_;
  uint64_t seed_;
};

// Whole documents of different lengths, one per sample (truncated to block_size + 1),
// padded to the longest in the batch; padding gets no loss. Order is a seeded shuffle per
// epoch.
class Documents final : public Dataset {
 public:
  Documents(std::vector<std::vector<int32_t>> docs, int64_t block_size, uint64_t seed, int64_t pad_id);
  Batch batch(int64_t first, int64_t count) const override;
  int64_t size() const override { return static_cast<int64_t>(docs_.size()); }

 private:
  const std::vector<int32_t>& doc(int64_t sample) const;
  std::vector<std::vector<int32_t>> docs_;
  int64_t block_;
  int64_t pad_;
  EpochOrder order_;
};

// The train and validation parts of a text corpus.
struct TextCorpus {
  std::unique_ptr<Dataset> train, val;
  int64_t train_tokens = 0, val_tokens = 0;
  std::string chat_format;  // instruct data: the chat template that rendered the chats
  int64_t dropped = 0;      // instruct data: examples left out as too long (data.too_long=drop)
  // data.packing: the training examples, and the share of the packed rows' tokens they fill
  int64_t packed_examples = 0;
  double packed_fill = 0;
};

struct TextDataOptions {
  std::string path;             // a file, or a folder whose files are read in name order
  std::string format = "text";  // "text": random windows; "documents": one document a sample
  std::string separator = "%";  // a line holding only this ends a document ("" = blank line)
  double val_fraction = 0.05;
  int64_t block_size = 256;
  uint64_t seed = 0;
  // instruct data: the tokenizer's model folder ("" for the byte tokenizer), whose chat
  // template renders chats unless chat_template names a template file; the turns that train
  std::string tokenizer_dir, chat_template;
  std::string train_on = "assistant";
  // instruct: an example longer than block_size + 1 tokens is an error, or is cut to that
  // length ("truncate"), or left out ("drop")
  std::string too_long = "error";
  // documents and instruct: several examples end to end in each row (data/packing.h)
  bool packing = false;
};

// Reads, tokenises and splits a corpus; throws FormatError naming the path when it cannot be
// read or is too short for one window.
TextCorpus load_text_corpus(const TextDataOptions& o, const Tokenizer& tok);

// splitmix64: the counter-based generator behind sample order.
uint64_t mix64(uint64_t x);

}  // namespace bb
