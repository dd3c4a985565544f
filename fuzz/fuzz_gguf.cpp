// GGUF files: the header (typed key-values, arrays, tensor infos, alignment, offsets), every
// tensor's values, the model import (hyperparameters, shapes, name mapping) that
// model.init=FILE.gguf runs, and its tokenizer import (BPE merges, SentencePiece pieces).
#include "fuzz_common.h"
#include "io/gguf_import.h"
#include "io/gguf_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return bb::fuzz::run([&] {
    {
      bb::gguf::Reader r(data, size, "input.gguf");
      for (const bb::gguf::TensorInfo& t : r.tensors()) (void)r.values(t);
    }
    const std::string path = bb::fuzz::scratch_file("model.gguf", bb::fuzz::bytes(data, size));
    try {
      (void)bb::gguf_tokenizer(path)->encode("The quick brown fox's 12 jumps.\n");
    } catch (const bb::Error&) {  // a tokenizer refused is an answer too; the model import runs on
    }
    (void)bb::load_gguf_causal_lm(path);
  });
}
