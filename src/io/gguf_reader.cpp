// GGUF parsing over a mapped file, little-endian, with every read bounds-checked.
#include "io/gguf_reader.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>

#include "core/error.h"

namespace bb::gguf {

struct Reader::Mapping {
  void* addr = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (addr) munmap(addr, size);
  }
};

namespace {

// Far above any real file; a count beyond them is a corrupt file, refused before allocating.
constexpr uint64_t kMaxDims = 4;              // GGML_MAX_DIMS
constexpr uint64_t kMaxStringBytes = 1 << 30;

const char* type_name(ValueType t) {
  switch (t) {
    case ValueType::U8: return "u8";
    case ValueType::I8: return "i8";
    case ValueType::U16: return "u16";
    case ValueType::I16: return "i16";
    case ValueType::U32: return "u32";
    case ValueType::I32: return "i32";
    case ValueType::F32: return "f32";
    case ValueType::Bool: return "bool";
    case ValueType::String: return "string";
    case ValueType::Array: return "array";
    case ValueType::U64: return "u64";
    case ValueType::I64: return "i64";
    case ValueType::F64: return "f64";
  }
  return "?";
}

bool is_integer(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::U16: case ValueType::I16: case ValueType::U32:
    case ValueType::I32: case ValueType::U64: case ValueType::I64: case ValueType::Bool: return true;
    default: return false;
  }
}

// A cursor over the file's bytes; `what` names the field being read in errors.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& file) : data_(data), size_(size), file_(file) {}
  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }
  void need(uint64_t bytes, const std::string& what) const {
    if (bytes > left())
      throw FormatError(fmt::format("{}: the file ends inside {} (needs {} bytes at offset {}, has {})", file_, what,
                                    bytes, pos_, left()));
  }
  template <typename T>
  T get(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string string(const std::string& what) {
    const uint64_t n = get<uint64_t>(what);
    if (n > kMaxStringBytes) throw FormatError(fmt::format("{}: {} claims a string of {} bytes", file_, what, n));
    need(n, what);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& file_;
};

// Reads one scalar of type t into v (integers, reals, bool, string).
void read_scalar(Cursor& c, ValueType t, MetaValue& v, const std::string& what, const std::string& file) {
  switch (t) {
    case ValueType::U8: v.integer = c.get<uint8_t>(what); return;
    case ValueType::I8: v.integer = c.get<int8_t>(what); return;
    case ValueType::U16: v.integer = c.get<uint16_t>(what); return;
    case ValueType::I16: v.integer = c.get<int16_t>(what); return;
    case ValueType::U32: v.integer = c.get<uint32_t>(what); return;
    case ValueType::I32: v.integer = c.get<int32_t>(what); return;
    case ValueType::U64: {
      const uint64_t u = c.get<uint64_t>(what);
      if (u > static_cast<uint64_t>(INT64_MAX)) throw FormatError(fmt::format("{}: {} is {}, past int64", file, what, u));
      v.integer = static_cast<int64_t>(u);
      return;
    }
    case ValueType::I64: v.integer = c.get<int64_t>(what); return;
    case ValueType::Bool: {
      const uint8_t b = c.get<uint8_t>(what);
      if (b > 1) throw FormatError(fmt::format("{}: {} is a bool of value {}", file, what, b));
      v.integer = b;
      return;
    }
    case ValueType::F32: v.real = c.get<float>(what); return;
    case ValueType::F64: v.real = c.get<double>(what); return;
    case ValueType::String: v.text = c.string(what); return;
    case ValueType::Array: break;
  }
  throw FormatError(fmt::format("{}: {} has value type {}, which GGUF does not define", file, what,
                                static_cast<uint32_t>(t)));
}

ValueType value_type(uint32_t raw, const std::string& what, const std::string& file) {
  if (raw > static_cast<uint32_t>(ValueType::F64))
    throw FormatError(fmt::format("{}: {} has value type {}, which GGUF does not define", file, what, raw));
  return static_cast<ValueType>(raw);
}

size_t scalar_bytes(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::Bool: return 1;
    case ValueType::U16: case ValueType::I16: return 2;
    case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
    case ValueType::U64: case ValueType::I64: case ValueType::F64: return 8;
    case ValueType::String: return 8;  // at least its length
    case ValueType::Array: return 12;  // at least its element type and count
  }
  return 1;
}

