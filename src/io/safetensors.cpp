// safetensors reading (mmap + validation) and writing (atomic), single and sharded.
#include "io/safetensors.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "core/error.h"
#include "io/atomic_file.h"

namespace bb {

using nlohmann::json;
namespace fs = std::filesystem;

struct SafetensorsFile::Mapping {
  void* base = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (base && size) munmap(base, size);
  }
};

DType safetensors_dtype(const std::string& code, const std::string& file,
                        const std::string& tensor) {
  if (code == "F32") return DType::F32;
  if (code == "BF16") return DType::BF16;
  if (code == "F16") return DType::F16;
  if (code == "I32") return DType::I32;
  if (code == "I64") return DType::I64;
  throw FormatError(fmt::format("{}: tensor '{}' has dtype '{}', which is not supported "
                                "(F32, BF16, F16, I32, I64)", file, tensor, code));
}

void release_mapped_pages(const Tensor& t) {
  if (!t.defined() || t.is_meta() || !t.impl()->storage->external()) return;
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(t.raw()), end = begin + t.nbytes();
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;  // whole pages inside
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

std::string safetensors_code(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::BF16: return "BF16";
    case DType::F16: return "F16";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::Q8_0:
    case DType::Q4_0: break;  // no safetensors dtype: save_safetensors refuses them
  }
  return "?";
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path), map_(std::make_shared<Mapping>()) {
  // Non-blocking, so that a FIFO given as a weights file is refused rather than waited on.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw FormatError(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw FormatError(fmt::format("{} is not a regular file", path));
  }
  map_->size = static_cast<size_t>(st.st_size);
  if (map_->size < 8) {
    ::close(fd);
    throw FormatError(fmt::format("{} is too short to be a safetensors file ({} bytes)", path, map_->size));
  }
  // Private and writable: a tensor used in place can be trained, its pages copied on write,
  // and the file itself never changes.
  map_->base = mmap(nullptr, map_->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map_->base == MAP_FAILED) {
    map_->base = nullptr;
    throw FormatError(fmt::format("cannot map {}: {}", path, std::strerror(errno)));
  }
  const auto* bytes = static_cast<const unsigned char*>(map_->base);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | bytes[i];
  if (hlen > map_->size - 8)
    throw FormatError(fmt::format("{}: header length {} is past the end of the file ({} bytes)",
                                  path, hlen, map_->size));
  json header;
  try {
    header = json::parse(bytes + 8, bytes + 8 + hlen);
  } catch (const std::exception& e) {
    throw FormatError(fmt::format("{}: the header is not valid JSON ({})", path, e.what()));
  }
  if (!header.is_object()) throw FormatError(fmt::format("{}: the header is not a JSON object", path));
  const size_t data_size = map_->size - 8 - hlen;
  std::vector<std::pair<size_t, size_t>> ranges;
  for (auto& [name, v] : header.items()) {
    if (name == "__metadata__") {
      if (v.is_object())
        for (auto& [k, m] : v.items())
          if (m.is_string()) metadata_[k] = m.get<std::string>();
      continue;
    }
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets") ||
        !v["dtype"].is_string() || !v["shape"].is_array() || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2)
      throw FormatError(fmt::format("{}: tensor '{}' lacks dtype, shape or data_offsets", path, name));
    SafetensorsEntry e;
    e.dtype = safetensors_dtype(v["dtype"].get<std::string>(), path, name);
    std::vector<int64_t> dims;
    for (auto& d : v["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0)
        throw FormatError(fmt::format("{}: tensor '{}' has a bad shape {}", path, name, v["shape"].dump()));
      dims.push_back(d.get<int64_t>());
    }
    if (dims.size() > Shape::kMaxDims)
      throw FormatError(fmt::format("{}: tensor '{}' has {} dims (at most {})", path, name, dims.size(), Shape::kMaxDims));
    // Checked products: a shape such as (2^62, 4) must not wrap around to a small size.
    uint64_t want = dtype_size(e.dtype);
    for (int64_t d : dims)
      if (__builtin_mul_overflow(want, static_cast<uint64_t>(d), &want))
        throw FormatError(fmt::format("{}: tensor '{}' has shape {}, whose size overflows", path, name,
                                      v["shape"].dump()));
    e.shape = Shape(dims);
    if (!v["data_offsets"][0].is_number_unsigned() || !v["data_offsets"][1].is_number_unsigned())
      throw FormatError(fmt::format("{}: tensor '{}' has bad data_offsets", path, name));
    e.begin = v["data_offsets"][0].get<size_t>();
    e.end = v["data_offsets"][1].get<size_t>();
    if (e.begin > e.end || e.end > data_size)
      throw FormatError(fmt::format("{}: tensor '{}' has data_offsets [{}, {}] outside the {} data bytes",
                                    path, name, e.begin, e.end, data_size));
    if (e.end - e.begin != want)
      throw FormatError(fmt::format("{}: tensor '{}' is {} {} ({} bytes) but its data_offsets span {} bytes",
                                    path, name, dtype_name(e.dtype), e.shape.str(), want, e.end - e.begin));
    ranges.emplace_back(e.begin, e.end);
    entries_[name] = e;
  }
  // Tensors used in place must not alias: sorted by begin, each starts at or after the
  // furthest end before it (an empty tensor inside another's bytes counts too).
  std::sort(ranges.begin(), ranges.end());
  size_t max_end = 0;
  for (const auto& [begin, end] : ranges) {
    if (begin < max_end)
      throw FormatError(fmt::format("{}: two tensors overlap in the data section (bytes {} to {} start "
                                    "before byte {}, where an earlier tensor ends)", path, begin, end, max_end));
    max_end = std::max(max_end, end);
  }
  // File order is data order, which is how writers lay tensors out.
  for (auto& [n, e] : entries_) order_.push_back(n);
  std::sort(order_.begin(), order_.end(), [&](const std::string& a, const std::string& b) {
    return entries_.at(a).begin < entries_.at(b).begin;
  });
  data_offset_ = 8 + hlen;
}

