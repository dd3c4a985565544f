// model.init=FILE.gguf: a model exported to GGUF trains on as the folder it came from (the
// same losses, step for step, from an f32 file), a quantized file is a LoRA base whose
// adapter generates on it, a q8_0 / q4_0 file's blocks are a base of that type as they are,
// and a GGUF whose tokenizer bigbatch does not read is refused unless data.tokenizer names one
// (tokenizers read from GGUF: tests/gguf/test_gguf_llama_cpp.cpp).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../cli/run_cli.h"
#include "io/gguf_model.h"
#include "io/gguf_writer.h"
#include "io/hf_model.h"

namespace bb {
namespace {

namespace fs = std::filesystem;

const std::string kData = "data.path=/usr/share/games/fortunes train.eval_every=0 train.checkpoint_every=0 "
                          "sample.max_new_tokens=0 report=false ";

std::vector<double> losses(const std::string& dir) {
  std::vector<double> out;
  std::ifstream in(dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line)["loss"].get<double>());
  return out;
}

std::string fresh(const std::string& name) {
  const std::string d = ::testing::TempDir() + "/bb_gguf_import_" + name;
  fs::remove_all(d);
  return d;
}

TEST(GgufImport, AnF32FileTrainsOnAsTheFolderItCameFrom) {
  const std::string base = fresh("base"), from_dir = fresh("from_dir"), from_file = fresh("from_file");
  auto r = test::run_cli("train model.type=llama model.n_layer=2 model.n_head=4 model.n_kv_head=2 model.n_embd=64 "
                         "model.intermediate_size=96 model.block_size=32 train.micro_batch_size=4 train.steps=20 "
                         "train.lr=0.01 " + kData + "out_dir=" + base);
  ASSERT_EQ(r.code, 0) << r.output;
  r = test::run_cli("export --model " + base + " --format gguf --type f32 --out " + base + "/m.gguf");
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string run = "train train.micro_batch_size=4 train.steps=3 train.lr=0.001 " + kData;
  r = test::run_cli(run + "model.init=" + base + " out_dir=" + from_dir);
  ASSERT_EQ(r.code, 0) << r.output;
  r = test::run_cli(run + "model.init=" + base + "/m.gguf out_dir=" + from_file);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto a = losses(from_dir), b = losses(from_file);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a, b) << "the GGUF file is the folder's model, bit for bit";
}

TEST(GgufImport, AQuantizedFileIsALoraBaseAndItsAdapterGenerates) {
  const std::string base = fresh("qbase"), adapter = fresh("qadapter");
  auto r = test::run_cli("train model.type=llama model.n_layer=1 model.n_head=2 model.n_embd=64 "
                         "model.intermediate_size=96 model.block_size=32 train.micro_batch_size=4 train.steps=10 "
                         "train.lr=0.01 " + kData + "out_dir=" + base);
  ASSERT_EQ(r.code, 0) << r.output;
  ASSERT_EQ(test::run_cli("export --model " + base + " --format gguf --type q8_0 --out " + base + "/q.gguf").code, 0);
  r = test::run_cli("train model.init=" + base + "/q.gguf lora.r=4 lora.alpha=8 train.micro_batch_size=4 "
                    "train.steps=3 train.lr=0.01 " + kData + "out_dir=" + adapter);
  ASSERT_EQ(r.code, 0) << r.output;
  const nlohmann::json cfg = nlohmann::json::parse(test::read_file(adapter + "/adapter_config.json"));
  EXPECT_EQ(cfg["base_model_name_or_path"], base + "/q.gguf");
  r = test::run_cli("generate --model " + base + "/q.gguf --adapter " + adapter +
                    " --prompt 'A ' --temperature 0 --max-new-tokens 8");
  EXPECT_EQ(r.code, 0) << r.output;
}

TEST(GgufImport, AQuantizedFileKeepsItsBlocksAsAQuantizedBase) {
  const std::string base = fresh("keep");
  auto r = test::run_cli("train model.type=llama model.n_layer=1 model.n_head=4 model.n_kv_head=2 model.n_embd=64 "
                         "model.intermediate_size=96 model.block_size=32 train.micro_batch_size=4 train.steps=5 "
                         "train.lr=0.01 " + kData + "out_dir=" + base);
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* type : {"q8_0", "q4_0"}) {
    SCOPED_TRACE(type);
    const std::string file = base + "/" + type + ".gguf";
    ASSERT_EQ(test::run_cli("export --model " + base + " --format gguf --type " + type + " --out " + file).code, 0);
    const DType t = std::string(type) == "q8_0" ? DType::Q8_0 : DType::Q4_0;
    auto kept = load_causal_lm(file, Device::CPU, t);
    auto decoded = load_causal_lm(file, Device::CPU, DType::F32);
    for (const char* name : {"model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
                             "model.layers.0.mlp.down_proj.weight"}) {
      SCOPED_TRACE(name);
      const Tensor q = kept->parameter(name);
      EXPECT_EQ(q.dtype(), t);
      EXPECT_EQ(q.category(), Category::QuantizedWeights);
      // The file's blocks as they are (q and k rows moved back from GGML's RoPE order): the
      // same values as decoding the file to f32.
      EXPECT_EQ(q.to_floats(), decoded->parameter(name).to_floats());
    }
    // q4_0 blocks for a q8_0 base are decoded and quantized again, tensor by tensor.
    if (t == DType::Q4_0) {
      auto requant = load_causal_lm(file, Device::CPU, DType::Q8_0);
      EXPECT_EQ(requant->parameter("model.layers.0.mlp.up_proj.weight").dtype(), DType::Q8_0);
    }
  }
}

TEST(GgufImport, ATokenizerBigbatchDoesNotReadFromGgufIsRefused) {
  const std::string dir = fresh("sp");
  fs::create_directories(dir);
  auto model = load_causal_lm(std::string(BIGBATCH_FIXTURES) + "/llm/llama");
  gguf::Writer w;
  std::vector<std::string> notes;
  gguf::add_model(w, *model, gguf::TensorType::F32, "fixture", notes);
  w.add("tokenizer.ggml.model", std::string("t5"));  // llama.cpp's Unigram, which bigbatch does not read
  w.write(dir + "/sp.gguf");
  auto r = test::run_cli("train model.init=" + dir + "/sp.gguf train.steps=1 " + kData + "out_dir=" + dir + "/run");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("its tokenizer (tokenizer.ggml.model 't5') is not one bigbatch reads from GGUF (gpt2, llama); "
                          "set data.tokenizer"),
            std::string::npos) << r.output;
}

}  // namespace
}  // namespace bb
