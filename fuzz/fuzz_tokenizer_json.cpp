// A tokenizers-library tokenizer.json (byte-level BPE), the tokenizer built from it, and a
// round of encoding and decoding (added tokens included).
#include "data/bpe_tokenizer.h"
#include "data/tokenizer_files.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return bb::fuzz::run([&] {
    bb::BpeTokenizer tok(bb::parse_tokenizer_json(bb::fuzz::bytes(data, size), "tokenizer.json"));
    const std::vector<int64_t> ids = tok.encode("Hello world, it's 2024! \xc3\xa9t\xc3\xa9 <|endoftext|><s>");
    (void)tok.decode(ids);
  });
}
