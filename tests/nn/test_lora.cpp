// LoRA on the Hub-layout fixtures: only adapters train (base weights bitwise unchanged, no
// gradient or optimizer memory for them), merging equals base + adapter (1e-5 relative),
// PEFT files carry PEFT's exact names and keys, bf16, q8_0 and q4_0 base weights work, and K micro-batches
// of B equal one batch of K*B on instruction data of mixed lengths (1e-5 relative).
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/allocator.h"
#include "core/error.h"
#include "core/grad_mode.h"
#include "data/instruct_dataset.h"
#include "io/atomic_file.h"
#include "io/hf_model.h"
#include "io/peft.h"
#include "io/safetensors.h"
#include "../io/llm_fixtures.h"
#include "nn/lora.h"
#include "optim/optimizer.h"
#include "train/job.h"
#include "train/trainer.h"

namespace bb::test {
namespace {

LoraOptions lora(std::vector<std::string> targets, DType base = DType::F32) {
  LoraOptions o;
  o.r = 4;
  o.alpha = 8;
  o.targets = std::move(targets);
  o.base_dtype = base;
  o.seed = 11;
  return o;
}

bool is_adapter(const std::string& name) {
  return name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos;
}

// Bytes mod 97, with 99 ending a turn: ids that fit the fixtures' 100-token vocabulary.
class ModTokenizer final : public Tokenizer {
 public:
  ModTokenizer() {
    SpecialIds ids;
    ids.eos = 99;
    set_special_ids(ids);
  }
  std::vector<int64_t> encode(std::string_view text) const override {
    std::vector<int64_t> ids;
    for (unsigned char c : text) ids.push_back(c % 97);
    return ids;
  }
  std::string decode(const std::vector<int64_t>&) const override { return ""; }
  int64_t vocab_size() const override { return 100; }
  std::string name() const override { return "mod"; }
};

// Prompt/completion pairs of very different lengths.
InstructDataset instruct_data() {
  ModTokenizer tok;
  std::vector<InstructExample> ex;
  for (int i = 0; i < 32; ++i) {
    std::string prompt(1 + (i * 7) % 13, char('a' + i % 26));
    std::string completion(1 + (i * 5) % 17, char('A' + (i * 3) % 26));
    nlohmann::json j = {{"prompt", prompt}, {"completion", completion}};
    ex.push_back(encode_instruct_line(j.dump(), "mem:" + std::to_string(i), tok));
  }
  return InstructDataset(std::move(ex), 24, 5, 99);
}

struct LoraRun {
  std::unique_ptr<CausalLM> model;
  std::unique_ptr<Optimizer> opt;
  SingleProcess comm;
  std::unique_ptr<Trainer> trainer;
  LoraRun(const std::string& fixture, const LoraOptions& o, const Dataset& data, int64_t micro, int64_t accum,
          bool sgd = false) {
    model = load_causal_lm(fixture.find('/') == std::string::npos ? llm_fixture(fixture) : fixture);
    apply_lora(*model, o);
    auto groups = default_param_groups(model->named_parameters());
    if (sgd) opt = std::make_unique<SGD>(groups, SGDOptions{.momentum = 0.9f});
    else opt = std::make_unique<AdamW>(groups, AdamWOptions{});
    trainer = std::make_unique<Trainer>(lm_loss(*model), *opt, data,
                                        Schedule{.kind = "constant", .lr = 1e-2f, .warmup_steps = 0, .total_steps = 10},
                                        TrainerOptions{.micro_batch = micro, .grad_accum = accum, .grad_clip = 0.0f,
                                                       .precision = Precision::kFP32, .seed = 3},
                                        comm);
  }
};

TEST(Lora, OnlyAdaptersTrainAndOnlyTheyCostGradientAndOptimizerMemory) {
  InstructDataset data = instruct_data();
  const MemoryStats before = Allocator::of(Device::CPU).stats();
  LoraRun run("llama", lora({"q_proj", "v_proj"}), data, 4, 2);
  NamedTensors base_before;
  int64_t adapter_bytes = 0, adapters = 0;
  for (auto& [name, t] : run.model->named_parameters()) {
    EXPECT_EQ(t.requires_grad(), is_adapter(name)) << name;
    if (is_adapter(name)) {
      adapter_bytes += static_cast<int64_t>(Allocator::round_size(t.nbytes()));
      ++adapters;
    } else {
      base_before.emplace_back(name, t.clone());
    }
  }
  EXPECT_EQ(adapters, 2 * 2 * 2);  // 2 layers x (q, v) x (A, B)
  EXPECT_EQ(run.opt->params().size(), static_cast<size_t>(adapters));
  NamedTensors adapters_before;
  for (auto& [name, t] : run.model->named_parameters())
    if (is_adapter(name)) adapters_before.emplace_back(name, t.clone());
  for (int s = 0; s < 3; ++s) run.trainer->step();
  const MemoryStats after = Allocator::of(Device::CPU).stats();
  const auto cat = [](Category c) { return static_cast<size_t>(c); };
  EXPECT_EQ(after.live[cat(Category::Gradients)] - before.live[cat(Category::Gradients)], adapter_bytes);
  EXPECT_EQ(after.live[cat(Category::OptimizerState)] - before.live[cat(Category::OptimizerState)], 2 * adapter_bytes);
  for (auto& [name, t] : base_before)
    EXPECT_TRUE(bit_identical(run.model->parameter(name), t)) << name << " changed";
  for (auto& [name, t] : adapters_before)
    EXPECT_FALSE(bit_identical(run.model->parameter(name), t)) << name << " did not train";
}

Tensor ids() { return SafetensorsFile(llm_fixture("llama_reference.safetensors")).get("input_ids"); }

TEST(Lora, MergedModelEqualsBasePlusAdapter) {
  InstructDataset data = instruct_data();
  for (auto [fixture, target] : {std::pair{"llama", "q_proj|v_proj|down_proj"}, std::pair{"gpt2", "c_attn|c_fc"}}) {
    LoraRun run(fixture, lora(split_target_modules(target)), data, 4, 1);
    for (int s = 0; s < 2; ++s) run.trainer->step();  // B leaves zero
    NoGradGuard ng;
    Tensor adapted = run.model->logits(ids(), Context{});
    auto plain = load_causal_lm(llm_fixture(fixture));
    Tensor base = plain->logits(ids(), Context{});
    for (auto& [name, t] : merged_weights(*run.model)) plain->set_parameter(name, t);
    Tensor merged = plain->logits(ids(), Context{});
    EXPECT_GT(max_rel_error(adapted, base), 1e-4) << fixture << ": the adapter should matter";
    EXPECT_LT(max_rel_error(merged, adapted), 1e-5) << fixture;
  }
}

TEST(Lora, PeftFilesHaveExactNamesAndReloadTheSame) {
  InstructDataset data = instruct_data();
  for (auto [fixture, first] : {std::pair{"gpt2", "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"},
                                std::pair{"llama", "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"}}) {
    const bool is_gpt2 = std::string(fixture) == "gpt2";
    LoraOptions o = lora(is_gpt2 ? std::vector<std::string>{"c_attn"} : std::vector<std::string>{"q_proj", "v_proj"});
    LoraRun run(fixture, o, data, 4, 1);
    run.trainer->step();
    const std::string dir = scratch_dir(fixture);
    save_peft_adapter(dir, *run.model, o, "fixture");
    SafetensorsFile st(dir + "/adapter_model.safetensors");
    std::vector<std::string> names = st.names();
    ASSERT_EQ(names.size(), is_gpt2 ? 4u : 8u);
    EXPECT_TRUE(st.contains(first)) << fixture;
    const std::string b = std::string(first).replace(std::string(first).size() - 13, 6, "lora_B");
    ASSERT_TRUE(st.contains(b)) << b;
    const int64_t in = 64, out = is_gpt2 ? 192 : 64;
    EXPECT_EQ(st.entry(first).shape, (Shape{4, in}));
    EXPECT_EQ(st.entry(b).shape, (Shape{out, 4}));
    auto j = nlohmann::json::parse(read_text_file(dir + "/adapter_config.json"));
    EXPECT_EQ(j["peft_type"], "LORA");
    EXPECT_EQ(j["task_type"], "CAUSAL_LM");
    EXPECT_EQ(j["r"], 4);
    EXPECT_EQ(j["lora_alpha"], 8.0);
    EXPECT_EQ(j["bias"], "none");
    EXPECT_EQ(j["base_model_name_or_path"], "fixture");
    EXPECT_TRUE(j["target_modules"].is_array());
    EXPECT_TRUE(j.contains("lora_dropout"));
    auto back = load_causal_lm(llm_fixture(fixture));
    load_peft_adapter(dir, *back);
    NoGradGuard ng;
    EXPECT_EQ(max_rel_error(back->logits(ids(), Context{}), run.model->logits(ids(), Context{})), 0.0) << fixture;
  }
}

TEST(Lora, Bf16BaseWeightsWork) {
  InstructDataset data = instruct_data();
  LoraRun f32("llama", lora({"q_proj", "v_proj"}), data, 4, 1);
  LoraRun bf16("llama", lora({"q_proj", "v_proj"}, DType::BF16), data, 4, 1);
  EXPECT_EQ(bf16.model->parameter("model.layers.0.mlp.up_proj.weight").dtype(), DType::BF16);
  EXPECT_EQ(bf16.model->parameter("lm_head.weight").dtype(), DType::F32);
  EXPECT_EQ(bf16.model->parameter("model.layers.0.self_attn.q_proj.lora_A.weight").dtype(), DType::F32);
  StepResult a = f32.trainer->step(), b = bf16.trainer->step();
  EXPECT_NEAR(a.loss, b.loss, 1e-2 * std::abs(a.loss));  // bf16 rounding of the weights
  StepResult b2 = bf16.trainer->step();
  EXPECT_TRUE(std::isfinite(b2.loss));
}

TEST(Lora, AQuantizedBaseStaysFrozenInItsBlocksAndTrainsTheAdapters) {
  // GPT-2's Conv1D weights are (in, out): quantized along their inputs, so stored (out, in).
  InstructDataset data = instruct_data();
  LoraRun f32("gpt2", lora({"c_attn", "c_fc"}), data, 4, 1);
  const StepResult ref = f32.trainer->step(), ref2 = f32.trainer->step();
  for (auto [t, tol] : {std::pair{DType::Q8_0, 5e-3}, std::pair{DType::Q4_0, 5e-2}}) {
    SCOPED_TRACE(dtype_name(t));
    LoraRun q("gpt2", lora({"c_attn", "c_fc"}, t), data, 4, 1);
    const Tensor w = q.model->parameter("h.0.attn.c_attn.weight");
    EXPECT_EQ(w.dtype(), t);
    EXPECT_EQ(w.category(), Category::QuantizedWeights);
    EXPECT_EQ(w.shape(), (Shape{192, 64}));
    EXPECT_EQ(q.model->parameter("h.0.mlp.c_proj.weight").dtype(), t);  // frozen, not adapted: also blocks
    EXPECT_EQ(q.model->parameter("wte.weight").dtype(), DType::F32);
    const std::vector<uint8_t> before(w.data<uint8_t>(), w.data<uint8_t>() + w.nbytes());
    const StepResult a = q.trainer->step();
    EXPECT_NEAR(a.loss, ref.loss, tol * std::abs(ref.loss));  // the quantization error of the base
    const StepResult b = q.trainer->step();  // after an update of the adapters
    EXPECT_NEAR(b.loss, ref2.loss, tol * std::abs(ref2.loss));
    EXPECT_EQ(0, std::memcmp(before.data(), w.raw(), before.size())) << "the base is frozen";
    // Merging dequantizes into the layer's own (in, out) layout.
    const NamedTensors merged = merged_weights(*q.model);
    for (const auto& [name, m] : merged) {
      if (name == "h.0.attn.c_attn.weight") {
        EXPECT_EQ(m.shape(), (Shape{64, 192}));
      }
    }
  }
}

TEST(Lora, AQuantizedBaseNeedsWholeBlocksOfInputs) {
  // The Llama fixture's MLP is 176 wide: down_proj's inputs are not whole blocks of 32.
  InstructDataset data = instruct_data();
  try {
    LoraRun q("llama", lora({"q_proj"}, DType::Q8_0), data, 4, 1);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("down_proj has 176 inputs, not a multiple of 32"), std::string::npos) << e.what();
  }
}

TEST(Lora, ABf16BaseIsUsedStraightFromABf16File) {
  // The Llama fixture saved in bf16, as most Hub checkpoints are.
  const std::string dir = scratch_dir("llama_bf16");
  {
    auto f32 = load_causal_lm(llm_fixture("llama"));
    NamedTensors low;
    for (auto& [name, t] : f32->named_parameters()) low.emplace_back(name, cast(t, DType::BF16));
    save_safetensors_dir(dir, low, 0, {{"format", "pt"}});
    std::filesystem::copy_file(llm_fixture("llama/config.json"), dir + "/config.json",
                               std::filesystem::copy_options::overwrite_existing);
  }
  auto model = load_causal_lm(dir, Device::CPU, DType::BF16);
  const Tensor q = model->parameter("model.layers.0.self_attn.q_proj.weight");
  const Tensor k = model->parameter("model.layers.0.self_attn.k_proj.weight");
  EXPECT_EQ(q.dtype(), DType::BF16);
  // Both point into the mapping of the file: no copy was made.
  EXPECT_TRUE(q.impl()->storage->external());
  EXPECT_TRUE(k.impl()->storage->external());
  EXPECT_EQ(model->parameter("model.norm.weight").dtype(), DType::F32);  // widened: it trains or feeds f32 math
  EXPECT_EQ(model->parameter("lm_head.weight").dtype(), DType::F32);
  const void* before = q.data<uint16_t>();
  apply_lora(*model, lora({"q_proj", "v_proj"}, DType::BF16));
  EXPECT_EQ(model->parameter("model.layers.0.self_attn.q_proj.weight").data<uint16_t>(), before);
  // The same logits as lowering an f32 load (both are the same bf16 values).
  auto reference = load_causal_lm(dir);
  apply_lora(*reference, lora({"q_proj", "v_proj"}, DType::BF16));
  NoGradGuard ng;
  Tensor tokens = Tensor::from_ints(Shape{1, 5}, {3, 14, 15, 92, 65});
  EXPECT_EQ(max_rel_error(model->logits(tokens, Context{}), reference->logits(tokens, Context{})), 0.0);
}

// The GPT-2 fixture has the Hub's resid_pdrop 0.1; dropout masks depend on the micro-batch,
// so the equivalence is checked on a copy without dropout.
std::string gpt2_without_dropout() {
  const std::string dir = scratch_dir("gpt2_nodrop");
  auto j = nlohmann::json::parse(read_text_file(llm_fixture("gpt2/config.json")));
  j["resid_pdrop"] = 0.0;
  j["embd_pdrop"] = 0.0;
  write_text_atomic(dir + "/config.json", j.dump());
  std::filesystem::copy_file(llm_fixture("gpt2/model.safetensors"), dir + "/model.safetensors");
  return dir;
}

TEST(Lora, AccumulationOnInstructionDataMatchesOneLargeBatch) {
  InstructDataset data = instruct_data();
  std::vector<int64_t> counts;
  for (int i = 0; i < 4; ++i) counts.push_back(data.batch(i * 2, 2).target_count);
  EXPECT_NE(*std::min_element(counts.begin(), counts.end()), *std::max_element(counts.begin(), counts.end()));
  const std::string gpt2 = gpt2_without_dropout();
  for (const std::string& fixture : {std::string("llama"), gpt2}) {
    LoraOptions o = lora(fixture == gpt2 ? std::vector<std::string>{"c_attn", "c_proj"}
                                                        : std::vector<std::string>{"q_proj", "v_proj", "up_proj"});
    LoraRun split(fixture, o, data, 2, 4, true), whole(fixture, o, data, 8, 1, true);
    for (int s = 0; s < 3; ++s) {
      StepResult ra = split.trainer->compute_gradients(), rb = whole.trainer->compute_gradients();
      EXPECT_EQ(ra.tokens, rb.tokens);
      for (auto& [name, t] : split.model->named_parameters()) {
        if (!t.requires_grad()) continue;
        Tensor g = whole.model->parameter(name).grad();
        ASSERT_TRUE(t.grad().defined() && g.defined()) << name;
        // After the first step B is not zero, so A's gradient is not zero either.
        if (s > 0 || name.find("lora_B") != std::string::npos) {
          EXPECT_LT(max_rel_error(t.grad(), g), 1e-5) << fixture << " step " << s << " " << name;
        }
      }
      split.trainer->apply_gradients(ra);
      whole.trainer->apply_gradients(rb);
    }
  }
}

TEST(Lora, TargetModulesFollowPeft) {
  LoraOptions o;
  o.targets = split_target_modules("q_proj|v_proj, c_attn");
  EXPECT_EQ(o.targets, (std::vector<std::string>{"q_proj", "v_proj", "c_attn"}));
  EXPECT_TRUE(lora_matches(o, "model.layers.3.self_attn.q_proj"));
  EXPECT_FALSE(lora_matches(o, "model.layers.3.self_attn.xq_proj"));
  o.target_regex = R"(.*\.(q|k)_proj)";
  EXPECT_TRUE(lora_matches(o, "model.layers.0.self_attn.k_proj"));
  EXPECT_FALSE(lora_matches(o, "model.layers.0.self_attn.v_proj"));
  auto model = load_causal_lm(llm_fixture("gpt2"));
  EXPECT_THROW(apply_lora(*model, lora({"nothing_here"})), ConfigError);
}

}  // namespace
}  // namespace bb::test
