// config.json fields that change what a GPT-2 or Llama computes are implemented or refused,
// never ignored; sizes beyond any trainable model and non-positive norm epsilons are one
// FormatError naming the file and field, before anything is allocated.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/hf_gpt2.h"
#include "io/hf_llama.h"
#include "io/hf_model.h"
#include "error_words.h"
#include "llm_fixtures.h"

namespace bb::test {
namespace {

using nlohmann::json;

json fixture_config(const std::string& name) { return json::parse(read_text_file(llm_fixture(name + "/config.json"))); }

GPT2Config gpt2_with(const json& patch) {
  json j = fixture_config("gpt2");
  j.merge_patch(patch);
  return parse_gpt2_config(j.dump(), "gpt2/config.json");
}

LlamaConfig llama_with(const json& patch) {
  json j = fixture_config("llama");
  j.merge_patch(patch);
  return parse_llama_config(j.dump(), "llama/config.json");
}

TEST(HfConfigFields, Gpt2ActivationMustBeTheTanhGelu) {
  for (const char* ok : {"gelu_new", "gelu_pytorch_tanh", "gelu_fast"})
    EXPECT_NO_THROW(gpt2_with({{"activation_function", ok}})) << ok;
  for (const char* bad : {"gelu", "relu", "silu", "quick_gelu"})
    expect_error_naming([&] { gpt2_with({{"activation_function", bad}}); },
                        {"gpt2/config.json", "activation_function", bad});
}

TEST(HfConfigFields, Gpt2AttentionVariantsAreRefused) {
  expect_error_naming([&] { gpt2_with({{"scale_attn_by_inverse_layer_idx", true}}); },
                      {"gpt2/config.json", "scale_attn_by_inverse_layer_idx"});
  expect_error_naming([&] { gpt2_with({{"reorder_and_upcast_attn", true}}); },
                      {"gpt2/config.json", "reorder_and_upcast_attn"});
  expect_error_naming([&] { gpt2_with({{"scale_attn_weights", false}}); }, {"gpt2/config.json", "scale_attn_weights"});
  expect_error_naming([&] { gpt2_with({{"tie_word_embeddings", false}}); }, {"gpt2/config.json", "tie_word_embeddings"});
  expect_error_naming([&] { gpt2_with({{"n_inner", 100}}); }, {"gpt2/config.json", "n_inner"});
  EXPECT_NO_THROW(gpt2_with({{"n_inner", 4 * 64}, {"scale_attn_by_inverse_layer_idx", false}}));
}

TEST(HfConfigFields, NormEpsilonMustBePositive) {
  for (double eps : {0.0, -1e-5}) {
    expect_error_naming([&] { gpt2_with({{"layer_norm_epsilon", eps}}); }, {"gpt2/config.json", "layer_norm_epsilon"});
    expect_error_naming([&] { llama_with({{"rms_norm_eps", eps}}); }, {"llama/config.json", "rms_norm_eps"});
  }
  expect_error_naming([&] { llama_with({{"rms_norm_eps", 1e300}}); }, {"llama/config.json", "rms_norm_eps"});
  expect_error_naming([&] { llama_with({{"rope_theta", 1e300}}); }, {"llama/config.json", "rope_theta"});
}

TEST(HfConfigFields, LlamaVariantsAreRefused) {
  for (const char* act : {"gelu", "relu"})
    expect_error_naming([&] { llama_with({{"hidden_act", act}}); }, {"llama/config.json", "hidden_act", act});
  EXPECT_NO_THROW(llama_with({{"hidden_act", "silu"}}));
  expect_error_naming([&] { llama_with({{"rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}}}}); },
                      {"llama/config.json", "rope_scaling"});
  expect_error_naming([&] { llama_with({{"attention_bias", true}}); }, {"llama/config.json", "attention_bias"});
  expect_error_naming([&] { llama_with({{"mlp_bias", true}}); }, {"llama/config.json", "mlp_bias"});
  // A mistyped flag is a FormatError too (it used to escape as a JSON type error).
  expect_error_naming([&] { llama_with({{"attention_bias", "no"}}); }, {"llama/config.json", "attention_bias"});
  expect_error_naming([&] { llama_with({{"attention_dropout", 0.1}}); }, {"llama/config.json", "attention_dropout"});
  // head_dim * num_attention_heads used to overflow: (2^62 + 16) * 4 wraps to 64 = hidden_size.
  expect_error_naming([&] { llama_with({{"head_dim", (int64_t(1) << 62) + 16}}); }, {"llama/config.json", "head_dim"});
  EXPECT_NO_THROW(llama_with({{"head_dim", 16}}));
}

TEST(HfConfigFields, ImpossibleSizesAreOneSentence) {
  // These used to end in std::bad_alloc (and an abort while unwinding) building the model.
  const std::string dir = scratch_dir("huge");
  for (const char* key : {"n_layer", "n_embd", "vocab_size", "n_positions"}) {
    json j = fixture_config("gpt2");
    j[key] = 1000000000;
    write_text_atomic(dir + "/config.json", j.dump());
    expect_error_naming([&] { load_causal_lm(dir, Device::Meta); }, {dir + "/config.json", key, "1000000000"});
  }
  for (const char* key : {"num_hidden_layers", "hidden_size", "intermediate_size", "vocab_size"}) {
    json j = fixture_config("llama");
    j[key] = 1000000000;
    write_text_atomic(dir + "/config.json", j.dump());
    expect_error_naming([&] { load_causal_lm(dir, Device::Meta); }, {dir + "/config.json", key, "1000000000"});
  }
}

TEST(HfConfigFields, FolderAsConfigFileIsRefused) {
  const std::string dir = scratch_dir("folder");
  std::filesystem::create_directories(dir + "/config.json");
  expect_error_naming([&] { load_causal_lm(dir); }, {dir + "/config.json", "regular file"});
}

}  // namespace
}  // namespace bb::test
