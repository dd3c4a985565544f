// Storage: one counted block of bytes on a device. Tensors share a storage when one is a
// view (reshape) of another. External storage wraps memory the allocator did not make (a
// memory-mapped weights file) and still counts it under its category.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>

#include "core/allocator.h"

namespace bb {

class Storage {
 public:
  Storage(size_t bytes, Category category, Device device);
  // Memory owned elsewhere; `release` runs when the last tensor using it goes.
  Storage(void* data, size_t bytes, Category category, std::function<void()> release);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Category category() const { return category_; }
  Device device() const { return device_; }
  // Whether the bytes are owned elsewhere (a mapped file) rather than by the allocator.
  bool external() const { return static_cast<bool>(external_release_); }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Category category_;
  Device device_ = Device::CPU;
  std::function<void()> external_release_;
};

}  // namespace bb
