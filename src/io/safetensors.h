// safetensors: read (memory-mapped; a tensor whose dtype fits is used in place, without a
// copy) and write (atomically), single files and sharded checkpoints with
// model.safetensors.index.json. Every malformed header, offset, dtype or shape is a
// FormatError naming the file and the tensor.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "nn/module.h"

namespace bb {

struct SafetensorsEntry {
  DType dtype;
  Shape shape;
  size_t begin = 0, end = 0;  // byte offsets into the data section
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);  // maps and validates the header
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;  // in file order
  bool contains(const std::string& name) const { return entries_.count(name) > 0; }
  const SafetensorsEntry& entry(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The tensor, counted under `category`. With `dtype` equal to the stored one the tensor
  // points into the mapping (which stays alive while the tensor does); otherwise it is
  // converted into a new buffer. On Device::Meta nothing is read: the tensor is a shape,
  // counted on the meta allocator exactly as the CPU one would count the real read (a mapping
  // at its exact size, or the buffers a conversion allocates), for the planner.
  Tensor get(const std::string& name, Category category = Category::Parameters,
             Device device = Device::CPU) const;
  Tensor get(const std::string& name, DType dtype, Category category, Device device = Device::CPU) const;

 private:
  struct Mapping;
  std::string path_;
  std::shared_ptr<Mapping> map_;
  std::map<std::string, SafetensorsEntry> entries_;
  std::vector<std::string> order_;
  std::map<std::string, std::string> metadata_;
  size_t data_offset_ = 0;
};

// Writes tensors (in the given order) and string metadata to `path` atomically.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Loads every tensor of a model directory: model.safetensors, or the shards named by
// model.safetensors.index.json. Returns name -> tensor (converted to `dtype` when given).
// On Device::Meta: shapes counted as the CPU read would be (SafetensorsFile::get).
NamedTensors load_safetensors_dir(const std::string& dir, Category category = Category::Parameters,
                                  Device device = Device::CPU);
// The same tensors, each read (and counted) only when its reader is called: a load that
// converts tensor by tensor then counts one of the file's tensors at a time, not the file.
using LazyTensors = std::vector<std::pair<std::string, std::function<Tensor()>>>;
LazyTensors map_safetensors_dir(const std::string& dir, Category category = Category::Parameters,
                                Device device = Device::CPU);

// The shard files an index (model.safetensors.index.json's text) names, each once, in order
// of first mention; each must be a plain file name. `path` names the index in errors.
std::vector<std::string> parse_safetensors_index(const std::string& text, const std::string& path);

// Saves into `dir` as model.safetensors, or as shards of at most `max_shard_bytes` with an
// index when the tensors are larger (0: never shard).
void save_safetensors_dir(const std::string& dir, const NamedTensors& tensors,
                          int64_t max_shard_bytes = 0,
                          const std::map<std::string, std::string>& metadata = {});

DType safetensors_dtype(const std::string& code, const std::string& file, const std::string& tensor);
// Lets the kernel drop the resident pages of a tensor read in place from a mapped file, once a
// converted copy has replaced it (a later read faults them in from the file again): a load
// that converts tensor by tensor then holds one tensor's pages at a time, not the file's.
// Nothing for a tensor that is not mapped.
void release_mapped_pages(const Tensor& t);
std::string safetensors_code(DType t);

}  // namespace bb
