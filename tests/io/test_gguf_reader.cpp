// Reading GGUF: a file bigbatch writes reads back as the same model (f32 exactly, through the
// Llama q/k permutation and GPT-2's transposition; q8_0 and q4_0 as their decoded values),
// and a truncated or altered file is one FormatError naming the file and the field.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "core/error.h"
#include "io/gguf_import.h"
#include "io/gguf_model.h"
#include "io/gguf_reader.h"
#include "io/gguf_writer.h"
#include "io/hf_model.h"
#include "llm_fixtures.h"

namespace bb::gguf {
namespace {

std::vector<uint8_t> model_file(const CausalLM& model, TensorType type) {
  Writer w;
  std::vector<std::string> notes;
  add_model(w, model, type, "fixture", notes);
  return w.serialize();
}

std::string write_bytes(const std::string& dir, const std::string& name, const std::vector<uint8_t>& b) {
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  return path;
}

void expect_same_model(const CausalLM& got, const CausalLM& want) {
  const NamedTensors a = got.named_parameters(), b = want.named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_EQ(a[i].second.to_floats(), b[i].second.to_floats()) << a[i].first;
  }
}

TEST(GgufReader, F32FilesReadBackAsTheSameLlamaAndGpt2) {
  const std::string dir = test::scratch_dir("f32");
  for (const char* name : {"llama", "gpt2"}) {
    auto model = load_causal_lm(test::llm_fixture(name));
    const std::string path = write_bytes(dir, std::string(name) + ".gguf", model_file(*model, TensorType::F32));
    const Reader r(path);
    EXPECT_EQ(r.version(), 3u);
    EXPECT_EQ(r.string("general.architecture"), name);
    EXPECT_EQ(r.tensors().size(), model->named_parameters().size());
    auto back = load_causal_lm(path);  // load_causal_lm reads a .gguf path as GGUF
    EXPECT_EQ(back->model_type(), name);
    expect_same_model(*back, *model);
  }
}

TEST(GgufReader, QuantizedFilesReadBackAsTheirDecodedValues) {
  const std::string dir = test::scratch_dir("quant");
  auto model = load_causal_lm(test::llm_fixture("gpt2"));  // rows of 32 and 64: all quantizable
  for (TensorType type : {TensorType::F16, TensorType::BF16, TensorType::Q8_0, TensorType::Q4_0}) {
    const std::string path = write_bytes(dir, tensor_type_name(type) + ".gguf", model_file(*model, type));
    const Reader r(path);
    auto back = load_causal_lm(path);
    const NamedTensors a = back->named_parameters(), b = model->named_parameters();
    for (size_t i = 0; i < a.size(); ++i) {
      const TensorInfo* t = r.find_tensor(gguf_place(*model, b[i].first).name);
      ASSERT_NE(t, nullptr) << b[i].first;
      // What the file holds for this tensor, decoded, in the model's layout.
      std::vector<float> want = b[i].second.to_floats();
      const auto& shape = b[i].second.shape();
      const bool transpose = gguf_place(*model, b[i].first).transpose;
      if (transpose) want = transposed(want, shape[0], shape[1]);
      want = decode(t->type, encode(t->type, want, t->shape.back()), t->numel);
      if (transpose) want = transposed(want, shape[1], shape[0]);
      EXPECT_EQ(a[i].second.to_floats(), want) << tensor_type_name(type) << " " << b[i].first;
    }
  }
}

TEST(GgufReader, TruncatedFilesAreOneSentenceNamingTheFile) {
  auto model = load_causal_lm(test::llm_fixture("llama"));
  const std::vector<uint8_t> whole = model_file(*model, TensorType::F32);
  const size_t header = Writer().header().size();
  for (size_t cut : {size_t(0), size_t(3), size_t(10), size_t(30), header + 100, whole.size() / 2, whole.size() - 1}) {
    const std::vector<uint8_t> part(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(cut));
    try {
      Reader r(part.data(), part.size(), "cut.gguf");
      ADD_FAILURE() << "a file cut at " << cut << " of " << whole.size() << " bytes was read";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("cut.gguf"), std::string::npos) << e.what();
    }
  }
}

// The byte offset of the first tensor info's type field, found by its name in the header.
size_t type_field_of(const std::vector<uint8_t>& file, const std::string& tensor, uint32_t dims) {
  const std::string needle = tensor;
  auto it = std::search(file.begin(), file.end(), needle.begin(), needle.end());
  EXPECT_NE(it, file.end());
  return static_cast<size_t>(it - file.begin()) + needle.size() + 4 + 8 * dims;
}

std::string error_of(const std::vector<uint8_t>& file, const std::string& dir, const std::string& name) {
  const std::string path = write_bytes(dir, name, file);
  try {
    load_causal_lm(path);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "(read without an error)";
}

TEST(GgufReader, WhatBigbatchWouldNotComputeIsRefused) {
  const std::string dir = test::scratch_dir("refused");
  auto model = load_causal_lm(test::llm_fixture("llama"));
  std::vector<uint8_t> file = model_file(*model, TensorType::F32);

  std::vector<uint8_t> bad = file;
  const size_t at = type_field_of(bad, "token_embd.weight", 2);
  const uint32_t q4_k = 12;
  std::memcpy(&bad[at], &q4_k, 4);
  EXPECT_NE(error_of(bad, dir, "type.gguf").find("tensor 'token_embd.weight' has ggml type 12, which bigbatch does "
                                                 "not read"), std::string::npos);

  bad = file;
  bad[0] = 'X';
  EXPECT_NE(error_of(bad, dir, "magic.gguf").find("is not a GGUF file"), std::string::npos);

  Writer w;
  std::vector<std::string> notes;
  w.add("general.architecture", std::string("falcon"));
  EXPECT_NE(error_of(w.serialize(), dir, "falcon.gguf").find("general.architecture is 'falcon'"), std::string::npos);

  Writer extra;
  add_model(extra, *model, TensorType::F32, "fixture", notes);
  extra.add_tensor({"rope_freqs.weight", {8}, TensorType::F32, std::vector<uint8_t>(32, 0)});
  EXPECT_NE(error_of(extra.serialize(), dir, "extra.gguf").find("tensor 'rope_freqs.weight' has no place"),
            std::string::npos);

  Writer scaled;
  add_model(scaled, *model, TensorType::F32, "fixture", notes);
  scaled.add("llama.rope.scaling.type", std::string("linear"));
  EXPECT_NE(error_of(scaled.serialize(), dir, "scaled.gguf").find("llama.rope.scaling.type is 'linear'"),
            std::string::npos);
}

}  // namespace
}  // namespace bb::gguf
