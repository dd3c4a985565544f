// The IDX reader and the Fashion-MNIST loader built on it.
#include "data/idx.h"

#include <fmt/format.h>

#include <filesystem>

#include "core/error.h"
#include "data/gzip_file.h"

namespace bb {
namespace fs = std::filesystem;

namespace {

uint32_t be32(const std::string& s, size_t at) {
  auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(s[at + i])); };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

}  // namespace

IdxArray read_idx(const std::string& path) { return parse_idx(read_maybe_gzip(path), path); }

IdxArray parse_idx(const std::string& raw, const std::string& path) {
  if (raw.size() < 4) throw FormatError(fmt::format("{} is too short for an IDX header ({} bytes)", path, raw.size()));
  if (raw[0] != 0 || raw[1] != 0)
    throw FormatError(fmt::format("{} is not an IDX file: its magic number 0x{:08x} does not start with two zero bytes",
                                  path, be32(raw, 0)));
  const uint8_t type = static_cast<uint8_t>(raw[2]);
  const int ndim = static_cast<uint8_t>(raw[3]);
  if (type != 0x08)
    throw FormatError(fmt::format("{} holds IDX type 0x{:02x}; only unsigned bytes (0x08) are read", path, type));
  if (ndim < 1 || ndim > 4)
    throw FormatError(fmt::format("{} declares {} dimensions; 1 to 4 are read", path, ndim));
  const size_t header = 4 + 4 * static_cast<size_t>(ndim);
  if (raw.size() < header)
    throw FormatError(fmt::format("{} ends inside its header ({} of {} bytes)", path, raw.size(), header));
  IdxArray a;
  uint64_t total = 1;
  for (int i = 0; i < ndim; ++i) {
    const uint32_t d = be32(raw, 4 + 4 * i);
    if (d == 0 || d > (1u << 30)) throw FormatError(fmt::format("{}: dimension {} is {}", path, i, d));
    a.dims.push_back(d);
    total *= d;
    if (total > (uint64_t{1} << 40)) throw FormatError(fmt::format("{}: the declared dimensions are too large", path));
  }
  if (raw.size() - header != total)
    throw FormatError(fmt::format("{}: dimensions declare {} bytes of data but the file holds {}", path, total,
                                  raw.size() - header));
  a.data.assign(raw.begin() + header, raw.end());
  return a;
}

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

ImageSet load_fashion_mnist(const std::string& dir, const std::string& split) {
  // Debian ships the gzip files; an unpacked copy is read too.
  auto find = [&](const std::string& stem) {
    for (const std::string& name : {stem + ".gz", stem})
      if (fs::exists(fs::path(dir) / name)) return (fs::path(dir) / name).string();
    throw FormatError(fmt::format("{} has no {}(.gz): data.path must name the Fashion-MNIST folder "
                                  "(apt-get install dataset-fashion-mnist puts it in /usr/share/datasets/fashion-mnist)",
                                  dir, stem));
  };
  const std::string img_path = find(split + "-images-idx3-ubyte");
  const std::string lab_path = find(split + "-labels-idx1-ubyte");
  IdxArray images = read_idx(img_path), labels = read_idx(lab_path);
  if (images.dims.size() != 3)
    throw FormatError(fmt::format("{} has {} dimensions; images want 3 (N, H, W)", img_path, images.dims.size()));
  if (labels.dims.size() != 1)
    throw FormatError(fmt::format("{} has {} dimensions; labels want 1 (N)", lab_path, labels.dims.size()));
  if (labels.dims[0] != images.dims[0])
    throw FormatError(fmt::format("{} holds {} labels but {} holds {} images", lab_path, labels.dims[0], img_path,
                                  images.dims[0]));
  ImageSet s;
  s.count = images.dims[0];
  s.height = images.dims[1];
  s.width = images.dims[2];
  s.channels = 1;
  s.pixels = std::move(images.data);
  s.classes = fashion_mnist_classes();
  s.labels.reserve(s.count);
  for (int64_t i = 0; i < s.count; ++i) {
    const uint8_t l = labels.data[i];
    if (l >= s.classes.size())
      throw FormatError(fmt::format("{}: label {} of sample {} is not a class (0..9)", lab_path, l, i));
    s.labels.push_back(l);
  }
  s.source = dir;
  return s;
}

}  // namespace bb
