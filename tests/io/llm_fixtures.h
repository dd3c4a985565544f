// Shared helpers for the language-model I/O tests: the Hub-layout fixtures written by
// scripts/make_llm_fixtures.py, scratch folders, and tensor comparisons.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>

#include "core/tensor.h"
#include "io/safetensors.h"

namespace bb::test {

inline std::string llm_fixture(const std::string& name) { return std::string(BIGBATCH_FIXTURES) + "/llm/" + name; }

// A fresh empty folder under the temp dir, named after the running test.
inline std::string scratch_dir(const std::string& tag) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  auto p = std::filesystem::temp_directory_path() /
           ("bb_llm_" + std::string(info->test_suite_name()) + "_" + info->name() + "_" + tag);
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

// max |a - b| / max |b|
inline double max_rel_error(const Tensor& a, const Tensor& b) {
  auto x = a.to_floats(), y = b.to_floats();
  EXPECT_EQ(x.size(), y.size());
  double d = 0, s = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    d = std::max(d, std::abs(double(x[i]) - y[i]));
    s = std::max(s, std::abs(double(y[i])));
  }
  return s > 0 ? d / s : d;
}

inline bool bit_identical(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

}  // namespace bb::test
