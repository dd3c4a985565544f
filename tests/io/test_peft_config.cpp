// PEFT adapter_config.json as PEFT writes it: target_modules matched against the Hub's full
// module names with PEFT's rules, rsLoRA's alpha / sqrt(r) scaling, and the settings this
// engine does not implement (DoRA, per-module ranks, extra trained modules) refused.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/hf_model.h"
#include "io/peft.h"
#include "error_words.h"
#include "llm_fixtures.h"

namespace bb::test {
namespace {

using nlohmann::json;

// The keys and value types PEFT 0.10 writes for a GPT-2 LoRA adapter.
json peft_layout() {
  return json::parse(R"({
    "alpha_pattern": {}, "auto_mapping": null, "base_model_name_or_path": "gpt2", "bias": "none",
    "fan_in_fan_out": true, "inference_mode": true, "init_lora_weights": true, "layers_pattern": null,
    "layers_to_transform": null, "loftq_config": {}, "lora_alpha": 16, "lora_dropout": 0.05,
    "megatron_config": null, "megatron_core": "megatron.core", "modules_to_save": null, "peft_type": "LORA",
    "r": 4, "rank_pattern": {}, "revision": null, "target_modules": ["c_attn"], "task_type": "CAUSAL_LM",
    "use_dora": false, "use_rslora": false})");
}

LoraOptions parse(const json& j) { return parse_peft_config(j.dump(2), "adapter/adapter_config.json"); }

TEST(PeftConfig, ReadsPeftsOwnLayout) {
  LoraOptions o = parse(peft_layout());
  EXPECT_EQ(o.r, 4);
  EXPECT_FLOAT_EQ(o.alpha, 16.0f);
  EXPECT_FLOAT_EQ(o.dropout, 0.05f);
  EXPECT_EQ(o.targets, std::vector<std::string>{"c_attn"});
  EXPECT_FLOAT_EQ(o.scaling(), 4.0f);
  json j = peft_layout();
  j["fan_in_fan_out"] = false;  // PEFT corrects it per layer; the stored layout is the same
  EXPECT_NO_THROW(parse(j));
}

TEST(PeftConfig, RsloraScalesByAlphaOverSqrtR) {
  json j = peft_layout();
  j["use_rslora"] = true;
  j["r"] = 16;
  LoraOptions o = parse(j);
  EXPECT_NEAR(o.scaling(), 16.0 / std::sqrt(16.0), 1e-6);
}

TEST(PeftConfig, UnimplementedSettingsAreRefused) {
  const std::vector<std::pair<std::string, json>> bad = {
      {"use_dora", true},
      {"rank_pattern", {{"c_attn", 8}}},
      {"alpha_pattern", {{"transformer.h.0.attn.c_attn", 32}}},
      {"modules_to_save", {"lm_head"}},
      {"layers_to_transform", {0, 1}},
      {"layers_to_transform", 0},
      {"bias", "lora_only"},
      {"use_rslora", "yes"},
      {"lora_dropout", 1.5},
      {"r", 0},
      {"target_modules", "(c_attn"},
      // found by fuzz_peft_config: std::regex overflowed an int reading these numbers
      {"target_modules", "c_attn\\8888888888888888888888"},
      {"target_modules", "c_at{1,88888888888888888888}n"},
      {"target_modules", json::array()},
  };
  for (const auto& [key, value] : bad) {
    json j = peft_layout();
    j[key] = value;
    expect_error_naming([&] { parse(j); }, {"adapter/adapter_config.json", key});
  }
}

TEST(PeftConfig, TargetModulesFollowPeftsMatching) {
  LoraOptions regex;
  regex.target_regex = R"(transformer\.h\.\d+\.attn\.c_attn)";
  EXPECT_TRUE(peft_targets_module(regex, "transformer.h.0.attn.c_attn"));
  EXPECT_FALSE(peft_targets_module(regex, "h.0.attn.c_attn"));
  LoraOptions partial;
  partial.target_regex = "c_attn";  // re.fullmatch: the whole name, not a part of it
  EXPECT_FALSE(peft_targets_module(partial, "transformer.h.0.attn.c_attn"));
  LoraOptions list;
  list.targets = {"attn.c_attn", "model.layers.0.self_attn.q_proj"};
  EXPECT_TRUE(peft_targets_module(list, "transformer.h.3.attn.c_attn"));
  EXPECT_FALSE(peft_targets_module(list, "transformer.h.3.xattn.c_attn"));
  EXPECT_TRUE(peft_targets_module(list, "model.layers.0.self_attn.q_proj"));
  EXPECT_FALSE(peft_targets_module(list, "model.layers.10.self_attn.q_proj"));
}

// An adapter saved here, with its config replaced by `config` (PEFT's layout).
std::string adapter_with(const std::string& tag, const json& config) {
  const std::string dir = scratch_dir(tag);
  auto model = load_causal_lm(llm_fixture("gpt2"));
  LoraOptions o;
  o.r = 4;
  o.targets = {"c_attn"};
  apply_lora(*model, o);
  save_peft_adapter(dir, *model, o, "gpt2");
  write_text_atomic(dir + "/adapter_config.json", config.dump(2));
  return dir;
}

TEST(PeftConfig, RegexOverHubNamesSelectsGpt2Layers) {
  json j = peft_layout();
  j["target_modules"] = R"(transformer\.h\.1\.attn\.c_attn)";  // only the second block
  const std::string dir = adapter_with("regex", j);
  auto model = load_causal_lm(llm_fixture("gpt2"));
  load_peft_adapter(dir, *model);
  const auto layers = lora_layers(*model);
  ASSERT_EQ(layers.size(), 1u);
  EXPECT_EQ(layers[0].first, "h.1.attn.c_attn");
  // A full Hub name in the list form selects that one layer too.
  j["target_modules"] = {"transformer.h.0.attn.c_attn"};
  write_text_atomic(dir + "/adapter_config.json", j.dump(2));
  auto again = load_causal_lm(llm_fixture("gpt2"));
  load_peft_adapter(dir, *again);
  ASSERT_EQ(lora_layers(*again).size(), 1u);
  EXPECT_EQ(lora_layers(*again)[0].first, "h.0.attn.c_attn");
  // One that matches nothing on the Hub's names is refused.
  j["target_modules"] = R"(h\.0\.attn\.c_attn)";
  write_text_atomic(dir + "/adapter_config.json", j.dump(2));
  auto none = load_causal_lm(llm_fixture("gpt2"));
  expect_error_naming([&] { load_peft_adapter(dir, *none); }, {"adapter_config.json", "target_modules"});
}

}  // namespace
}  // namespace bb::test
