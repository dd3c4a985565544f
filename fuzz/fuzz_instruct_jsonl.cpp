// Instruction data: each line of the input as one JSON line of a .jsonl file, tokenised with
// the byte tokenizer into ids and a loss mask.
#include <sstream>

#include "data/instruct_dataset.h"
#include "data/tokenizer.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bb::ByteTokenizer tok;
  std::istringstream lines(bb::fuzz::bytes(data, size));
  std::string line;
  for (int n = 1; std::getline(lines, line); ++n)
    bb::fuzz::run([&] {
      bb::InstructExample e = bb::encode_instruct_line(line, "data.jsonl:" + std::to_string(n), tok);
      if (e.ids.size() != e.trained.size()) __builtin_trap();
    });
  return 0;
}
