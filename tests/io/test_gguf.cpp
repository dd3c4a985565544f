// GGUF writing without llama.cpp: the q8_0 and q4_0 encoders against blocks computed by
// hand and against their round-trip error bounds, the file layout byte by byte (magic,
// counts, typed key-values, reversed dims, aligned offsets), the Llama RoPE row permutation,
// and the per-tensor f16 fallback of a quantized tensor whose rows are not a multiple of 32.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "core/dtype.h"
#include "core/error.h"
#include "io/gguf_model.h"
#include "io/gguf_writer.h"
#include "io/hf_model.h"
#include "llm_fixtures.h"

namespace bb::gguf {
namespace {

uint16_t u16_at(const std::vector<uint8_t>& b, size_t i) { return static_cast<uint16_t>(b[i] | (b[i + 1] << 8)); }

TEST(GgufQuant, Q8_0BlockByHand) {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = 0.1f * (j - 16);  // max |x| = 1.6 at j = 0
  const auto b = encode(TensorType::Q8_0, x, 32);
  ASSERT_EQ(b.size(), 34u);
  EXPECT_EQ(u16_at(b, 0), f32_to_f16(1.6f / 127));
  const float id = 127 / 1.6f;
  for (int j = 0; j < 32; ++j) EXPECT_EQ(static_cast<int8_t>(b[2 + j]), std::lround(x[j] * id)) << j;
  EXPECT_EQ(static_cast<int8_t>(b[2]), -127);
}

TEST(GgufQuant, Q4_0BlockByHand) {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);  // signed max -16: d = -16 / -8 = 2
  const auto b = encode(TensorType::Q4_0, x, 32);
  ASSERT_EQ(b.size(), 18u);
  EXPECT_EQ(u16_at(b, 0), 0x4000);  // f16 2.0
  // q = min(15, trunc(x / 2 + 8.5)); value j in the low nibble of byte j, j + 16 in the high one
  EXPECT_EQ(b[2], 0x80);       // j 0: -16 -> 0;  j 16: 0 -> 8
  EXPECT_EQ(b[3], 0x91);       // j 1: -15 -> 1;  j 17: 1 -> 9
  EXPECT_EQ(b[2 + 15], 0xF8);  // j 15: -1 -> 8;  j 31: 15 -> 16, clamped to 15
  const auto back = decode(TensorType::Q4_0, b, 32);
  EXPECT_FLOAT_EQ(back[0], -16);
  EXPECT_FLOAT_EQ(back[31], 14);  // the clamp costs one step at the top
}

// Round trip over random blocks: q8_0 within half a step (d = max/127) plus the f16 rounding
// of d; q4_0 within one step |d| = max/8 (half a step, a whole one where the top clamps).
TEST(GgufQuant, RoundTripWithinBounds) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0, 1);
  std::vector<float> x(32 * 64);
  for (float& v : x) v = normal(rng) * 0.05f;
  for (TensorType t : {TensorType::Q8_0, TensorType::Q4_0, TensorType::F16, TensorType::BF16}) {
    const auto back = decode(t, encode(t, x, 64), static_cast<int64_t>(x.size()));
    for (size_t b = 0; b < x.size(); b += 32) {
      float amax = 0;
      for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::abs(x[b + j]));
      const float bound = t == TensorType::Q8_0   ? 0.5f * amax / 127 + amax * 1e-3f
                          : t == TensorType::Q4_0 ? amax / 8 * 1.001f
                          : t == TensorType::F16  ? amax / 1024
                                                  : amax / 128;
      for (size_t j = 0; j < 32; ++j) ASSERT_LE(std::abs(back[b + j] - x[b + j]), bound) << tensor_type_name(t);
    }
  }
  EXPECT_EQ(decode(TensorType::F32, encode(TensorType::F32, x, 64), static_cast<int64_t>(x.size())), x);
}

TEST(GgufQuant, RowsNotAMultipleOf32AreRefused) {
  EXPECT_THROW(encode(TensorType::Q8_0, std::vector<float>(48), 48), ShapeError);
  EXPECT_THROW(parse_tensor_type("q5_k"), ConfigError);
}

struct Reader {
  const std::vector<uint8_t>& b;
  size_t at = 0;
  template <typename T>
  T get() {
    T v;
    std::memcpy(&v, b.data() + at, sizeof v);
    at += sizeof v;
    return v;
  }
  std::string str() {
    const auto n = get<uint64_t>();
    std::string s(reinterpret_cast<const char*>(b.data() + at), n);
    at += n;
    return s;
  }
};

