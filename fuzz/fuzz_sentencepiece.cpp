// A SentencePiece tokenizer.model (Llama's), loaded through libsentencepiece, and a round of
// encoding and decoding.
#include "data/sentencepiece_tokenizer.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = bb::fuzz::scratch_file("tokenizer.model", bb::fuzz::bytes(data, size));
  return bb::fuzz::run([&] {
    bb::SentencePieceTokenizer tok(path);
    const std::vector<int64_t> ids = tok.encode("Hello world, it's 2024! \xc3\xa9t\xc3\xa9");
    (void)tok.decode(ids);
    (void)tok.token_id("</s>");
  });
}
