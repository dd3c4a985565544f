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

Storage::~Storage() {
  if (external_release_) {
    Allocator::of(Device::CPU).count_external(-static_cast<int64_t>(bytes_), category_);
    external_release_();
  } else { Allocator::of(device_).release(data_, bytes_, category_);
  }
}

}  // namespace bb
