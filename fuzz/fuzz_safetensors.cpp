// safetensors files: the header (JSON, dtypes, shapes, data offsets) and reading every
// tensor, as stored and as f32, checking its values are finite as the weight loaders do.
#include "fuzz_common.h"
#include "io/hf_weights.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = bb::fuzz::scratch_file("model.safetensors", bb::fuzz::bytes(data, size));
  return bb::fuzz::run([&] {
    bb::SafetensorsFile file(path);
    for (const std::string& name : file.names()) {
      bb::Tensor stored = file.get(name, bb::Category::Workspace);
      bb::require_finite(stored, name, path);
      bb::Tensor f32 = file.get(name, bb::DType::F32, bb::Category::Workspace);
      (void)f32;
    }
  });
}
