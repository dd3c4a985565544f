// What the allocator holds is what the process holds for it: a block of a page or more costs
// its rounded size in resident memory (no hidden header page), and a budget's eviction frees
// only the room it needs, largest blocks first, straight back to the system. The resident
// high-water mark can be restarted to read one piece of work's peak, without losing the
// process's own.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/allocator.h"
#include "core/process_memory.h"
#include "../sanitized.h"

namespace bb {
namespace {

constexpr int64_t kKiB = 1024, kMiB = 1024 * 1024;

TEST(AllocatorFootprint, BlocksCostTheirSizeInResidentMemory) {
  BB_SKIP_IF_SANITIZED("AddressSanitizer's heap has redzones and a quarantine of its own");
  Allocator a(Device::CPU);
  // 256 blocks of 256 KiB: through malloc each cost one page more, 1 MiB in all.
  constexpr int kBlocks = 256;
  constexpr size_t kSize = 256 * kKiB;
  const int64_t before = current_rss_bytes();
  std::vector<void*> blocks;
  for (int i = 0; i < kBlocks; ++i) {
    blocks.push_back(a.allocate(kSize, Category::Activations));
    std::memset(blocks.back(), 1, kSize);
  }
  const int64_t grown = current_rss_bytes() - before;
  EXPECT_GE(grown, kBlocks * int64_t(kSize) - 256 * kKiB) << "the blocks were not written";
  EXPECT_LE(grown, kBlocks * int64_t(kSize) + 256 * kKiB) << "blocks cost more than their size";
  for (void* p : blocks) a.release(p, kSize, Category::Activations);
  a.empty_cache();
  EXPECT_LE(current_rss_bytes() - before, 256 * kKiB) << "emptied blocks stayed resident";
}

TEST(AllocatorFootprint, BudgetEvictsOnlyWhatItNeedsLargestFirst) {
  for (Device d : {Device::Meta, Device::CPU}) {
    Allocator a(d);
    a.set_budget(3 * kMiB);
    void* big1 = a.allocate(kMiB, Category::Activations);
    void* big2 = a.allocate(kMiB, Category::Activations);
    std::vector<void*> small;
    for (int i = 0; i < 4; ++i) small.push_back(a.allocate(64 * kKiB, Category::Activations));
    a.release(big1, kMiB, Category::Activations);
    a.release(big2, kMiB, Category::Activations);
    for (void* p : small) a.release(p, 64 * kKiB, Category::Activations);
    ASSERT_EQ(a.stats().cached, 2 * kMiB + 256 * kKiB);
    // 1.5 MiB is no cached size: 0.75 MiB must go, and one 1 MiB block is enough.
    void* mid = a.allocate(kMiB + kMiB / 2, Category::Workspace);
    EXPECT_EQ(a.stats().cached, kMiB + 256 * kKiB) << device_name(d);
    EXPECT_LE(a.stats().total_live + a.stats().cached, 3 * kMiB) << device_name(d);
    // The small blocks are still served from the cache.
    const int64_t fresh = a.stats().allocations;
    void* again = a.allocate(64 * kKiB, Category::Activations);
    EXPECT_EQ(a.stats().allocations, fresh) << device_name(d);
    a.release(again, 64 * kKiB, Category::Activations);
    a.release(mid, kMiB + kMiB / 2, Category::Workspace);
  }
}

TEST(ProcessMemory, PeakOfOnePieceOfWorkAndOfTheWholeProcess) {
  BB_SKIP_IF_SANITIZED("AddressSanitizer keeps freed memory in its quarantine");
  auto transient = [](size_t bytes) {
    std::vector<char> v(bytes, 1);  // written, then handed back (past malloc's mmap threshold)
    return v[bytes / 2];
  };
  give_large_blocks_their_own_pages();
  transient(size_t(64) * kMiB);
  const int64_t whole = peak_rss_bytes();
  if (!restart_peak_rss()) GTEST_SKIP() << "this kernel does not let the resident peak restart";
  EXPECT_LT(peak_rss_since_restart(), whole - 32 * kMiB) << "the mark did not restart";
  EXPECT_GE(peak_rss_bytes(), whole) << "the process's own peak was lost";
  ASSERT_TRUE(restart_peak_rss());
  transient(size_t(16) * kMiB);
  EXPECT_GE(peak_rss_since_restart() - current_rss_bytes(), 15 * kMiB);
}

}  // namespace
}  // namespace bb
