// model.safetensors.index.json: the weight_map and the shard file names it gives.
#include "fuzz_common.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return bb::fuzz::run([&] {
    for (const std::string& f : bb::parse_safetensors_index(bb::fuzz::bytes(data, size), "model.safetensors.index.json"))
      if (f.empty() || f.find('/') != std::string::npos || f == "..") __builtin_trap();  // must have been refused
  });
}
