// The meta backend must count exactly the bytes the CPU does, category by category, through a
// GPT-2 forward and backward (docs/notes/memory-accounting.md: ops allocate, kernels only
// fill), and a memory budget must stop an allocation with a message naming what was asked.
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include "autograd/backward.h"
#include "core/allocator.h"
#include "core/error.h"
#include "models/gpt2.h"
#include "ops/ops.h"

namespace bb {
namespace {

constexpr int64_t kB = 2, kT = 8;

struct Variant {
  std::string name;
  float dropout;
  DType compute;
};

// Byte counts relative to the state before the model was built: both allocators are
// process-wide, and the CPU one also holds what other tests left alive.
struct Accounting {
  std::array<int64_t, kNumCategories> built{};   // live after building the model and the batch
  std::array<int64_t, kNumCategories> peak{};    // highest live during loss + backward, above built
  std::array<int64_t, kNumCategories> after{};   // live after backward, above built
  std::array<int64_t, kNumCategories> leaked{};  // live once everything is gone (want 0)
  int64_t total_peak = 0;
  int64_t count = 0;
};

Accounting run_gpt2(Device dev, const Variant& v) {
  Allocator& alloc = Allocator::of(dev);
  const MemoryStats before = alloc.stats();
  Accounting a;
  {
    GPT2Config cfg{.n_layer = 2, .n_head = 2, .n_embd = 32, .block_size = 16, .vocab_size = 64,
                   .dropout = v.dropout};
    GPT2 model(cfg, 1234, dev);
    Tensor tokens, targets;
    if (dev == Device::Meta) {
      tokens = Tensor::empty(Shape{kB, kT}, DType::I64, Device::Meta);
      targets = Tensor::empty(Shape{kB, kT}, DType::I64, Device::Meta);
    } else {
      std::vector<int64_t> ids(kB * kT), next(kB * kT);
      for (int64_t i = 0; i < kB * kT; ++i) ids[i] = (i * 7 + 3) % cfg.vocab_size;
      for (int64_t i = 0; i < kB * kT; ++i) next[i] = ids[(i + 1) % (kB * kT)];
      tokens = Tensor::from_ints(Shape{kB, kT}, ids);
      targets = Tensor::from_ints(Shape{kB, kT}, next);
    }
    const MemoryStats built = alloc.stats();
    alloc.reset_peaks();
    Context ctx{.compute = v.compute, .training = true, .seed = 5};
    Tensor loss = model.loss(tokens, targets, ctx, &a.count);
    backward(loss);
    const MemoryStats after = alloc.stats();
    for (int c = 0; c < kNumCategories; ++c) {
      a.built[c] = built.live[c] - before.live[c];
      a.peak[c] = after.peak[c] - built.live[c];
      a.after[c] = after.live[c] - built.live[c];
    }
    a.total_peak = after.total_peak - built.total_live;
  }
  const MemoryStats end = alloc.stats();
  for (int c = 0; c < kNumCategories; ++c) a.leaked[c] = end.live[c] - before.live[c];
  return a;
}

class MetaAccounting : public ::testing::TestWithParam<Variant> {};

TEST_P(MetaAccounting, Gpt2LossAndBackwardCountLikeCpu) {
  const Accounting meta = run_gpt2(Device::Meta, GetParam());
  const Accounting cpu = run_gpt2(Device::CPU, GetParam());
  for (int c = 0; c < kNumCategories; ++c) {
    const std::string cat(category_name(static_cast<Category>(c)));
    EXPECT_EQ(meta.built[c], cpu.built[c]) << cat << " live after building the model";
    EXPECT_EQ(meta.peak[c], cpu.peak[c]) << cat << " peak during loss and backward";
    EXPECT_EQ(meta.after[c], cpu.after[c]) << cat << " live after backward";
    EXPECT_EQ(meta.leaked[c], 0) << cat << " still live on meta once everything is gone";
    EXPECT_EQ(cpu.leaked[c], 0) << cat << " still live on cpu once everything is gone";
  }
  EXPECT_EQ(meta.total_peak, cpu.total_peak) << "total peak during loss and backward";
  // Sanity: the run did allocate, and gradients exist for every parameter byte.
  EXPECT_GT(cpu.built[int(Category::Parameters)], 0);
  EXPECT_GT(cpu.peak[int(Category::Activations)], 0);
  EXPECT_EQ(cpu.after[int(Category::Gradients)], cpu.built[int(Category::Parameters)]);
  EXPECT_EQ(meta.count, kB * kT);
  EXPECT_EQ(cpu.count, kB * kT);
}

INSTANTIATE_TEST_SUITE_P(Meta, MetaAccounting,
                         ::testing::Values(Variant{"f32", 0.0f, DType::F32},
                                           Variant{"bf16_dropout", 0.1f, DType::BF16}),
                         [](const ::testing::TestParamInfo<Variant>& i) { return i.param.name; });

// Restores "no budget" however a test leaves, so later tests are not starved.
struct BudgetReset {
  Device dev;
  ~BudgetReset() { Allocator::of(dev).set_budget(0); }
};

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(MetaBudget, CpuBudgetStopsAllocationNamingCategoryAndOp) {
  Allocator& cpu = Allocator::of(Device::CPU);
  BudgetReset reset{Device::CPU};
  Tensor a = Tensor::zeros(Shape{600, 8}), b = Tensor::zeros(Shape{8, 600});
  cpu.empty_cache();  // cached blocks are BudgetHoldsForCachedBlocks' subject, not this test's
  cpu.set_budget(cpu.stats().total_live + (int64_t(1) << 20));  // 1 MiB of headroom
  Tensor fits = Tensor::empty(Shape{1024}, DType::F32, Device::CPU, Category::Workspace);
  try {
    Tensor big = Tensor::empty(Shape{int64_t(1) << 20}, DType::F32, Device::CPU, Category::Gradients);
    FAIL() << "4 MiB fitted a 1 MiB budget";
  } catch (const OutOfBudget& e) {
    EXPECT_TRUE(contains(e.what(), "gradients")) << e.what();
    EXPECT_TRUE(contains(e.what(), "budget")) << e.what();
  }
  try {
    Tensor c = matmul(a, b);  // (600, 600) f32: 1.4 MB
    FAIL() << "matmul's output fitted a 1 MiB budget";
  } catch (const OutOfBudget& e) {
    EXPECT_TRUE(contains(e.what(), "matmul")) << e.what();
    EXPECT_TRUE(contains(e.what(), "activations")) << e.what();
    EXPECT_TRUE(contains(e.what(), "budget")) << e.what();
  }
  cpu.set_budget(0);
  EXPECT_EQ(matmul(a, b).numel(), 600 * 600);  // no budget, no limit
}

// The budget bounds live bytes (allocator.h), so a block handed back from the cache counts
// like a fresh one; otherwise a plan's verdict would depend on what ran before it.
TEST(MetaBudget, BudgetHoldsForCachedBlocks) {
  for (Device dev : {Device::CPU, Device::Meta}) {
    Allocator& alloc = Allocator::of(dev);
    BudgetReset reset{dev};
    const Shape big{int64_t(1) << 20};  // 4 MiB of f32
    alloc.empty_cache();
    Tensor::empty(big, DType::F32, dev, Category::Activations);  // freed at once: now cached
    alloc.set_budget(alloc.stats().total_live + (int64_t(1) << 20));
    EXPECT_THROW(Tensor::empty(big, DType::F32, dev, Category::Activations), OutOfBudget)
        << device_name(dev) << ": 4 MiB from the cache fitted a 1 MiB budget";
  }
}

// The point of the meta device: a run that would not fit is found without running it.
TEST(MetaBudget, MetaBudgetStopsAPlannedStep) {
  Allocator& meta = Allocator::of(Device::Meta);
  BudgetReset reset{Device::Meta};
  GPT2Config cfg{.n_layer = 2, .n_head = 2, .n_embd = 32, .block_size = 16, .vocab_size = 64};
  GPT2 model(cfg, 1, Device::Meta);
  Tensor tokens = Tensor::empty(Shape{kB, kT}, DType::I64, Device::Meta);
  meta.empty_cache();  // as above: a cold cache, whatever ran before
  meta.set_budget(meta.stats().total_live + 4096);
  Context ctx{.training = true};
  int64_t count = 0;
  try {
    backward(model.loss(tokens, tokens, ctx, &count));
    FAIL() << "a GPT-2 step fitted in 4 KiB";
  } catch (const OutOfBudget& e) {
    EXPECT_TRUE(contains(e.what(), "activations")) << e.what();
    EXPECT_TRUE(contains(e.what(), "while running")) << e.what();
    EXPECT_TRUE(contains(e.what(), "budget")) << e.what();
  }
}

}  // namespace
}  // namespace bb
