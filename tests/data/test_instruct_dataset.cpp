// Instruction data: the loss mask covers completion (assistant) tokens and the end-of-turn
// token only, batches pad to their longest example, order is a seeded shuffle per epoch,
// and a line without the expected field is one FormatError naming file, line and field.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "core/error.h"
#include "data/instruct_dataset.h"
#include "../io/llm_fixtures.h"

namespace bb::test {
namespace {

TEST(InstructData, PromptCompletionMasksThePrompt) {
  ByteTokenizer tok;
  InstructExample e = encode_instruct_line(R"({"prompt": "Q: hi\n", "completion": "A: yo"})", "x:1", tok);
  ASSERT_EQ(e.ids.size(), 6u + 5u + 1u);
  EXPECT_EQ(e.ids.back(), 256);  // EOS ends the completion
  for (size_t t = 0; t < e.ids.size(); ++t) EXPECT_EQ(e.trained[t], t >= 6 ? 1 : 0) << t;
}

TEST(InstructData, ChatTrainsOnlyAssistantTurns) {
  ByteTokenizer tok;
  InstructExample e = encode_instruct_line(
      R"({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})", "x:1", tok);
  std::string text;
  std::string trained;
  for (size_t t = 0; t < e.ids.size(); ++t) {
    if (e.ids[t] < 256) text += char(e.ids[t]);
    if (e.trained[t] && e.ids[t] < 256) trained += char(e.ids[t]);
  }
  EXPECT_EQ(text, "<|user|>\nhi\n<|assistant|>\nyo");
  EXPECT_EQ(trained, "yo");
  EXPECT_EQ(e.ids.back(), 256);
  EXPECT_EQ(e.trained.back(), 1);
}

TEST(InstructData, BatchesPadAndMask) {
  ByteTokenizer tok;
  std::vector<InstructExample> ex;
  ex.push_back(encode_instruct_line(R"({"prompt": "ab", "completion": "c"})", "m:1", tok));
  ex.push_back(encode_instruct_line(R"({"prompt": "a", "completion": "bcdefg"})", "m:2", tok));
  InstructDataset data(ex, 64, 1, 256);
  Batch b = data.batch(0, 2);
  EXPECT_EQ(b.tokens.dim(1), 7);  // the longer example: 8 ids, 7 inputs
  EXPECT_EQ(b.target_count, 2 + 7);
  auto y = b.targets.to_ints();
  int64_t counted = 0;
  for (int64_t v : y) counted += v != kIgnoreIndex;
  EXPECT_EQ(counted, b.target_count);
}

TEST(InstructData, SampleIndexFixesTheExampleAndEachEpochReshuffles) {
  // Eight examples of one length whose first token names them, so rows compare without padding.
  ByteTokenizer tok;
  std::vector<InstructExample> ex;
  for (int i = 0; i < 8; ++i)
    ex.push_back(encode_instruct_line(R"({"prompt": ")" + std::string(1, char('a' + i)) + R"(", "completion": "xyz"})",
                                      "m:" + std::to_string(i + 1), tok));
  InstructDataset data(ex, 64, 9, 256);
  auto first_tokens = [&](int64_t first, int64_t count) {
    std::vector<int64_t> ids = data.batch(first, count).tokens.to_ints(), out;
    const size_t t = ids.size() / count;
    for (int64_t r = 0; r < count; ++r) out.push_back(ids[r * t]);
    return out;
  };
  // Sample i is the same example whichever batch it is asked for in (K x B reads one batch).
  const std::vector<int64_t> epoch0 = first_tokens(0, 8), epoch1 = first_tokens(8, 8);
  for (int64_t i = 0; i < 16; ++i) EXPECT_EQ(first_tokens(i, 1)[0], (i < 8 ? epoch0 : epoch1)[i % 8]) << i;
  EXPECT_EQ(first_tokens(3, 2), (std::vector<int64_t>{epoch0[3], epoch0[4]}));
  // Each epoch holds every example once, and the second is in another order.
  std::vector<int64_t> all(8);
  for (int i = 0; i < 8; ++i) all[i] = 'a' + i;
  std::vector<int64_t> s0 = epoch0, s1 = epoch1;
  std::sort(s0.begin(), s0.end());
  std::sort(s1.begin(), s1.end());
  EXPECT_EQ(s0, all);
  EXPECT_EQ(s1, all);
  EXPECT_NE(epoch0, epoch1);
  // Another seed, another order.
  InstructDataset other(ex, 64, 10, 256);
  EXPECT_NE(other.batch(0, 8).tokens.to_ints(), data.batch(0, 8).tokens.to_ints());
}

TEST(InstructData, MissingFieldNamesFileLineAndField) {
  const std::string dir = scratch_dir("jsonl");
  const std::string path = dir + "/train.jsonl";
  std::ofstream(path) << R"({"prompt": "a", "completion": "b"})" << "\n\n" << R"({"prompt": "a"})" << "\n";
  TextDataOptions o;
  o.path = path;
  o.val_fraction = 0;
  o.block_size = 32;
  ByteTokenizer tok;
  try {
    load_instruct_corpus(o, tok);
    FAIL() << "no FormatError";
  } catch (const FormatError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(path + ":3"), std::string::npos) << m;
    EXPECT_NE(m.find("'completion'"), std::string::npos) << m;
  }
  std::ofstream(path) << R"({"messages": [{"role": "user"}]})" << "\n";
  EXPECT_THROW(load_instruct_corpus(o, tok), FormatError);
}

}  // namespace
}  // namespace bb::test
