// safetensors headers from outside: overlapping data ranges (an empty tensor must not hide an
// overlap), shapes whose size overflows, shard names that leave the model folder, paths that
// are not regular files, and weights stored as integers or holding NaN or infinities.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "io/atomic_file.h"
#include "io/hf_gpt2.h"
#include "io/hf_model.h"
#include "io/safetensors.h"
#include "error_words.h"
#include "llm_fixtures.h"

namespace bb::test {
namespace {

// 8-byte header length, the header, then `data_bytes` zero bytes.
void write_raw(const std::string& path, const std::string& header, size_t data_bytes) {
  std::ofstream f(path, std::ios::binary);
  const uint64_t n = header.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << header << std::string(data_bytes, '\0');
}

TEST(SafetensorsChecks, EmptyTensorDoesNotHideAnOverlap) {
  const std::string p = scratch_dir("overlap") + "/model.safetensors";
  // a: [0, 16), e: empty at 8, b: [8, 16) -- b aliases a's second half.
  write_raw(p, R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
               R"("e":{"dtype":"F32","shape":[0],"data_offsets":[8,8]},)"
               R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 16);
  expect_error_naming([&] { SafetensorsFile f(p); }, {p, "overlap"});
  // An overlap two tensors apart: a: [0, 16), c: [4, 8), d: [12, 16).
  write_raw(p, R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
               R"("c":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
               R"("d":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})", 16);
  expect_error_naming([&] { SafetensorsFile f(p); }, {p, "overlap"});
  // Adjacent tensors and an empty one at a boundary are fine.
  write_raw(p, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
               R"("e":{"dtype":"F32","shape":[0,5],"data_offsets":[8,8]},)"
               R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 16);
  SafetensorsFile ok(p);
  EXPECT_EQ(ok.names().size(), 3u);
}

TEST(SafetensorsChecks, ShapeWhoseSizeOverflowsIsRefused) {
  const std::string p = scratch_dir("overflow") + "/model.safetensors";
  // (2^62 + 1) * 4 elements wraps to 4 in 64 bits, which is 16 bytes of F32: the file must
  // not load as a 16-byte tensor of that shape.
  write_raw(p, R"({"w":{"dtype":"F32","shape":[4611686018427387905,4],"data_offsets":[0,16]}})", 16);
  expect_error_naming([&] { SafetensorsFile f(p); }, {p, "'w'"});
  // 2^61 elements of 8 bytes wrap to 0 bytes.
  write_raw(p, R"({"w":{"dtype":"I64","shape":[2305843009213693952,1],"data_offsets":[0,0]}})", 0);
  expect_error_naming([&] { SafetensorsFile f(p); }, {p, "'w'"});
}

TEST(SafetensorsChecks, IndexShardNamesStayInTheModelFolder) {
  const std::string dir = scratch_dir("index");
  for (const char* bad : {"../../../etc/passwd", "/etc/passwd", "sub/model.safetensors", "..", ""}) {
    const std::string index = std::string(R"({"weight_map":{"w":")") + bad + R"("}})";
    expect_error_naming([&] { parse_safetensors_index(index, "idx.json"); }, {"idx.json", "weight_map['w']"});
  }
  write_text_atomic(dir + "/model.safetensors.index.json", R"({"weight_map":{"w":"../../../etc/passwd"}})");
  expect_error_naming([&] { load_safetensors_dir(dir); }, {"model.safetensors.index.json", "../../../etc/passwd"});
  EXPECT_EQ(parse_safetensors_index(R"({"weight_map":{"a":"m-1.safetensors","b":"m-2.safetensors","c":"m-1.safetensors"}})",
                                    "idx.json"),
            (std::vector<std::string>{"m-1.safetensors", "m-2.safetensors"}));
}

TEST(SafetensorsChecks, FolderOrFifoIsNotAWeightsFile) {
  const std::string dir = scratch_dir("fifo");
  std::filesystem::create_directories(dir + "/folder.safetensors");
  expect_error_naming([&] { SafetensorsFile f(dir + "/folder.safetensors"); }, {"folder.safetensors", "regular file"});
  const std::string fifo = dir + "/pipe.safetensors";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  expect_error_naming([&] { SafetensorsFile f(fifo); }, {fifo, "regular file"});  // used to block
}

// A copy of the GPT-2 fixture whose tensor `name` is replaced by `value`.
std::string gpt2_with(const std::string& tag, const std::string& name, const Tensor& value) {
  const std::string dir = scratch_dir(tag);
  std::filesystem::copy_file(llm_fixture("gpt2/config.json"), dir + "/config.json");
  SafetensorsFile src(llm_fixture("gpt2/model.safetensors"));
  NamedTensors tensors;
  bool found = false;
  for (const std::string& n : src.names()) {
    found = found || n == name;
    tensors.emplace_back(n, n == name ? value : src.get(n).clone(Category::Workspace));
  }
  EXPECT_TRUE(found) << name;
  save_safetensors(dir + "/model.safetensors", tensors);
  return dir;
}

std::string first_weight_name() {
  SafetensorsFile src(llm_fixture("gpt2/model.safetensors"));
  for (const std::string& n : src.names())
    if (n.find("ln_f.weight") != std::string::npos) return n;
  return src.names().front();
}

TEST(SafetensorsChecks, IntegerWeightIsRefusedNotCast) {
  const std::string name = first_weight_name();
  SafetensorsFile src(llm_fixture("gpt2/model.safetensors"));
  Tensor ints = Tensor::empty(src.entry(name).shape, DType::I32, Device::CPU, Category::Workspace);
  std::memset(ints.raw(), 0, ints.nbytes());
  const std::string dir = gpt2_with("i32", name, ints);
  expect_error_naming([&] { load_causal_lm(dir); }, {dir, name, "I32"});
}

TEST(SafetensorsChecks, NanOrInfWeightIsRefused) {
  const std::string name = first_weight_name();
  SafetensorsFile src(llm_fixture("gpt2/model.safetensors"));
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
    Tensor w = src.get(name).clone(Category::Workspace);
    w.data<float>()[w.numel() / 2] = bad;
    const std::string dir = gpt2_with(std::isnan(bad) ? "nan" : "inf", name, w);
    expect_error_naming([&] { load_causal_lm(dir); }, {dir, name, "NaN or infinite"});
  }
  // The same in bf16, checked without widening.
  Tensor w = src.get(name, DType::BF16, Category::Workspace);
  reinterpret_cast<uint16_t*>(w.raw())[0] = 0x7fc0;  // a bf16 NaN
  const std::string dir = gpt2_with("bf16nan", name, w);
  expect_error_naming([&] { load_causal_lm(dir); }, {dir, name, "NaN or infinite"});
}

}  // namespace
}  // namespace bb::test
