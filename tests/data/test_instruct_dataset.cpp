// Instruction data: the loss mask covers completion (assistant) tokens and the end-of-turn
// token only, batches pad to their longest example, order is a seeded shuffle per epoch,
// and a line without the expected field is one FormatError naming file, line and field.
#include <gtest/gtest.h>

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
  // Same sample index, same example; a later epoch reshuffles all of them.
  EXPECT_EQ(data.batch(1, 1).tokens.to_ints(), data.batch(1, 1).tokens.to_ints());
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
