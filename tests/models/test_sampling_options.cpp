// Sampling options out of range are refused by name before any token is drawn: a negative or
// nan temperature, a negative top_k, a top_p outside (0, 1].
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "models/sampling.h"

namespace bb::test {
namespace {

std::string refusal(SamplingOptions o) {
  try {
    check_sampling_options(o);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(SamplingOptions, OutOfRangeIsRefusedByName) {
  SamplingOptions ok;
  EXPECT_EQ(refusal(ok), "");
  for (float t : {-0.1f, NAN}) {
    SamplingOptions o;
    o.temperature = t;
    EXPECT_NE(refusal(o).find("temperature"), std::string::npos) << t;
  }
  SamplingOptions k;
  k.top_k = -1;
  EXPECT_NE(refusal(k).find("top_k"), std::string::npos);
  for (float p : {0.0f, -0.5f, 1.5f, NAN}) {
    SamplingOptions o;
    o.top_p = p;
    EXPECT_NE(refusal(o).find("top_p"), std::string::npos) << p;
  }
  SamplingOptions greedy;
  greedy.temperature = 0;
  greedy.top_p = 1;
  EXPECT_EQ(refusal(greedy), "");
  // generate() checks before the first call for logits.
  int calls = 0;
  SamplingOptions bad;
  bad.top_p = 0;
  EXPECT_THROW(generate([&](const std::vector<int64_t>&) { ++calls; return std::vector<float>(4, 0.f); }, {1}, bad, 8),
               ConfigError);
  EXPECT_EQ(calls, 0);
}

TEST(SamplingOptions, OnTokenSeesEachTokenAsItIsChosen) {
  SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = 5;
  o.stop_ids = {3};
  int step = 0;
  std::vector<int64_t> seen;
  // Greedy picks token 1, 2, then 3 (EOS): on_token sees 1 and 2, in order, before the next call.
  auto next = [&](const std::vector<int64_t>& ctx) {
    EXPECT_EQ(seen.size(), ctx.size() - 1);  // every token chosen so far was already handed over
    std::vector<float> l(4, 0.f);
    l[++step] = 1.f;
    return l;
  };
  std::vector<int64_t> out = generate(next, {0}, o, 16, [&](int64_t t) { seen.push_back(t); });
  EXPECT_EQ(seen, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(out, (std::vector<int64_t>{0, 1, 2}));
}

TEST(SamplingOptions, AnyStopIdEndsGeneration) {
  // Llama 3 ends a turn with <|eot_id|> and a text with <|end_of_text|>: either stops it.
  for (int64_t stop : {2, 3}) {
    SamplingOptions o;
    o.temperature = 0;
    o.max_new_tokens = 8;
    o.stop_ids = {stop == 2 ? int64_t{2} : int64_t{7}, stop == 3 ? int64_t{3} : int64_t{6}};
    int step = 0;
    auto next = [&](const std::vector<int64_t>&) {
      std::vector<float> l(8, 0.f);
      l[++step] = 1.f;  // greedy picks 1, 2, 3, ...
      return l;
    };
    std::vector<int64_t> out = generate(next, {0}, o, 16);
    std::vector<int64_t> expected;
    for (int64_t t = 0; t < stop; ++t) expected.push_back(t);
    EXPECT_EQ(out, expected) << "stop id " << stop;
  }
}

}  // namespace
}  // namespace bb::test
