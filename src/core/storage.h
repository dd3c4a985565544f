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
  // Memory owned elsewhere; `release` runs when the last tensor using it goes. Counted on
  // `device`'s allocator (Meta where the planner mirrors a mapping: `data` is then null).
  Storage(void* data, size_t bytes, Category category, std::function<void()> release,
          Device device = Device::CPU);
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
  bool counted_ = true;
};

// Meta storage made while one of these lives is a shape only, never counted: the scaffolding
// of a model whose parameters a file's tensors replace next. A real load builds that scaffold
// on Meta too, where the CPU's counts never see it; the planner's dry run, all on Meta, must
// not see it either. One thread's scope (models are built on one thread).
class UncountedMeta {
 public:
  UncountedMeta();
  ~UncountedMeta();
  UncountedMeta(const UncountedMeta&) = delete;
  UncountedMeta& operator=(const UncountedMeta&) = delete;
};

}  // namespace bb
