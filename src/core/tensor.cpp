// Tensor construction, views and element access.
#include "core/tensor.h"

#include <fmt/format.h>

#include <cstring>

#include "core/block_quant.h"
#include "core/error.h"

namespace bb {

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  return empty(shape, dtype, device, CategoryScope::current());
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device, Category category) {
  // A block-quantized tensor is a matrix whose rows are whole blocks.
  if (is_block_quantized(dtype) && (shape.ndim() == 0 || shape[shape.ndim() - 1] % kQuantBlock != 0))
    throw ShapeError(fmt::format("a {} tensor needs rows of a multiple of {} values, got {}", dtype_name(dtype),
                                 kQuantBlock, shape.str()));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(storage_bytes(dtype, shape.numel()), category, device);
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  if (void* p = t.raw()) std::memset(p, 0, t.nbytes());
  return t;
}

Tensor Tensor::full(const Shape& shape, float value, DType dtype, Device device) {
  if (device == Device::Meta) return empty(shape, dtype, device);
  return from_floats(shape, std::vector<float>(shape.numel(), value), dtype);
}

Tensor Tensor::from_floats(const Shape& shape, const std::vector<float>& values, DType dtype) {
  if (int64_t(values.size()) != shape.numel())
    throw ShapeError(fmt::format("{} values do not fill shape {}", values.size(), shape.str()));
  Tensor t = empty(shape, dtype);
  int64_t n = shape.numel();
  switch (dtype) {
    case DType::F32: std::memcpy(t.raw(), values.data(), n * 4); break;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) t.data<uint16_t>()[i] = f32_to_bf16(values[i]);
      break;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) t.data<uint16_t>()[i] = f32_to_f16(values[i]);
      break;
    case DType::I32:
      for (int64_t i = 0; i < n; ++i) t.data<int32_t>()[i] = static_cast<int32_t>(values[i]);
      break;
    case DType::I64:
      for (int64_t i = 0; i < n; ++i) t.data<int64_t>()[i] = static_cast<int64_t>(values[i]);
      break;
    case DType::Q8_0:
    case DType::Q4_0: quantize_blocks(dtype, values.data(), n, t.data<uint8_t>()); break;
  }
  return t;
}

Tensor Tensor::from_ints(const Shape& shape, const std::vector<int64_t>& values, DType dtype) {
  if (int64_t(values.size()) != shape.numel())
    throw ShapeError(fmt::format("{} values do not fill shape {}", values.size(), shape.str()));
  if (dtype != DType::I32 && dtype != DType::I64)
    throw ShapeError(fmt::format("from_ints wants i32 or i64, not {}", dtype_name(dtype)));
  Tensor t = empty(shape, dtype);
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::I64) t.data<int64_t>()[i] = values[i];
    else t.data<int32_t>()[i] = static_cast<int32_t>(values[i]);
  }
  return t;
}

void* Tensor::raw() const {
  void* base = impl_->storage->data();
  return base ? static_cast<char*>(base) + impl_->offset : nullptr;
}

std::vector<float> Tensor::to_floats() const {
  if (is_meta()) throw ShapeError("a meta tensor has no values to read");
  int64_t n = numel();
  std::vector<float> out(n);
  if (is_block_quantized(dtype())) {
    dequantize_blocks(dtype(), data<uint8_t>(), n, out.data());
    return out;
  }
  for (int64_t i = 0; i < n; ++i) {
    switch (dtype()) {
      case DType::F32: out[i] = data<float>()[i]; break;
      case DType::BF16: out[i] = bf16_to_f32(data<uint16_t>()[i]); break;
      case DType::F16: out[i] = f16_to_f32(data<uint16_t>()[i]); break;
      case DType::I32: out[i] = static_cast<float>(data<int32_t>()[i]); break;
      case DType::I64: out[i] = static_cast<float>(data<int64_t>()[i]); break;
      case DType::Q8_0:
      case DType::Q4_0: break;  // decoded above
    }
  }
  return out;
}

std::vector<int64_t> Tensor::to_ints() const {
  if (dtype() == DType::I64) return {data<int64_t>(), data<int64_t>() + numel()};
  if (dtype() == DType::I32) return {data<int32_t>(), data<int32_t>() + numel()};
  std::vector<float> f = to_floats();
  return {f.begin(), f.end()};
}

float Tensor::item() const {
  if (numel() != 1)
    throw ShapeError(fmt::format("item() needs a single element, the tensor is {}", desc()));
  return to_floats()[0];
}

Tensor Tensor::view(const std::vector<int64_t>& dims) const {
  std::vector<int64_t> d = dims;
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < d.size(); ++i) {
    if (d[i] == -1) {
      if (infer >= 0) throw ShapeError("a view takes at most one -1");
      infer = static_cast<int>(i);
    } else {
      known *= d[i];
    }
  }
  if (infer >= 0 && known > 0) d[infer] = numel() / known;
  Shape s(d);
  if (s.numel() != numel())
    throw ShapeError(fmt::format("a view of {} as {} changes the element count", shape().str(),
                                 s.str()));
  if (is_block_quantized(dtype()) && (s.ndim() == 0 || s[s.ndim() - 1] % kQuantBlock != 0))
    throw ShapeError(fmt::format("a view of {} as {} splits its {}-value blocks", desc(), s.str(), kQuantBlock));
  Tensor t = detach();
  t.impl_->shape = s;
  return t;
}

Tensor Tensor::narrow_rows(int64_t start, int64_t count) const {
  if (ndim() == 0 || start < 0 || count < 0 || start + count > dim(0))
    throw ShapeError(fmt::format("rows [{}, {}) are outside {}", start, start + count, desc()));
  Tensor t = detach();
  int64_t row = shape().prod(1, ndim());
  t.impl_->offset += storage_bytes(dtype(), start * row);
  t.impl_->shape[0] = count;
  return t;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->offset = impl_->offset;
  impl->shape = impl_->shape;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::clone() const { return clone(category()); }

Tensor Tensor::clone(Category category) const {
  Tensor t = empty(shape(), dtype(), device(), category);
  if (!is_meta()) std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

Tensor Tensor::grad() const {
  Tensor g(impl_->grad);
  if (impl_->grad_zeroed) {
    if (!g.is_meta()) std::memset(g.raw(), 0, g.nbytes());  // f32 +0 is all zero bits
    impl_->grad_zeroed = false;
  }
  return g;
}

Tensor& Tensor::set_requires_grad(bool on) {
  impl_->requires_grad = on;
  return *this;
}

std::string Tensor::desc() const {
  if (!defined()) return "undefined";
  return fmt::format("{} {}", dtype_name(dtype()), shape().str());
}

}  // namespace bb
