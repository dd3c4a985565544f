// GPT-2's vocab.json + merges.txt (the input holds both, split at its first NUL byte), the
// tokenizer built from them, and a round of encoding and decoding.
#include "data/bpe_tokenizer.h"
#include "data/tokenizer_files.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in = bb::fuzz::bytes(data, size);
  const size_t nul = in.find('\0');
  const std::string vocab = in.substr(0, nul), merges = nul == std::string::npos ? "" : in.substr(nul + 1);
  return bb::fuzz::run([&] {
    bb::BpeTokenizer tok(bb::parse_vocab_merges(vocab, merges, "vocab.json", "merges.txt"));
    const std::vector<int64_t> ids = tok.encode("Hello world, it's 2024! \xc3\xa9t\xc3\xa9 <|endoftext|>");
    (void)tok.decode(ids);
  });
}
