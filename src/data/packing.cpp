// Best-fit decreasing packing and the packed rows' batches.
#include "data/packing.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <utility>

#include "core/error.h"

namespace bb {

std::vector<std::vector<int64_t>> pack_best_fit(const std::vector<int64_t>& lengths, int64_t capacity) {
  std::vector<int64_t> order(lengths.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return lengths[a] > lengths[b]; });
  std::vector<std::vector<int64_t>> rows;
  std::set<std::pair<int64_t, int64_t>> room;  // (places left, row): the fullest fitting row first
  for (int64_t i : order) {
    const int64_t len = lengths[i];
    if (len < 1 || len > capacity)
      throw ShapeError(fmt::format("packing: item {} of length {} does not fit a row of {}", i, len, capacity));
    auto fit = room.lower_bound({len, -1});
    int64_t row;
    int64_t left;
    if (fit == room.end()) {
      row = static_cast<int64_t>(rows.size());
      rows.emplace_back();
      left = capacity;
    } else {
      row = fit->second;
      left = fit->first;
      room.erase(fit);
    }
    rows[row].push_back(i);
    if (left - len > 0) room.insert({left - len, row});
  }
  return rows;
}

int64_t PackedDataset::length(const Sequence& s) const {
  return std::min<int64_t>(static_cast<int64_t>(s.ids.size()) - 1, block_);
}

PackedDataset::PackedDataset(std::vector<Sequence> examples, int64_t block_size, uint64_t seed, int64_t pad_id)
    : block_(block_size), pad_(pad_id) {
  for (Sequence& s : examples)
    if (s.ids.size() >= 2) examples_.push_back(std::move(s));
  if (examples_.empty()) throw FormatError("packing: no example has a token to predict");
  std::vector<int64_t> lengths;
  for (const Sequence& s : examples_) lengths.push_back(length(s));
  rows_ = pack_best_fit(lengths, block_);
  order_ = EpochOrder(size(), seed);
}

double PackedDataset::fill() const {
  double used = 0;
  for (const Sequence& s : examples_) used += static_cast<double>(length(s));
  return used / (static_cast<double>(rows_.size()) * static_cast<double>(block_));
}

Batch PackedDataset::batch(int64_t first, int64_t count) const {
  std::vector<const std::vector<int64_t>*> rows;
  int64_t longest = 1;
  for (int64_t i = 0; i < count; ++i) {
    rows.push_back(&rows_[order_(first + i)]);
    int64_t used = 0;
    for (int64_t e : *rows.back()) used += length(examples_[e]);
    longest = std::max(longest, used);
  }
  Batch b;
  b.tokens = Tensor::empty(Shape{count, longest}, DType::I64);
  b.targets = Tensor::empty(Shape{count, longest}, DType::I64);
  b.positions = Tensor::empty(Shape{count, longest}, DType::I64);
  int64_t* x = b.tokens.data<int64_t>();
  int64_t* y = b.targets.data<int64_t>();
  int64_t* p = b.positions.data<int64_t>();
  for (int64_t r = 0; r < count; ++r) {
    int64_t at = r * longest;
    for (int64_t e : *rows[r]) {
      const Sequence& s = examples_[e];
      for (int64_t t = 0, n = length(s); t < n; ++t, ++at) {
        const bool loss = s.trained.empty() || s.trained[t + 1];
        x[at] = s.ids[t];
        y[at] = loss ? s.ids[t + 1] : kIgnoreIndex;
        p[at] = t;
        b.target_count += loss ? 1 : 0;
      }
    }
    // The row's padding is a document of its own: it sees only itself and trains nothing.
    for (int64_t t = 0; at < (r + 1) * longest; ++t, ++at) {
      x[at] = pad_;
      y[at] = kIgnoreIndex;
      p[at] = t;
    }
  }
  b.samples = count;
  return b;
}

void pack_corpus(TextCorpus& c, std::vector<Sequence> train, std::vector<Sequence> val, int64_t block_size,
                 uint64_t seed, int64_t pad_id, const std::string& source) {
  std::unique_ptr<PackedDataset> rows;
  try {
    rows = std::make_unique<PackedDataset>(std::move(train), block_size, seed, pad_id);
  } catch (const FormatError& e) {
    throw FormatError(fmt::format("{} (data.path {})", e.what(), source));
  }
  c.packed_examples = rows->examples();
  c.packed_fill = rows->fill();
  c.train = std::move(rows);
  c.val.reset();
  if (!val.empty()) c.val = std::make_unique<PackedDataset>(std::move(val), block_size, seed + 1, pad_id);
}

}  // namespace bb
