// Instruction data: JSON lines of {"prompt", "completion"} pairs or chats {"messages": [{"role",
// "content"}, ...]}. Loss is taken on completion (assistant) tokens only; examples of any
// length are padded per batch, like Documents, and served by global sample index from a
// seeded shuffle per epoch.
//
// Chat template (one line per part, no system prompt added):
//   <|system|>\n{content}\n   <|user|>\n{content}\n   <|assistant|>\n{content}<eos>
// Only the assistant's {content}<eos> is trained; without an EOS id a "\n" ends the turn.
// Prompt/completion pairs are {prompt}{completion}<eos> with {completion}<eos> trained.
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"

namespace bb {

struct InstructExample {
  std::vector<int32_t> ids;
  std::vector<uint8_t> trained;  // trained[t]: predicting ids[t] takes a loss
};

// Tokenises one JSON line (already parsed) into an example; FormatError naming `where`
// ("file:line") and the missing field.
InstructExample encode_instruct_line(const std::string& line, const std::string& where, const Tokenizer& tok);

class InstructDataset final : public Dataset {
 public:
  InstructDataset(std::vector<InstructExample> examples, int64_t block_size, uint64_t seed, int64_t pad_id);
  Batch batch(int64_t first, int64_t count) const override;
  int64_t size() const override { return static_cast<int64_t>(examples_.size()); }

 private:
  const InstructExample& example(int64_t sample) const;
  std::vector<InstructExample> examples_;
  int64_t block_;
  int64_t pad_;
  EpochOrder order_;
};

// Reads a .jsonl file (or a folder of them, in name order) into train and validation parts.
TextCorpus load_instruct_corpus(const TextDataOptions& o, const Tokenizer& tok);

}  // namespace bb
