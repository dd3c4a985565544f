// Reading a GGUF file (v2 or v3): the typed key-values, the tensor infos and each tensor's
// values, decoded from f32, f16, bf16, q8_0 or q4_0. Every count, length and offset is checked
// against the file before it is used, so a truncated or corrupt file is one FormatError that
// names the file and the field, never a read past the end or an allocation it cannot back.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/gguf_writer.h"

namespace bb::gguf {

struct MetaValue {
  ValueType type = ValueType::U8;
  ValueType element = ValueType::U8;  // arrays: the elements' type
  int64_t integer = 0;                // the integer types and bool
  double real = 0;                    // f32, f64
  std::string text;                   // string
  std::vector<std::string> strings;   // array of strings
  std::vector<double> numbers;        // array of numbers (integers exactly up to 2^53)
};

struct TensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // row-major (ggml's ne reversed), as the writer takes it
  TensorType type = TensorType::F32;
  uint64_t offset = 0;         // from the start of the file
  int64_t numel = 0, bytes = 0;
};

class Reader {
 public:
  explicit Reader(const std::string& path);  // maps the file
  // Parses bytes held by the caller, which must outlive the reader; `name` names it in errors.
  Reader(const uint8_t* data, size_t size, std::string name);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  const std::string& path() const { return name_; }
  uint32_t version() const { return version_; }
  const std::map<std::string, MetaValue>& metadata() const { return kv_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(const std::string& name) const;

  // Typed reads of a key; a missing key (without a fallback) or another type is a FormatError
  // naming the file and the key.
  bool has(const std::string& key) const { return kv_.count(key) > 0; }
  int64_t integer(const std::string& key) const;
  int64_t integer(const std::string& key, int64_t fallback) const;
  double real(const std::string& key, double fallback) const;
  std::string string(const std::string& key) const;
  std::string string(const std::string& key, const std::string& fallback) const;
  const std::vector<std::string>& strings(const std::string& key) const;
  const std::vector<double>& numbers(const std::string& key) const;

  // The tensor's values as f32, row-major; FormatError when one is not finite.
  std::vector<float> values(const TensorInfo& t) const;
  // The tensor's t.bytes encoded bytes, in the file (checked against its size when parsed).
  const uint8_t* encoded(const TensorInfo& t) const { return data_ + t.offset; }

 private:
  void parse();
  const MetaValue& get(const std::string& key) const;

  struct Mapping;
  std::unique_ptr<Mapping> map_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string name_;
  uint32_t version_ = 0;
  std::map<std::string, MetaValue> kv_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> by_name_;
};

}  // namespace bb::gguf