TensorType tensor_type(uint32_t raw, const std::string& tensor, const std::string& file) {
  switch (raw) {
    case 0: return TensorType::F32;
    case 1: return TensorType::F16;
    case 2: return TensorType::Q4_0;
    case 8: return TensorType::Q8_0;
    case 30: return TensorType::BF16;
  }
  throw FormatError(fmt::format("{}: tensor '{}' has ggml type {}, which bigbatch does not read (f32, f16, bf16, "
                                "q8_0, q4_0)", file, tensor, raw));
}

}  // namespace

Reader::Reader(const std::string& path) : map_(std::make_unique<Mapping>()), name_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FormatError(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw FormatError(fmt::format("{} is not a regular file", path));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* addr = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      ::close(fd);
      throw FormatError(fmt::format("cannot map {}: {}", path, std::strerror(errno)));
    }
    map_->addr = addr;
    map_->size = size_;
    data_ = static_cast<const uint8_t*>(addr);
  }
  ::close(fd);
  parse();
}

Reader::Reader(const uint8_t* data, size_t size, std::string name) : data_(data), size_(size), name_(std::move(name)) {
  parse();
}

Reader::~Reader() = default;

void Reader::parse() {
  Cursor c(data_, size_, name_);
  c.need(4, "the magic number");
  if (std::memcmp(data_, "GGUF", 4) != 0) throw FormatError(fmt::format("{} is not a GGUF file (no GGUF magic)", name_));
  c.get<uint32_t>("the magic number");
  version_ = c.get<uint32_t>("the version");
  if (version_ != 2 && version_ != 3)
    throw FormatError(fmt::format("{}: GGUF version {} is not read (2 and 3 are)", name_, version_));
  const uint64_t n_tensors = c.get<uint64_t>("the tensor count");
  const uint64_t n_kv = c.get<uint64_t>("the key-value count");
  // Every entry takes some bytes: a count the rest of the file cannot hold is corrupt.
  if (n_kv > c.left() / 12 || n_tensors > c.left() / 24)
    throw FormatError(fmt::format("{}: {} key-values and {} tensors cannot fit in its {} bytes", name_, n_kv,
                                  n_tensors, size_));
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string key = c.string(fmt::format("the key of key-value {}", i));
    const std::string what = fmt::format("key '{}'", key);
    MetaValue v;
    v.type = value_type(c.get<uint32_t>(what), what, name_);
    if (v.type == ValueType::Array) {
      v.element = value_type(c.get<uint32_t>(what), what + "'s elements", name_);
      const uint64_t n = c.get<uint64_t>(what + "'s length");
      if (v.element == ValueType::Array)
        throw FormatError(fmt::format("{}: {} is an array of arrays, which no model key is", name_, what));
      if (n > c.left() / scalar_bytes(v.element))
        throw FormatError(fmt::format("{}: {} claims {} elements, more than the file holds", name_, what, n));
      if (v.element == ValueType::String) v.strings.reserve(n); else v.numbers.reserve(n);
      MetaValue e;
      for (uint64_t k = 0; k < n; ++k) {
        read_scalar(c, v.element, e, what, name_);
        if (v.element == ValueType::String) v.strings.push_back(std::move(e.text));
        else v.numbers.push_back(is_integer(v.element) ? static_cast<double>(e.integer) : e.real);
      }
    } else {
      read_scalar(c, v.type, v, what, name_);
    }
    if (!kv_.emplace(key, std::move(v)).second)
      throw FormatError(fmt::format("{}: key '{}' appears twice", name_, key));
  }
  uint64_t alignment = 32;
  if (has("general.alignment")) {
    const int64_t a = integer("general.alignment");
    if (a <= 0 || (a & (a - 1)) != 0 || a > (1 << 20))
      throw FormatError(fmt::format("{}: general.alignment is {}, not a power of two", name_, a));
    alignment = static_cast<uint64_t>(a);
  }
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t;
    t.name = c.string(fmt::format("the name of tensor {}", i));
    const std::string what = fmt::format("tensor '{}'", t.name);
    const uint32_t dims = c.get<uint32_t>(what + "'s dimension count");
    if (dims == 0 || dims > kMaxDims)
      throw FormatError(fmt::format("{}: {} has {} dimensions (1 to {})", name_, what, dims, kMaxDims));
    t.numel = 1;
    for (uint32_t d = 0; d < dims; ++d) {
      const uint64_t n = c.get<uint64_t>(what + "'s shape");
      if (n == 0 || n > (uint64_t(1) << 40) || static_cast<uint64_t>(t.numel) > (uint64_t(1) << 40) / n)
        throw FormatError(fmt::format("{}: {} has a dimension of {}", name_, what, n));
      t.shape.insert(t.shape.begin(), static_cast<int64_t>(n));  // ne[0] is the innermost
      t.numel *= static_cast<int64_t>(n);
    }
    t.type = tensor_type(c.get<uint32_t>(what + "'s type"), t.name, name_);
    if (is_quantized(t.type) && t.shape.back() % kBlock != 0)
      throw FormatError(fmt::format("{}: {} is {} with rows of {}, not a multiple of {}", name_, what,
                                    tensor_type_name(t.type), t.shape.back(), kBlock));
    t.offset = c.get<uint64_t>(what + "'s offset");
    t.bytes = encoded_bytes(t.type, t.numel);
    if (!by_name_.emplace(t.name, tensors_.size()).second)
      throw FormatError(fmt::format("{}: tensor '{}' appears twice", name_, t.name));
    tensors_.push_back(std::move(t));
  }
  const uint64_t data_start = (c.pos() + alignment - 1) / alignment * alignment;
  for (TensorInfo& t : tensors_) {
    if (t.offset % alignment != 0)
      throw FormatError(fmt::format("{}: tensor '{}' starts at {}, not a multiple of the alignment {}", name_, t.name,
                                    t.offset, alignment));
    if (t.offset > size_ || data_start > size_ - t.offset || static_cast<uint64_t>(t.bytes) > size_ - data_start - t.offset)
      throw FormatError(fmt::format("{}: tensor '{}' ({} bytes at data offset {}) runs past the end of the file", name_,
                                    t.name, t.bytes, t.offset));
    t.offset += data_start;
  }
}

