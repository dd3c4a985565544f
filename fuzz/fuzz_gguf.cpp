// GGUF files: the header (typed key-values, arrays, tensor infos, alignment, offsets), every
// tensor's values, and the model import (hyperparameters, shapes, name mapping) that
// model.init=FILE.gguf runs.
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
    (void)bb::load_gguf_causal_lm(path);
  });
}
