// Shape construction with range checks and its printable form.
#include "core/shape.h"

#include <fmt/format.h>

#include "core/error.h"

namespace bb {

Shape::Shape(std::initializer_list<int64_t> dims) : Shape(std::vector<int64_t>(dims)) {}

Shape::Shape(const std::vector<int64_t>& dims) {
  if (dims.size() > kMaxDims)
    throw ShapeError(fmt::format("a tensor has at most {} dims, got {}", kMaxDims, dims.size()));
  for (int64_t d : dims)
    if (d < 0) throw ShapeError(fmt::format("negative dimension {} in a shape", d));
  ndim_ = static_cast<int>(dims.size());
  for (int i = 0; i < ndim_; ++i) dims_[i] = dims[i];
}

int64_t Shape::numel() const { return prod(0, ndim_); }

int64_t Shape::prod(int begin, int end) const {
  int64_t n = 1;
  for (int i = begin; i < end; ++i) n *= dims_[i];
  return n;
}

int Shape::normalize_axis(int axis) const {
  int a = axis < 0 ? axis + ndim_ : axis;
  if (a < 0 || a >= ndim_)
    throw ShapeError(fmt::format("axis {} is out of range for shape {}", axis, str()));
  return a;
}

bool Shape::operator==(const Shape& o) const {
  if (ndim_ != o.ndim_) return false;
  for (int i = 0; i < ndim_; ++i)
    if (dims_[i] != o.dims_[i]) return false;
  return true;
}

std::string Shape::str() const {
  std::string s = "(";
  for (int i = 0; i < ndim_; ++i) s += (i ? ", " : "") + std::to_string(dims_[i]);
  return s + ")";
}

}  // namespace bb
