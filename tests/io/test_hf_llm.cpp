// GPT-2 and Llama checkpoints in the Hub's layout: they load, their logits match PyTorch's
// re-implementation of the Hugging Face forward (tolerance 1e-4 relative: max |difference|
// over max |logit|; float32 sums in another order), and save/reload (single file and
// sharded) gives bit-identical tensors and the same config. Bad files: one FormatError each,
// naming the file and the field or tensor.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/grad_mode.h"
#include "io/atomic_file.h"
#include "io/hf_llama.h"
#include "io/hf_model.h"
#include "llm_fixtures.h"

namespace bb::test {
namespace {

void expect_reference_logits(const std::string& name) {
  auto model = load_causal_lm(llm_fixture(name));
  EXPECT_EQ(model->model_type(), name);
  SafetensorsFile ref(llm_fixture(name + "_reference.safetensors"));
  NoGradGuard ng;
  Tensor logits = model->logits(ref.get("input_ids"), Context{});
  EXPECT_LT(max_rel_error(logits, ref.get("logits")), 1e-4) << name;
}

TEST(HfLlm, Gpt2HubCheckpointMatchesPyTorchLogits) { expect_reference_logits("gpt2"); }

TEST(HfLlm, LlamaHubCheckpointMatchesPyTorchLogits) { expect_reference_logits("llama"); }

TEST(HfLlm, LlamaConfigReadsHubKeys) {
  LlamaConfig c = read_llama_config(llm_fixture("llama"));
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.intermediate_size, 176);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.eos_token_id, 2);
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-6f);
}

void expect_same_weights(const CausalLM& a, const CausalLM& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i].first, pb[i].first);
    EXPECT_TRUE(bit_identical(pa[i].second, pb[i].second)) << pa[i].first;
  }
}

nlohmann::json config_of(const std::string& dir) { return nlohmann::json::parse(read_text_file(dir + "/config.json")); }

TEST(HfLlm, SaveAndReloadIsLossless) {
  for (std::string name : {"gpt2", "llama"}) {
    auto model = load_causal_lm(llm_fixture(name));
    const std::string dir = scratch_dir(name);
    save_causal_lm(dir, *model);
    auto back = load_causal_lm(dir);
    expect_same_weights(*model, *back);
    // Saving the reloaded model again writes the same config, and every key a loader reads
    // from the Hub's file is present with the Hub's value.
    const std::string again = scratch_dir(name + "_again");
    save_causal_lm(again, *back);
    EXPECT_EQ(config_of(dir), config_of(again));
    nlohmann::json hub = config_of(llm_fixture(name)), ours = config_of(dir);
    for (const char* key : {"model_type", "vocab_size", "n_layer", "n_head", "n_embd", "n_positions",
                            "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                            "num_key_value_heads", "max_position_embeddings", "rope_theta", "tie_word_embeddings"})
      if (hub.contains(key)) {
        ASSERT_TRUE(ours.contains(key)) << name << " " << key;
        if (hub[key].is_number()) EXPECT_NEAR(ours[key].get<double>(), hub[key].get<double>(), 1e-9) << key;
        else EXPECT_EQ(ours[key], hub[key]) << key;
      }
  }
}

TEST(HfLlm, ShardedSaveAndLoad) {
  auto model = load_llama(llm_fixture("llama"));
  const std::string dir = scratch_dir("sharded");
  save_llama(dir, *model, 100000);  // about 420 KB of weights: several shards
  EXPECT_TRUE(std::filesystem::exists(dir + "/model.safetensors.index.json"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/model.safetensors"));
  auto back = load_causal_lm(dir);
  expect_same_weights(*model, *back);
}

void expect_format_error(const std::function<void()>& f, const std::vector<std::string>& words) {
  try {
    f();
    FAIL() << "no FormatError";
  } catch (const FormatError& e) {
    for (const auto& w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what() << " lacks " << w;
  }
}

TEST(HfLlm, UnsupportedModelTypeNamesFileAndField) {
  const std::string dir = scratch_dir("mistral");
  write_text_atomic(dir + "/config.json", R"({"model_type": "mistral", "hidden_size": 64})");
  expect_format_error([&] { load_causal_lm(dir); }, {dir + "/config.json", "model_type", "mistral"});
  write_text_atomic(dir + "/config.json", R"({"model_type": "llama", "hidden_size": "wide"})");
  expect_format_error([&] { load_causal_lm(dir); }, {"config.json", "hidden_size"});
}

// Writes a safetensors file by hand: 8-byte header length, the header, then `data` bytes.
void write_raw(const std::string& path, const std::string& header, size_t data_bytes, int64_t claimed_len = -1) {
  std::ofstream f(path, std::ios::binary);
  uint64_t n = claimed_len >= 0 ? static_cast<uint64_t>(claimed_len) : header.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << header;
  f << std::string(data_bytes, '\0');
}

TEST(HfLlm, BadSafetensorsAreOneFormatErrorEach) {
  const std::string dir = scratch_dir("bad");
  const std::string p = dir + "/model.safetensors";
  write_raw(p, R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8, 100000);
  expect_format_error([&] { SafetensorsFile f(p); }, {p, "header length"});
  write_raw(p, R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4);
  expect_format_error([&] { SafetensorsFile f(p); }, {p, "'w'", "data_offsets"});
  write_raw(p, R"({"w":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", 8);
  expect_format_error([&] { SafetensorsFile f(p); }, {p, "'w'", "dtype"});
  write_raw(p, R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8);
  expect_format_error([&] { SafetensorsFile f(p); }, {p, "'w'", "data_offsets"});
  // A model folder whose weights miss a tensor names it.
  auto model = load_llama(llm_fixture("llama"));
  NamedTensors some = model->named_parameters();
  some.pop_back();
  std::filesystem::copy_file(llm_fixture("llama/config.json"), dir + "/config.json");
  save_safetensors(p, some);
  expect_format_error([&] { load_causal_lm(dir); }, {dir, "lm_head.weight", "missing"});
}

}  // namespace
}  // namespace bb::test
