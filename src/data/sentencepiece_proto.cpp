// Protocol buffer wire format by hand (varints, length-delimited fields, 32-bit floats): the
// few fields of ModelProto a SentencePiece BPE model needs, numbered as sentencepiece_model.proto
// numbers them.
#include "data/sentencepiece_proto.h"

#include <fmt/format.h>

#include <cstring>

#include "core/error.h"

namespace bb {
namespace {

void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void key(std::string& out, int field, int wire) { varint(out, static_cast<uint64_t>(field) << 3 | wire); }

void integer(std::string& out, int field, int64_t v) {
  key(out, field, 0);
  varint(out, static_cast<uint64_t>(v));  // a negative int32 is ten bytes, as protobuf writes it
}

void bytes(std::string& out, int field, const std::string& v) {
  key(out, field, 2);
  varint(out, v.size());
  out += v;
}

void f32(std::string& out, int field, float v) {
  key(out, field, 5);
  char b[4];
  std::memcpy(b, &v, 4);  // little-endian, as every machine bigbatch runs on
  out.append(b, 4);
}

// Reads the fields of one message; `on_field` gets (field, wire type, varint value, bytes).
class Reader {
 public:
  Reader(const std::string& data, const std::string& source) : p_(data.data()), end_(p_ + data.size()), source_(source) {}
  template <typename Fn>
  void each(Fn&& on_field) {
    while (p_ < end_) {
      const uint64_t k = varint();
      const int field = static_cast<int>(k >> 3), wire = static_cast<int>(k & 7);
      uint64_t value = 0;
      std::string data;
      if (wire == 0) {
        value = varint();
      } else if (wire == 2) {
        const uint64_t n = varint();
        if (n > static_cast<uint64_t>(end_ - p_)) fail();
        data.assign(p_, n);
        p_ += n;
      } else if (wire == 5 || wire == 1) {
        const size_t n = wire == 5 ? 4 : 8;
        if (static_cast<size_t>(end_ - p_) < n) fail();
        std::memcpy(&value, p_, n);
        p_ += n;
      } else {
        fail();
      }
      on_field(field, wire, value, data);
    }
  }

 private:
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) fail();
      const auto b = static_cast<uint8_t>(*p_++);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail();
  }
  [[noreturn]] void fail() const { throw FormatError(fmt::format("{} is not a SentencePiece model", source_)); }
  const char* p_;
  const char* end_;
  const std::string& source_;
};

float as_f32(uint64_t bits) {
  const auto b = static_cast<uint32_t>(bits);
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

}  // namespace

SentencePieceVocab read_sentencepiece_vocab(const std::string& serialized, const std::string& source) {
  SentencePieceVocab v;
  v.unk = 0;  // TrainerSpec's defaults
  v.bos = 1;
  v.eos = 2;
  Reader(serialized, source).each([&](int field, int, uint64_t, const std::string& data) {
    if (field == 1) {
      SentencePieceVocab::Piece piece;
      Reader(data, source).each([&](int f, int, uint64_t value, const std::string& d) {
        if (f == 1) piece.text = d;
        else if (f == 2) piece.score = as_f32(value);
        else if (f == 3) piece.type = static_cast<int32_t>(value);
      });
      v.pieces.push_back(std::move(piece));
    } else if (field == 2) {
      Reader(data, source).each([&](int f, int, uint64_t value, const std::string&) {
        const auto id = static_cast<int64_t>(static_cast<int32_t>(value));
        if (f == 35) v.byte_fallback = value != 0;
        else if (f == 40) v.unk = id;
        else if (f == 41) v.bos = id;
        else if (f == 42) v.eos = id;
        else if (f == 43) v.pad = id;
      });
    } else if (field == 3) {
      Reader(data, source).each([&](int f, int, uint64_t value, const std::string&) {
        if (f == 3) v.add_dummy_prefix = value != 0;
      });
    }
  });
  return v;
}

std::string sentencepiece_model_proto(const SentencePieceVocab& v) {
  std::string out;
  for (const auto& p : v.pieces) {  // repeated SentencePiece pieces = 1 {piece = 1, score = 2, type = 3}
    std::string piece;
    bytes(piece, 1, p.text);
    f32(piece, 2, p.score);
    integer(piece, 3, p.type);
    bytes(out, 1, piece);
  }
  std::string trainer;  // TrainerSpec trainer_spec = 2
  integer(trainer, 3, 2);  // model_type: BPE
  integer(trainer, 4, static_cast<int64_t>(v.pieces.size()));  // vocab_size
  integer(trainer, 35, v.byte_fallback ? 1 : 0);
  integer(trainer, 40, v.unk);
  integer(trainer, 41, v.bos);
  integer(trainer, 42, v.eos);
  integer(trainer, 43, v.pad);
  bytes(out, 2, trainer);
  std::string normalizer;  // NormalizerSpec normalizer_spec = 3
  bytes(normalizer, 1, "identity");
  integer(normalizer, 3, v.add_dummy_prefix ? 1 : 0);
  integer(normalizer, 4, 0);  // remove_extra_whitespaces
  integer(normalizer, 5, 1);  // escape_whitespaces
  bytes(out, 3, normalizer);
  return out;
}

}  // namespace bb
