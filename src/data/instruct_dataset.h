// Instruction data: JSON lines of {"prompt", "completion"} pairs or chats {"messages": [{"role",
// "content"}, ...]}. Loss is taken on completion (assistant) tokens only; examples of any
// length are padded per batch, like Documents, and served by global sample index from a
// seeded shuffle per epoch.
//
// Chats are rendered with the model's chat template (data/chat_format.h) when it has one;
// otherwise with bigbatch's own format, one line per part, no system prompt added:
//   <|system|>\n{content}\n   <|user|>\n{content}\n   <|assistant|>\n{content}<eos>
// Only the assistant's {content}<eos> is trained (every part under data.train_on=all); without
// an EOS id a "\n" ends the turn. Prompt/completion pairs are {prompt}{completion}<eos> with
// {completion}<eos> trained. BOS goes first when the tokenizer adds it.
#pragma once
#include <string>
#include <vector>

#include "data/chat_format.h"
#include "data/dataset.h"

namespace bb {

struct InstructExample {
  std::vector<int32_t> ids;
  std::vector<uint8_t> trained;  // trained[t]: predicting ids[t] takes a loss
};

struct InstructEncoding {
  ChatFormat chat;  // no template: bigbatch's own format
  TrainOn train_on = TrainOn::Assistant;
};

// Tokenises one JSON line into an example; FormatError naming `where` ("file:line") and the
// missing field, or what the chat template refused.
InstructExample encode_instruct_line(const std::string& line, const std::string& where, const Tokenizer& tok,
                                     const InstructEncoding& encoding = {});

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

// Reads a .jsonl file (or a folder of them, in name order) into train and validation parts,
// chats in the format o.tokenizer_dir and o.chat_template name. FormatError naming the file
// and line for an example longer than o.block_size + 1 tokens (it would lose its end).
TextCorpus load_instruct_corpus(const TextDataOptions& o, const Tokenizer& tok);

}  // namespace bb
