// A GGUF v3 file (the format llama.cpp and Ollama load): typed metadata key-values, then
// tensor infos, then the tensors' data, each at an offset aligned to general.alignment.
// Collect everything, then write it at once (atomically, through io/atomic_file.h).
#pragma once
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "io/gguf_quant.h"

namespace bb::gguf {

// gguf_type values of the spec (gguf.h).
enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7, String = 8, Array = 9, U64 = 10,
  I64 = 11, F64 = 12
};

inline constexpr uint32_t kVersion = 3;
inline constexpr uint64_t kAlignment = 32;  // GGUF_DEFAULT_ALIGNMENT

using Value = std::variant<uint32_t, int32_t, float, bool, std::string, std::vector<std::string>,
                           std::vector<int32_t>, std::vector<float>>;

struct Tensor {
  std::string name;
  std::vector<int64_t> shape;  // row-major, as PyTorch writes it; the file gets it reversed (ggml's ne)
  TensorType type = TensorType::F32;
  std::vector<uint8_t> data;   // already encoded as `type`
};

class Writer {
 public:
  // Keys are written in the order added; a key added twice is a ConfigError.
  void add(const std::string& key, Value value);
  // The data must hold exactly encoded_bytes(type, numel) bytes (ShapeError otherwise).
  void add_tensor(Tensor t);
  const std::vector<Tensor>& tensors() const { return tensors_; }
  // Everything before the data section: header, key-values, tensor infos, padding.
  std::vector<uint8_t> header() const;
  // The whole file's bytes.
  std::vector<uint8_t> serialize() const;
  // serialize() into `path` atomically: a reader sees the old file or the whole new one.
  void write(const std::string& path) const;

 private:
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace bb::gguf
