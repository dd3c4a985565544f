// Storage blocks drawn from, and returned to, the device's counting allocator.
#include "core/storage.h"

namespace bb {

Storage::Storage(size_t bytes, Category category, Device device)
    : bytes_(bytes), category_(category), device_(device) {
  data_ = Allocator::of(device).allocate(bytes, category);
}

Storage::Storage(void* data, size_t bytes, Category category, std::function<void()> release)
    : data_(data), bytes_(bytes), category_(category), external_release_(std::move(release)) {
  Allocator::of(Device::CPU).count_external(static_cast<int64_t>(bytes), category);
}

// Never throws: a destructor that throws while an exception unwinds (a failed load) would
// end the process. release() and count_external() do not throw; a release callback that
// does is contained here.
Storage::~Storage() {
  if (external_release_) {
    Allocator::of(Device::CPU).count_external(-static_cast<int64_t>(bytes_), category_);
    try {
      external_release_();
    } catch (...) {
    }
  } else {
    Allocator::of(device_).release(data_, bytes_, category_);
  }
}

}  // namespace bb
