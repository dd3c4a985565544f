// Hugging Face config.json of GPT-2 and Llama, and building the model it describes on the
// meta device (shapes and accounting only), as `bigbatch plan` does.
#include "fuzz_common.h"
#include "io/hf_gpt2.h"
#include "io/hf_llama.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = bb::fuzz::bytes(data, size);
  bb::fuzz::run([&] {
    bb::GPT2 model(bb::parse_gpt2_config(text, "config.json"), 0, bb::Device::Meta);
  });
  return bb::fuzz::run([&] {
    bb::Llama model(bb::parse_llama_config(text, "config.json"), 0, bb::Device::Meta);
  });
}
