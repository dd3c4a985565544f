// GGUF v3 serialisation, little-endian throughout (the spec's default byte order).
#include "io/gguf_writer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>

#include "core/error.h"
#include "io/atomic_file.h"

namespace bb::gguf {

namespace {

class Bytes {
 public:
  template <typename T>
  void put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out_.insert(out_.end(), p, p + sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    out_.insert(out_.end(), s.begin(), s.end());
  }
  void pad_to(uint64_t alignment) {
    while (out_.size() % alignment != 0) out_.push_back(0);
  }
  void append(const std::vector<uint8_t>& b) { out_.insert(out_.end(), b.begin(), b.end()); }
  std::vector<uint8_t>& bytes() { return out_; }

 private:
  std::vector<uint8_t> out_;
};

void put_value(Bytes& b, const Value& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, uint32_t>) {
          b.put<uint32_t>(static_cast<uint32_t>(ValueType::U32));
          b.put<uint32_t>(x);
        } else if constexpr (std::is_same_v<T, int32_t>) {
          b.put<uint32_t>(static_cast<uint32_t>(ValueType::I32));
          b.put<int32_t>(x);
        } else if constexpr (std::is_same_v<T, float>) {
          b.put<uint32_t>(static_cast<uint32_t>(ValueType::F32));
          b.put<float>(x);
        } else if constexpr (std::is_same_v<T, bool>) {
          b.put<uint32_t>(static_cast<uint32_t>(ValueType::Bool));
          b.put<uint8_t>(x ? 1 : 0);
        } else if constexpr (std::is_same_v<T, std::string>) {
          b.put<uint32_t>(static_cast<uint32_t>(ValueType::String));
          b.put_string(x);
        } else {
          // arrays: element type, count, elements
          b.put<uint32_t>(static_cast<uint32_t>(ValueType::Array));
          using E = typename T::value_type;
          if constexpr (std::is_same_v<E, std::string>) b.put<uint32_t>(static_cast<uint32_t>(ValueType::String));
          else if constexpr (std::is_same_v<E, int32_t>) b.put<uint32_t>(static_cast<uint32_t>(ValueType::I32));
          else b.put<uint32_t>(static_cast<uint32_t>(ValueType::F32));
          b.put<uint64_t>(x.size());
          for (const auto& e : x) {
            if constexpr (std::is_same_v<E, std::string>) b.put_string(e);
            else b.put<E>(e);
          }
        }
      },
      v);
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace

void Writer::add(const std::string& key, Value value) {
  for (const auto& [k, v] : kv_)
    if (k == key) throw ConfigError(fmt::format("GGUF key {} set twice", key));
  kv_.emplace_back(key, std::move(value));
}

void Writer::add_tensor(Tensor t) {
  const int64_t want = encoded_bytes(t.type, numel(t.shape));
  if (static_cast<int64_t>(t.data.size()) != want)
    throw ShapeError(fmt::format("GGUF tensor {}: {} bytes given, {} as {} needs {}", t.name, t.data.size(),
                                 fmt::join(t.shape, "x"), tensor_type_name(t.type), want));
  tensors_.push_back(std::move(t));
}

std::vector<uint8_t> Writer::header() const {
  Bytes b;
  b.put<uint32_t>(0x46554747);  // "GGUF" read as a little-endian uint32
  b.put<uint32_t>(kVersion);
  b.put<uint64_t>(tensors_.size());
  b.put<uint64_t>(kv_.size() + 1);  // + general.alignment
  b.put_string("general.alignment");
  put_value(b, static_cast<uint32_t>(kAlignment));
  for (const auto& [k, v] : kv_) {
    b.put_string(k);
    put_value(b, v);
  }
  uint64_t offset = 0;  // from the start of the data section
  for (const auto& t : tensors_) {
    b.put_string(t.name);
    b.put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d) b.put<uint64_t>(static_cast<uint64_t>(*d));
    b.put<uint32_t>(static_cast<uint32_t>(t.type));
    b.put<uint64_t>(offset);
    offset += (t.data.size() + kAlignment - 1) / kAlignment * kAlignment;
  }
  b.pad_to(kAlignment);
  return std::move(b.bytes());
}

std::vector<uint8_t> Writer::serialize() const {
  Bytes b;
  b.append(header());
  for (const auto& t : tensors_) {
    b.append(t.data);
    b.pad_to(kAlignment);
  }
  return std::move(b.bytes());
}

void Writer::write(const std::string& path) const {
  // Streamed tensor by tensor: a second copy of a large model's bytes is never made.
  write_file_atomic(path, [&](std::FILE* f) {
    static const uint8_t zeros[kAlignment] = {};
    auto put = [&](const uint8_t* p, size_t n) {
      if (n > 0 && std::fwrite(p, 1, n, f) != n) throw FormatError(fmt::format("cannot write {}", path));
    };
    const std::vector<uint8_t> head = header();
    put(head.data(), head.size());
    for (const auto& t : tensors_) {
      put(t.data.data(), t.data.size());
      put(zeros, (kAlignment - t.data.size() % kAlignment) % kAlignment);
    }
  });
}

}  // namespace bb::gguf
