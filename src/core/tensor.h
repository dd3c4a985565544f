// Tensor: a shared handle to contiguous data (shape, dtype, device, storage offset) plus
// the autograd fields (requires_grad, grad, the node that made it). Reshape is a view;
// every other layout change is an explicit copy made by an op.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/dtype.h"
#include "core/shape.h"
#include "core/storage.h"

namespace bb {

struct Node;
class Tensor;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  size_t offset = 0;  // bytes into storage
  Shape shape;
  DType dtype = DType::F32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // fp32 accumulator of a leaf (parameter)
  bool grad_zeroed = false;          // grad's contents stand for zeros (Tensor::zero_grad)
  std::shared_ptr<Node> grad_fn;     // the op that produced this tensor, if recorded
  int output_nr = 0;                 // which output of grad_fn this is
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // New uninitialised tensor; counted under `category` (the current CategoryScope when
  // not given).
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor empty(const Shape& shape, DType dtype, Device device, Category category);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor full(const Shape& shape, float value, DType dtype = DType::F32,
                     Device device = Device::CPU);
  static Tensor from_floats(const Shape& shape, const std::vector<float>& values,
                            DType dtype = DType::F32);
  static Tensor from_ints(const Shape& shape, const std::vector<int64_t>& values,
                          DType dtype = DType::I64);
  static Tensor scalar(float value) { return from_floats(Shape{}, {value}); }

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl_->shape; }
  int64_t dim(int i) const { return impl_->shape[i]; }
  int ndim() const { return impl_->shape.ndim(); }
  int64_t numel() const { return impl_->shape.numel(); }
  DType dtype() const { return impl_->dtype; }
  Device device() const { return impl_->storage->device(); }
  Category category() const { return impl_->storage->category(); }
  size_t nbytes() const { return storage_bytes(dtype(), numel()); }
  bool is_meta() const { return device() == Device::Meta; }

  void* raw() const;  // nullptr on meta
  template <typename T>
  T* data() const { return static_cast<T*>(raw()); }

  // Element values converted to float / int64 (copies; for tests, I/O and small reads).
  std::vector<float> to_floats() const;
  std::vector<int64_t> to_ints() const;
  float item() const;  // the one element of a single-element tensor

  // A view with the same storage and no autograd history; -1 in one place is inferred.
  // ops::reshape is the recorded form that models use.
  Tensor view(const std::vector<int64_t>& dims) const;
  // Rows [start, start + count) of the first dim, as a view without history.
  Tensor narrow_rows(int64_t start, int64_t count) const;
  // The same data without autograd history (shares storage).
  Tensor detach() const;
  // A deep copy into a new storage (no autograd history), optionally in another category.
  Tensor clone() const;
  Tensor clone(Category category) const;

  bool requires_grad() const { return impl_->requires_grad; }
  Tensor& set_requires_grad(bool on);
  // The leaf's gradient (zeros when zero_grad was the last thing done to it).
  Tensor grad() const;
  void set_grad(const Tensor& g) {
    impl_->grad = g.impl_;
    impl_->grad_zeroed = false;
  }
  // Makes the gradient zero without writing it: the next gradient accumulated into it is
  // copied over it (one pass over the buffer instead of a fill and an add, each step), and a
  // read before that writes the zeros first.
  void zero_grad() {
    if (impl_->grad) impl_->grad_zeroed = true;
  }
  const std::shared_ptr<Node>& grad_fn() const { return impl_->grad_fn; }
  bool is_leaf() const { return impl_->grad_fn == nullptr; }

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

  std::string desc() const;  // "f32 (2, 3)" for messages

 private:
  std::shared_ptr<TensorImpl> impl_;
};

}  // namespace bb
