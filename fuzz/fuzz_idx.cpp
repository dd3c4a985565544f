// IDX files (the Fashion-MNIST format), plain or gzip-compressed, read from a file as the
// dataset loader reads them.
#include "data/idx.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = bb::fuzz::scratch_file("images-idx3-ubyte", bb::fuzz::bytes(data, size));
  return bb::fuzz::run([&] {
    bb::IdxArray a = bb::read_idx(path);
    uint64_t total = 1;
    for (int64_t d : a.dims) total *= static_cast<uint64_t>(d);
    if (total != a.data.size()) __builtin_trap();  // must have been refused
  });
}
