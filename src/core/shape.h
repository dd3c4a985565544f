// Shape: up to five dimensions held inline, with the element count and a printable form
// used in every error message about shapes.
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace bb {

class Shape {
 public:
  static constexpr int kMaxDims = 5;

  Shape() = default;
  explicit Shape(std::initializer_list<int64_t> dims);
  explicit Shape(const std::vector<int64_t>& dims);

  int ndim() const { return ndim_; }
  int64_t operator[](int i) const { return dims_[i < 0 ? i + ndim_ : i]; }
  int64_t& operator[](int i) { return dims_[i < 0 ? i + ndim_ : i]; }
  int64_t numel() const;
  // Product of the dims before `axis` (rows) and from `axis` on (cols).
  int64_t prod(int begin, int end) const;
  int64_t last() const { return ndim_ ? dims_[ndim_ - 1] : 1; }
  std::vector<int64_t> vec() const { return {dims_.begin(), dims_.begin() + ndim_}; }
  int normalize_axis(int axis) const;  // accepts negative axes; throws when out of range

  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::string str() const;  // "(2, 3, 4)"

 private:
  std::array<int64_t, kMaxDims> dims_{};
  int ndim_ = 0;
};

}  // namespace bb
