// Checks that a call throws one error of the expected type whose message names every given
// word (the file, the field or tensor, the bad value): the quality bar of every parser.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "core/error.h"

namespace bb::test {

template <class E = FormatError>
void expect_error_naming(const std::function<void()>& f, const std::vector<std::string>& words) {
  try {
    f();
    ADD_FAILURE() << "no error thrown; expected one naming " << (words.empty() ? "" : words[0]);
  } catch (const E& e) {
    for (const auto& w : words)
      EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what() << " -- lacks: " << w;
  }
}

}  // namespace bb::test