const TensorInfo* Reader::find_tensor(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

const MetaValue& Reader::get(const std::string& key) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) throw FormatError(fmt::format("{} has no key '{}'", name_, key));
  return it->second;
}

int64_t Reader::integer(const std::string& key) const {
  const MetaValue& v = get(key);
  if (!is_integer(v.type))
    throw FormatError(fmt::format("{}: key '{}' is a {}, not an integer", name_, key, type_name(v.type)));
  return v.integer;
}

int64_t Reader::integer(const std::string& key, int64_t fallback) const { return has(key) ? integer(key) : fallback; }

double Reader::real(const std::string& key, double fallback) const {
  if (!has(key)) return fallback;
  const MetaValue& v = get(key);
  if (v.type != ValueType::F32 && v.type != ValueType::F64)
    throw FormatError(fmt::format("{}: key '{}' is a {}, not a number", name_, key, type_name(v.type)));
  if (!std::isfinite(v.real)) throw FormatError(fmt::format("{}: key '{}' is {}", name_, key, v.real));
  return v.real;
}

std::string Reader::string(const std::string& key) const {
  const MetaValue& v = get(key);
  if (v.type != ValueType::String)
    throw FormatError(fmt::format("{}: key '{}' is a {}, not a string", name_, key, type_name(v.type)));
  return v.text;
}

std::string Reader::string(const std::string& key, const std::string& fallback) const {
  return has(key) ? string(key) : fallback;
}

const std::vector<std::string>& Reader::strings(const std::string& key) const {
  const MetaValue& v = get(key);
  if (v.type != ValueType::Array || v.element != ValueType::String)
    throw FormatError(fmt::format("{}: key '{}' is not an array of strings", name_, key));
  return v.strings;
}

const std::vector<double>& Reader::numbers(const std::string& key) const {
  const MetaValue& v = get(key);
  if (v.type != ValueType::Array || v.element == ValueType::String)
    throw FormatError(fmt::format("{}: key '{}' is not an array of numbers", name_, key));
  return v.numbers;
}

std::vector<float> Reader::values(const TensorInfo& t) const {
  std::vector<uint8_t> bytes(data_ + t.offset, data_ + t.offset + t.bytes);
  std::vector<float> v = decode(t.type, bytes, t.numel);
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]))
      throw FormatError(fmt::format("{}: tensor '{}' holds a non-finite value at element {}", name_, t.name, i));
  return v;
}

}  // namespace bb::gguf