SafetensorsFile::~SafetensorsFile() = default;

std::vector<std::string> SafetensorsFile::names() const { return order_; }

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw FormatError(fmt::format("{} has no tensor named '{}'", path_, name));
  return it->second;
}

Tensor SafetensorsFile::get(const std::string& name, Category category, Device device) const {
  return get(name, entry(name).dtype, category, device);
}

Tensor SafetensorsFile::get(const std::string& name, DType dtype, Category category, Device device) const {
  const SafetensorsEntry& e = entry(name);
  const bool meta = device == Device::Meta;
  char* src = static_cast<char*>(map_->base) + data_offset_ + e.begin;
  const size_t bytes = e.end - e.begin;
  // The mapping starts on a page, so alignment is the same on Meta as on the CPU.
  bool aligned = reinterpret_cast<uintptr_t>(src) % dtype_size(e.dtype) == 0;
  if (dtype == e.dtype && aligned) {
    auto impl = std::make_shared<TensorImpl>();
    auto keep = map_;
    impl->storage = std::make_shared<Storage>(meta ? nullptr : src, bytes, category, [keep]() {}, device);
    impl->shape = e.shape;
    impl->dtype = e.dtype;
    return Tensor(std::move(impl));
  }
  Tensor raw = Tensor::empty(e.shape, e.dtype, device, Category::Workspace);
  if (!meta) std::memcpy(raw.raw(), src, bytes);
  if (dtype == e.dtype) return raw.clone(category);
  if (!is_float(dtype) || !is_float(e.dtype))
    throw FormatError(fmt::format("{}: tensor '{}' is {} and cannot be read as {}", path_, name,
                                  dtype_name(e.dtype), dtype_name(dtype)));
  Tensor out = Tensor::empty(e.shape, dtype, device, category);
  backend_for(device).cast(raw, out);
  return out;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t off = 0;
  for (const auto& [name, t] : tensors) {
    if (t.is_meta()) throw FormatError(fmt::format("{}: tensor '{}' has no data (meta)", path, name));
    if (is_block_quantized(t.dtype()))
      throw FormatError(fmt::format("{}: tensor '{}' is {}, which safetensors cannot hold (GGUF can: export --format "
                                    "gguf)", path, name, dtype_name(t.dtype())));
    header[name] = {{"dtype", safetensors_code(t.dtype())},
                    {"shape", t.shape().vec()},
                    {"data_offsets", {off, off + t.nbytes()}}};
    off += t.nbytes();
  }
  std::string h = header.dump();
  while ((h.size() + 8) % 8 != 0) h.push_back(' ');  // data starts 8-byte aligned
  write_file_atomic(path, [&](std::FILE* f) {
    unsigned char len[8];
    uint64_t n = h.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
    bool ok = std::fwrite(len, 1, 8, f) == 8 && std::fwrite(h.data(), 1, h.size(), f) == h.size();
    for (const auto& [name, t] : tensors)
      ok = ok && std::fwrite(t.raw(), 1, t.nbytes(), f) == t.nbytes();
    if (!ok) throw FormatError(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  });
}

std::vector<std::string> parse_safetensors_index(const std::string& text, const std::string& path) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw FormatError(fmt::format("{} is not valid JSON ({})", path, e.what()));
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw FormatError(fmt::format("{} has no weight_map object", path));
  std::vector<std::string> files;
  for (auto& [name, file] : j["weight_map"].items()) {
    if (!file.is_string()) throw FormatError(fmt::format("{}: weight_map['{}'] is not a file name", path, name));
    const std::string f = file.get<std::string>();
    // A shard is a file beside the index: no folders, so the index cannot point elsewhere.
    if (f.empty() || f == "." || f == ".." || f.find('/') != std::string::npos ||
        f.find('\\') != std::string::npos || f.find('\0') != std::string::npos)
      throw FormatError(fmt::format("{}: weight_map['{}'] is '{}', which is not a plain file name in the "
                                    "model folder", path, name, f));
    if (std::find(files.begin(), files.end(), f) == files.end()) files.push_back(f);
  }
  return files;
}

