// Impossible sizes are one OutOfBudget sentence before anything is asked of the system, and
// nothing on the release path throws (it runs in ~Storage, also while an exception unwinds).
#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "core/allocator.h"
#include "core/error.h"
#include "core/storage.h"
#include "core/tensor.h"

namespace bb {
namespace {

static_assert(noexcept(std::declval<Allocator&>().release(nullptr, 0, Category::Workspace)),
              "release runs in destructors and must not throw");
static_assert(noexcept(std::declval<Allocator&>().count_external(0, Category::Workspace)),
              "count_external runs in destructors and must not throw");

TEST(AllocatorLimits, BlockLargerThanTheMachineIsOneSentence) {
  const int64_t live = Allocator::of(Device::CPU).stats().total_live;
  try {
    Tensor t = Tensor::empty(Shape{int64_t(1) << 40, 1024}, DType::F32, Device::CPU, Category::Parameters);
    FAIL() << "a 4 PiB tensor was allocated";
  } catch (const OutOfBudget& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("parameters"), std::string::npos) << msg;
    EXPECT_NE(msg.find("machine"), std::string::npos) << msg;
  }
  EXPECT_EQ(Allocator::of(Device::CPU).stats().total_live, live) << "a refused block must not stay counted";
}

TEST(AllocatorLimits, SizeNearTheTopOfSizeTDoesNotWrap) {
  EXPECT_GE(Allocator::round_size(SIZE_MAX - 10), SIZE_MAX / 2);
  EXPECT_THROW(Allocator::of(Device::CPU).allocate(SIZE_MAX - 10, Category::Workspace), OutOfBudget);
}

}  // namespace
}  // namespace bb
