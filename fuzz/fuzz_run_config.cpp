// The YAML run configuration (src/train/config.cpp): keys, types and the range checks.
#include "fuzz_common.h"
#include "train/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return bb::fuzz::run([&] {
    bb::RunConfig cfg;
    bb::apply_yaml(cfg, bb::fuzz::bytes(data, size), "config.yaml");
    bb::validate(cfg);
    (void)bb::to_yaml(cfg);
  });
}
