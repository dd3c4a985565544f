// A packed batch trains exactly what the same examples give unpacked and padded: the same
// loss of each example and the same gradients (f32: 1e-5 of each tensor's largest gradient;
// bf16 within its rounding), for GPT-2 (learned positions) and Llama (RoPE, grouped kv heads),
// and under activation checkpointing, whose replay must see the same document boundaries.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "autograd/backward.h"
#include "core/grad_mode.h"
#include "data/packing.h"
#include "models/llama.h"
#include "tiny_job.h"

namespace bb::test {
namespace {

constexpr int64_t kBlock = 48;

std::unique_ptr<CausalLM> model(bool llama) {
  if (llama)
    return std::make_unique<Llama>(LlamaConfig{.hidden_size = 32, .intermediate_size = 64, .num_hidden_layers = 2,
                                               .num_attention_heads = 4, .num_key_value_heads = 2,
                                               .vocab_size = 50, .max_position_embeddings = kBlock},
                                   5);
  GPT2Config cfg = tiny_config();
  cfg.block_size = kBlock;
  return std::make_unique<GPT2>(cfg, 5);
}

// Examples of 2 to 44 tokens; every third trains only its second half (a prompt before it).
std::vector<Sequence> examples() {
  std::vector<Sequence> out;
  for (const auto& d : documents(14, 8)) {
    Sequence s{d, {}};
    s.ids.resize(std::min<size_t>(s.ids.size(), kBlock + 1));
    if (out.size() % 3 == 0)
      for (size_t t = 0; t < s.ids.size(); ++t) s.trained.push_back(t >= s.ids.size() / 2);
    out.push_back(s);
  }
  out.push_back({{3, 4}, {}});  // one target
  return out;
}

// The examples unpacked: one a row, padded to the longest.
Batch padded(const std::vector<Sequence>& es) {
  std::vector<const std::vector<int32_t>*> ids;
  std::vector<const std::vector<uint8_t>*> trained;
  std::vector<uint8_t> all;
  for (const Sequence& s : es) ids.push_back(&s.ids), trained.push_back(s.trained.empty() ? nullptr : &s.trained);
  // padded_batch takes every mask or none: give the unmasked ones an all-ones mask
  std::vector<std::vector<uint8_t>> ones;
  ones.reserve(es.size());
  for (size_t i = 0; i < es.size(); ++i)
    if (!trained[i]) trained[i] = &ones.emplace_back(es[i].ids.size(), 1);
  return padded_batch(ids, trained, kBlock, 0);
}

Batch packed(const std::vector<Sequence>& es) {
  PackedDataset rows(es, kBlock, 1, 0);
  return rows.batch(0, rows.size());
}

struct Result {
  double loss = 0;
  int64_t count = 0;
  std::vector<std::vector<float>> grads;
};

Result run(CausalLM& m, const Batch& b, DType compute, bool grads) {
  Context ctx{.compute = compute, .training = true, .seed = 1};
  ctx.positions = b.positions;
  Result r;
  for (auto& [name, p] : m.named_parameters()) p.set_grad(Tensor());
  if (!grads) {
    NoGradGuard off;
    r.loss = m.loss(b.tokens, b.targets, ctx, &r.count).item();
    return r;
  }
  Tensor loss = m.loss(b.tokens, b.targets, ctx, &r.count);
  r.loss = loss.item();
  backward(loss);
  for (auto& [name, p] : m.named_parameters()) r.grads.push_back(p.grad().to_floats());
  return r;
}

// Largest difference over the largest magnitude of `want`.
double rel(const std::vector<float>& got, const std::vector<float>& want) {
  double err = 0, scale = 1e-30;
  for (size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, std::abs(double(got[i]) - double(want[i])));
    scale = std::max(scale, std::abs(double(want[i])));
  }
  return err / scale;
}

void expect_packed_equals_padded(bool llama, DType compute, double tol) {
  SCOPED_TRACE(std::string(llama ? "llama " : "gpt2 ") + std::string(dtype_name(compute)));
  const std::vector<Sequence> es = examples();
  std::unique_ptr<CausalLM> m = model(llama);
  const Batch p = packed(es), u = padded(es);
  ASSERT_LT(p.tokens.dim(0), u.tokens.dim(0));  // the rows really hold several examples
  const Result rp = run(*m, p, compute, true), ru = run(*m, u, compute, true);
  EXPECT_EQ(rp.count, ru.count);
  EXPECT_NEAR(rp.loss, ru.loss, tol * std::abs(ru.loss));
  ASSERT_EQ(rp.grads.size(), ru.grads.size());
  for (size_t i = 0; i < rp.grads.size(); ++i) EXPECT_LT(rel(rp.grads[i], ru.grads[i]), tol) << "parameter " << i;
  // Each example's own loss: the others keep their places but train nothing.
  for (size_t e = 0; e < es.size(); ++e) {
    std::vector<Sequence> only = es;
    for (size_t o = 0; o < only.size(); ++o)
      if (o != e) only[o].trained.assign(only[o].ids.size(), 0);
    const Result alone = run(*m, padded({es[e]}), compute, false), in_row = run(*m, packed(only), compute, false);
    EXPECT_EQ(alone.count, in_row.count);
    EXPECT_NEAR(in_row.loss, alone.loss, tol * std::max(1.0, std::abs(alone.loss))) << "example " << e;
  }
}

TEST(PackedModels, Gpt2PackedEqualsPaddedF32) { expect_packed_equals_padded(false, DType::F32, 1e-5); }
TEST(PackedModels, LlamaPackedEqualsPaddedF32) { expect_packed_equals_padded(true, DType::F32, 1e-5); }
// bf16 rounds each product's inputs; rows grouped differently round alike, up to the order of
// the accumulation.
TEST(PackedModels, Gpt2PackedEqualsPaddedBf16) { expect_packed_equals_padded(false, DType::BF16, 2e-2); }
TEST(PackedModels, LlamaPackedEqualsPaddedBf16) { expect_packed_equals_padded(true, DType::BF16, 2e-2); }

TEST(PackedModels, CheckpointingReplaysTheDocumentBoundaries) {
  for (bool llama : {false, true}) {
    const Batch p = packed(examples());
    std::unique_ptr<CausalLM> m = model(llama);
    const Result base = run(*m, p, DType::F32, true);
    for (const char* policy : {"full", "selective"}) {
      m->set_checkpointing(CheckpointPolicy::parse(policy));
      const Result r = run(*m, p, DType::F32, true);
      for (size_t i = 0; i < r.grads.size(); ++i)
        EXPECT_EQ(0, std::memcmp(r.grads[i].data(), base.grads[i].data(), r.grads[i].size() * 4))
            << (llama ? "llama " : "gpt2 ") << policy << " parameter " << i;
      m->set_checkpointing(CheckpointPolicy::parse("none"));
    }
  }
}

}  // namespace
}  // namespace bb::test
