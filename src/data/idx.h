// IDX files (the MNIST family's format: a big-endian header of magic, type and dimensions,
// then unsigned bytes), plain or gzip-compressed, and the Fashion-MNIST layout of them.
// Every inconsistency is a FormatError naming the file and what is wrong.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/image_dataset.h"

namespace bb {

struct IdxArray {
  std::vector<int64_t> dims;  // (N, H, W) for images, (N) for labels
  std::vector<uint8_t> data;  // row-major, prod(dims) bytes
};

// Reads an IDX file of unsigned bytes (type 0x08), 1 to 4 dimensions.
IdxArray read_idx(const std::string& path);
// The same from the file's (decompressed) bytes; `path` names it in errors.
IdxArray parse_idx(const std::string& raw, const std::string& path);

// The Fashion-MNIST split ("train" or "t10k") under `dir`, as 28x28x1 images with labels
// 0..9; checks that images and labels agree in count and range.
ImageSet load_fashion_mnist(const std::string& dir, const std::string& split);

// The ten Fashion-MNIST class names, in label order.
const std::vector<std::string>& fashion_mnist_classes();

}  // namespace bb
