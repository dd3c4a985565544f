// A SentencePiece-style tokenizer.json (Llama 2's layout, Metaspace, Gemma's), the tokenizer
// built from it, and a round of encoding (with byte offsets) and decoding.
#include "data/metaspace_bpe.h"
#include "data/tokenizer_files.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return bb::fuzz::run([&] {
    bb::MetaspaceBpeTokenizer tok(bb::parse_metaspace_json(bb::fuzz::bytes(data, size), "tokenizer.json"));
    std::vector<size_t> starts;
    const std::vector<int64_t> ids =
        tok.encode_with_starts("  Hello world, it's 2024! \xc3\xa9t\xc3\xa9 \xe2\x98\x83<s>x</s>  ", starts);
    (void)tok.decode(ids);
  });
}
