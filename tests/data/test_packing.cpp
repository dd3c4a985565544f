// Packing: best-fit decreasing places every example once within the row size, the packed
// rows lay out tokens, targets and positions as each example has them alone, and the rows'
// order is a seeded shuffle by global sample index (K micro-batches of B rows are one batch of
// K*B rows).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "data/packing.h"

namespace bb {
namespace {

TEST(PackBestFit, PlacesEveryItemOnceWithinTheCapacity) {
  std::vector<int64_t> lengths;
  for (int64_t i = 0; i < 500; ++i) lengths.push_back(1 + int64_t(mix64(i) % 100));
  const auto rows = pack_best_fit(lengths, 128);
  std::vector<int> seen(lengths.size(), 0);
  int64_t total = 0;
  for (const auto& row : rows) {
    int64_t used = 0;
    for (int64_t i : row) used += lengths[size_t(i)], ++seen[size_t(i)];
    EXPECT_LE(used, 128);
    total += used;
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), int64_t(lengths.size()));
  // best-fit decreasing is within 11/9 OPT + 6/9 of the optimum; the total is a lower bound
  EXPECT_LE(int64_t(rows.size()), (total + 127) / 128 * 11 / 9 + 1);
  EXPECT_EQ(rows, pack_best_fit(lengths, 128));  // the same examples, the same rows
}

TEST(PackBestFit, PutsEachItemIntoTheFullestRowWithRoom) {
  // 6 opens a row (4 left), 5 another (5 left), 4 goes where 4 is left, 3 into the 5
  EXPECT_EQ(pack_best_fit({5, 3, 6, 4}, 10), (std::vector<std::vector<int64_t>>{{2, 3}, {0, 1}}));
  EXPECT_THROW(pack_best_fit({3, 11}, 10), ShapeError);
  EXPECT_THROW(pack_best_fit({0}, 10), ShapeError);
}

std::vector<Sequence> examples() {
  std::vector<Sequence> out;
  for (int32_t e = 0; e < 9; ++e) {
    Sequence s;
    const int32_t n = 2 + (e * 7) % 11;
    for (int32_t t = 0; t < n; ++t) s.ids.push_back(100 * e + t);
    if (e % 3 == 1)  // a prompt of half the example trains nothing
      for (int32_t t = 0; t < n; ++t) s.trained.push_back(t >= n / 2);
    out.push_back(s);
  }
  out.push_back({{7}, {}});  // one token: nothing to predict
  return out;
}

TEST(PackedDataset, RowsHoldEachExampleAsItIsAloneWithPositionsFromZero) {
  const std::vector<Sequence> src = examples();
  PackedDataset data(src, 16, 3, 999);
  EXPECT_EQ(data.examples(), 9);
  Batch b = data.batch(0, data.size());
  const int64_t T = b.tokens.dim(1);
  std::vector<int> found(9, 0);
  int64_t targets = 0;
  for (int64_t r = 0; r < b.tokens.dim(0); ++r)
    for (int64_t t = 0; t < T;) {
      const int64_t at = r * T + t;
      ASSERT_EQ(b.positions.data<int64_t>()[at], 0) << "a row is made of whole examples";
      const int64_t tok = b.tokens.data<int64_t>()[at];
      if (tok == 999) {  // padding to the row's end: its own document, no loss
        for (int64_t u = t; u < T; ++u) {
          EXPECT_EQ(b.tokens.data<int64_t>()[r * T + u], 999);
          EXPECT_EQ(b.targets.data<int64_t>()[r * T + u], kIgnoreIndex);
          EXPECT_EQ(b.positions.data<int64_t>()[r * T + u], u - t);
        }
        break;
      }
      const Sequence& s = src[size_t(tok / 100)];
      ++found[size_t(tok / 100)];
      for (int64_t i = 0; i + 1 < int64_t(s.ids.size()); ++i, ++t) {
        const bool trained = s.trained.empty() || s.trained[size_t(i + 1)];
        EXPECT_EQ(b.tokens.data<int64_t>()[r * T + t], s.ids[size_t(i)]);
        EXPECT_EQ(b.targets.data<int64_t>()[r * T + t], trained ? s.ids[size_t(i + 1)] : kIgnoreIndex);
        EXPECT_EQ(b.positions.data<int64_t>()[r * T + t], i);
        targets += trained;
      }
    }
  EXPECT_EQ(found, std::vector<int>(9, 1));
  EXPECT_EQ(b.target_count, targets);
  int64_t slots = 0;
  for (const Sequence& s : src) slots += std::max<int64_t>(0, int64_t(s.ids.size()) - 1);
  EXPECT_DOUBLE_EQ(data.fill(), double(slots) / double(data.size() * 16));
}

// The rows of one batch are those of its micro-batches, and each epoch is a seeded shuffle of
// all the rows.
TEST(PackedDataset, MicroBatchesReadTheRowsOfOneBatchAndEpochsShuffleThem) {
  PackedDataset data(examples(), 16, 3, 999);
  const int64_t n = data.size();
  ASSERT_GE(n, 4);
  auto row = [](const Batch& b, int64_t r) {  // a row's tokens without its padding
    const int64_t* x = b.tokens.data<int64_t>() + r * b.tokens.dim(1);
    std::vector<int64_t> out(x, x + b.tokens.dim(1));
    out.erase(std::remove(out.begin(), out.end(), 999), out.end());
    return out;
  };
  const Batch whole = data.batch(5, 4);
  for (int64_t r = 0; r < 4; ++r) EXPECT_EQ(row(data.batch(5 + r, 1), 0), row(whole, r));
  std::vector<std::vector<int64_t>> epoch1, epoch2;
  for (int64_t i = 0; i < n; ++i) {
    epoch1.push_back(row(data.batch(i, 1), 0));
    epoch2.push_back(row(data.batch(n + i, 1), 0));
  }
  EXPECT_NE(epoch1, epoch2);
  std::sort(epoch1.begin(), epoch1.end());
  std::sort(epoch2.begin(), epoch2.end());
  EXPECT_EQ(epoch1, epoch2);  // the same rows, in another order
  PackedDataset again(examples(), 16, 3, 999);
  EXPECT_EQ(row(again.batch(n + 2, 1), 0), row(data.batch(n + 2, 1), 0));
}

TEST(PackedDataset, LongExamplesLoseTheirEndAsInAPaddedRow) {
  std::vector<Sequence> src{{std::vector<int32_t>(30, 5), {}}, {{1, 2, 3}, {}}};
  PackedDataset data(src, 16, 0, 0);
  Batch b = data.batch(0, data.size());
  EXPECT_EQ(b.tokens.dim(1), 16);
  EXPECT_EQ(b.target_count, 16 + 2);
  EXPECT_THROW(PackedDataset({{{7}, {}}}, 16, 0, 0), FormatError);
}

}  // namespace
}  // namespace bb
