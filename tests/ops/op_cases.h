// The op test table shared by test_ops_cases.cpp (which declares every case once) and
// test_ops_harness.cpp (which runs each case against its PyTorch fixture and a finite-
// difference gradient check). Fixtures come from scripts/make_fixtures.py.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace bb::test {

// The op's scalar attributes, read from the fixture's __metadata__ so that the C++ call and
// the PyTorch reference cannot disagree about them.
class Attrs {
 public:
  explicit Attrs(std::map<std::string, std::string> m) : m_(std::move(m)) {}
  const std::string& str(const std::string& key) const;  // throws naming a missing key
  double f(const std::string& key) const { return std::stod(str(key)); }
  int64_t i(const std::string& key) const { return std::stoll(str(key)); }
  std::vector<int64_t> ints(const std::string& key) const;  // "2,0,1"

 private:
  std::map<std::string, std::string> m_;
};

// Builds the op's outputs from the fixture's inputs in.0, in.1, ... (in file dtype).
using OpFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& in, const Attrs& a)>;

// Normwise tolerances: a result passes when max|got - want| <= rtol * max(max|want|, 1e-6),
// i.e. an absolute error bound scaled by the reference's largest magnitude (so elements near
// zero do not demand impossible relative accuracy).
struct Tol {
  double out = 1e-5;
  double grad = 1e-5;
};
inline constexpr Tol kF32{1e-5, 1e-5};
// bf16 keeps 8 significant bits (one ulp is 2^-8 ~ 3.9e-3 relative): the stored inputs are
// exact, but outputs and the gradients that flow through bf16 buffers are rounded a few times.
inline constexpr Tol kBF16{2e-2, 2e-2};

struct OpCase {
  std::string name;       // fixture tests/fixtures/ops/<name>.safetensors
  OpFn fn;
  std::vector<int> grads; // inputs that require gradients (the fixture holds grad.i for each)
  Tol tol = kF32;
};

std::vector<OpCase> op_cases();

// GoogleTest names a failing case by this rather than by its bytes.
inline void PrintTo(const OpCase& c, std::ostream* os) { *os << c.name; }

}  // namespace bb::test
