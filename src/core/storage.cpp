// Storage blocks drawn from, and returned to, the device's counting allocator.
#include "core/storage.h"

namespace bb {

namespace {
thread_local int g_uncounted_meta = 0;
}  // namespace

UncountedMeta::UncountedMeta() { ++g_uncounted_meta; }
UncountedMeta::~UncountedMeta() { --g_uncounted_meta; }

Storage::Storage(size_t bytes, Category category, Device device)
    : bytes_(bytes), category_(category), device_(device) {
  if (device == Device::Meta && g_uncounted_meta > 0) {
    counted_ = false;
    return;
  }
  data_ = Allocator::of(device).allocate(bytes, category);
}

Storage::Storage(void* data, size_t bytes, Category category, std::function<void()> release, Device device)
    : data_(data), bytes_(bytes), category_(category), device_(device), external_release_(std::move(release)) {
  if (device == Device::Meta && g_uncounted_meta > 0) {
    counted_ = false;
    return;
  }
  Allocator::of(device).count_external(static_cast<int64_t>(bytes), category);
}

// Never throws: a destructor that throws while an exception unwinds (a failed load) would
// end the process. release() and count_external() do not throw; a release callback that
// does is contained here.
Storage::~Storage() {
  if (!counted_) return;
  if (external_release_) {
    Allocator::of(device_).count_external(-static_cast<int64_t>(bytes_), category_);
    try {
      external_release_();
    } catch (...) {
    }
  } else {
    Allocator::of(device_).release(data_, bytes_, category_);
  }
}

}  // namespace bb