LazyTensors map_safetensors_dir(const std::string& dir, Category category, Device device) {
  LazyTensors out;
  const std::string index = dir + "/model.safetensors.index.json";
  std::vector<std::string> files;
  if (fs::exists(index)) {
    files = parse_safetensors_index(read_text_file(index), index);
  } else if (fs::exists(dir + "/model.safetensors")) {
    files.push_back("model.safetensors");
  } else {
    throw FormatError(fmt::format("{} has neither model.safetensors nor model.safetensors.index.json", dir));
  }
  for (const std::string& f : files) {
    auto file = std::make_shared<SafetensorsFile>(dir + "/" + f);
    for (const std::string& name : file->names())
      out.emplace_back(name, [file, name, category, device] { return file->get(name, category, device); });
  }
  return out;
}

NamedTensors load_safetensors_dir(const std::string& dir, Category category, Device device) {
  NamedTensors out;
  for (auto& [name, read] : map_safetensors_dir(dir, category, device)) out.emplace_back(name, read());
  return out;
}

void save_safetensors_dir(const std::string& dir, const NamedTensors& tensors,
                          int64_t max_shard_bytes, const std::map<std::string, std::string>& metadata) {
  fs::create_directories(dir);
  int64_t total = 0;
  for (const auto& [n, t] : tensors) total += t.nbytes();
  if (max_shard_bytes <= 0 || total <= max_shard_bytes) {
    save_safetensors(dir + "/model.safetensors", tensors, metadata);
    return;
  }
  std::vector<NamedTensors> shards(1);
  int64_t cur = 0;
  for (const auto& nt : tensors) {
    if (cur > 0 && cur + int64_t(nt.second.nbytes()) > max_shard_bytes) {
      shards.emplace_back();
      cur = 0;
    }
    shards.back().push_back(nt);
    cur += nt.second.nbytes();
  }
  json index = {{"metadata", {{"total_size", total}}}, {"weight_map", json::object()}};
  for (size_t i = 0; i < shards.size(); ++i) {
    std::string name = fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards.size());
    save_safetensors(dir + "/" + name, shards[i], metadata);
    for (const auto& [n, t] : shards[i]) index["weight_map"][n] = name;
  }
  write_text_atomic(dir + "/model.safetensors.index.json", index.dump(2));
}

}  // namespace bb