TEST(GgufWriter, LayoutByteByByte) {
  Writer w;
  w.add("general.architecture", std::string("llama"));
  w.add("llama.block_count", uint32_t{2});
  w.add("tokenizer.ggml.tokens", std::vector<std::string>{"a", "bc"});
  EXPECT_THROW(w.add("llama.block_count", uint32_t{3}), ConfigError);
  w.add_tensor({"x", {3, 2}, TensorType::F32, encode(TensorType::F32, {1, 2, 3, 4, 5, 6}, 2)});
  w.add_tensor({"y", {1, 32}, TensorType::Q8_0, encode(TensorType::Q8_0, std::vector<float>(32, 1.0f), 32)});
  EXPECT_THROW(w.add_tensor({"z", {4}, TensorType::F32, {}}), ShapeError);
  const auto bytes = w.serialize();
  Reader r{bytes};
  EXPECT_EQ(r.get<uint32_t>(), 0x46554747u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(bytes.data()), 4), "GGUF");
  EXPECT_EQ(r.get<uint32_t>(), 3u);
  EXPECT_EQ(r.get<uint64_t>(), 2u);  // tensors
  EXPECT_EQ(r.get<uint64_t>(), 4u);  // key-values, general.alignment first
  EXPECT_EQ(r.str(), "general.alignment");
  EXPECT_EQ(r.get<uint32_t>(), static_cast<uint32_t>(ValueType::U32));
  EXPECT_EQ(r.get<uint32_t>(), 32u);
  EXPECT_EQ(r.str(), "general.architecture");
  EXPECT_EQ(r.get<uint32_t>(), static_cast<uint32_t>(ValueType::String));
  EXPECT_EQ(r.str(), "llama");
  EXPECT_EQ(r.str(), "llama.block_count");
  EXPECT_EQ(r.get<uint32_t>(), static_cast<uint32_t>(ValueType::U32));
  EXPECT_EQ(r.get<uint32_t>(), 2u);
  EXPECT_EQ(r.str(), "tokenizer.ggml.tokens");
  EXPECT_EQ(r.get<uint32_t>(), static_cast<uint32_t>(ValueType::Array));
  EXPECT_EQ(r.get<uint32_t>(), static_cast<uint32_t>(ValueType::String));
  EXPECT_EQ(r.get<uint64_t>(), 2u);
  EXPECT_EQ(r.str(), "a");
  EXPECT_EQ(r.str(), "bc");
  // tensor infos: dims reversed (ggml's ne0 is the row length), offsets 32-aligned
  EXPECT_EQ(r.str(), "x");
  EXPECT_EQ(r.get<uint32_t>(), 2u);
  EXPECT_EQ(r.get<uint64_t>(), 2u);
  EXPECT_EQ(r.get<uint64_t>(), 3u);
  EXPECT_EQ(r.get<uint32_t>(), 0u);  // F32
  EXPECT_EQ(r.get<uint64_t>(), 0u);
  EXPECT_EQ(r.str(), "y");
  EXPECT_EQ(r.get<uint32_t>(), 2u);
  EXPECT_EQ(r.get<uint64_t>(), 32u);
  EXPECT_EQ(r.get<uint64_t>(), 1u);
  EXPECT_EQ(r.get<uint32_t>(), 8u);   // Q8_0
  EXPECT_EQ(r.get<uint64_t>(), 32u);  // 24 bytes of x, padded to 32
  const size_t data = (r.at + 31) / 32 * 32;
  EXPECT_EQ(w.header().size(), data);
  float first;
  std::memcpy(&first, bytes.data() + data, 4);
  EXPECT_EQ(first, 1.0f);
  EXPECT_EQ(u16_at(bytes, data + 32), f32_to_f16(1.0f / 127));
  EXPECT_EQ(bytes.size(), data + 32 + 64);  // 34 bytes of y padded to 64
}

TEST(GgufModel, RopePermutationPairsAdjacentRows) {
  // one head of 4 rows: rotate-half pairs (0, 2) and (1, 3) become (0, 1) and (2, 3)
  const auto p = permute_rope_rows({0, 1, 2, 3, 10, 11, 12, 13}, 2, 8, 1);
  EXPECT_EQ(p, (std::vector<float>{0, 2, 1, 3, 10, 12, 11, 13}));
}

TEST(GgufModel, QuantizedRowsNotAMultipleOf32FallBackToF16) {
  auto model = load_causal_lm(test::llm_fixture("llama"));  // intermediate_size 176 = 5.5 blocks
  Writer w;
  std::vector<std::string> notes;
  add_model(w, *model, TensorType::Q8_0, "fixture", notes);
  ASSERT_EQ(notes.size(), 2u);  // ffn_down of both layers
  EXPECT_NE(notes[0].find("blk.0.ffn_down.weight"), std::string::npos) << notes[0];
  for (const auto& t : w.tensors()) {
    if (t.name.find("ffn_down") != std::string::npos) EXPECT_EQ(t.type, TensorType::F16) << t.name;
    else if (t.shape.size() == 1) EXPECT_EQ(t.type, TensorType::F32) << t.name;
    else EXPECT_EQ(t.type, TensorType::Q8_0) << t.name;
  }
  EXPECT_EQ(w.tensors().front().name, "token_embd.weight");
  EXPECT_EQ(w.tensors().front().shape, (std::vector<int64_t>{100, 64}));
}

}  // namespace
}  // namespace bb::gguf
