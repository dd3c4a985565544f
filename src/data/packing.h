// Packing: examples end to end in rows of block_size tokens, so a micro-batch carries almost
// no padding. The rows are formed once at load by best-fit decreasing (longest example first,
// each into the fullest row that still has room, ties by example order): the packing depends
// on the examples alone. Each epoch serves the rows in a seeded shuffle by global sample index
// (a sample is a row), so K micro-batches of B rows read exactly the rows of one batch of K*B
// and a resumed run reads what the uninterrupted one would. Batch::positions restarts at 0
// for each example; the models keep attention within an example.
#pragma once
#include <cstdint>
#include <vector>

#include "data/dataset.h"

namespace bb {

// One example: an example of n tokens takes n - 1 places in a row (tokens ids[0..n-2],
// targets ids[1..n-1]), as it does alone in a padded row.
struct Sequence {
  std::vector<int32_t> ids;
  std::vector<uint8_t> trained;  // trained[t]: predicting ids[t] takes a loss; empty: every token
};

// Rows of item indices: items of `lengths` placed by best-fit decreasing into rows of
// `capacity`. Every length must be in [1, capacity].
std::vector<std::vector<int64_t>> pack_best_fit(const std::vector<int64_t>& lengths, int64_t capacity);

class PackedDataset final : public Dataset {
 public:
  // Examples longer than block_size + 1 tokens lose their end, as in a padded row; examples
  // of one token (no target) are left out.
  PackedDataset(std::vector<Sequence> examples, int64_t block_size, uint64_t seed, int64_t pad_id);
  Batch batch(int64_t first, int64_t count) const override;
  int64_t size() const override { return static_cast<int64_t>(rows_.size()); }
  int64_t examples() const { return static_cast<int64_t>(examples_.size()); }
  // The share of the rows' places that hold an example's tokens.
  double fill() const;

 private:
  int64_t length(const Sequence& s) const;  // places it takes
  std::vector<Sequence> examples_;
  std::vector<std::vector<int64_t>> rows_;
  int64_t block_;
  int64_t pad_;
  EpochOrder order_;
};

// Sets c's train and validation parts (validation seeded seed + 1; none when val is empty)
// to packed rows, and c's packing figures; `source` (data.path) names the data in errors.
void pack_corpus(TextCorpus& c, std::vector<Sequence> train, std::vector<Sequence> val, int64_t block_size,
                 uint64_t seed, int64_t pad_id,
                 const std::string& source);

}  // namespace bb
