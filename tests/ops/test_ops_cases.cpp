// Every op declared once as a test case: how to call it on the fixture's inputs, which inputs
// get gradients, and how closely it must match PyTorch. test_ops_harness.cpp runs each case;
// adding an op is one entry here and one emit() in scripts/make_fixtures.py.
#include <fmt/format.h>

#include "core/error.h"
#include "ops/ops.h"
#include "op_cases.h"

namespace bb::test {

const std::string& Attrs::str(const std::string& key) const {
  auto it = m_.find(key);
  if (it == m_.end()) throw FormatError(fmt::format("fixture metadata has no '{}'", key));
  return it->second;
}

std::vector<int64_t> Attrs::ints(const std::string& key) const {
  std::vector<int64_t> out;
  const std::string& s = str(key);
  for (size_t pos = 0; pos <= s.size();) {
    size_t comma = std::min(s.find(',', pos), s.size());
    out.push_back(std::stoll(s.substr(pos, comma - pos)));
    pos = comma + 1;
  }
  return out;
}

namespace {

using In = std::vector<Tensor>;
using Out = std::vector<Tensor>;

// Most ops have one output.
template <typename F>
OpFn one(F f) {
  return [f](const In& in, const Attrs& a) { return Out{f(in, a)}; };
}

Tensor arg(const In& in, size_t i) { return i < in.size() ? in[i] : Tensor(); }

OpFn matmul_case() {
  return one([](const In& in, const Attrs& a) {
    return matmul(in[0], in[1], a.i("trans_a") != 0, a.i("trans_b") != 0);
  });
}

OpFn linear_case() {
  return one([](const In& in, const Attrs& a) {
    WeightLayout layout = a.str("layout") == "in_out" ? WeightLayout::kInOut : WeightLayout::kOutIn;
    return linear(in[0], in[1], arg(in, 2), layout);
  });
}

template <Tensor (*Op)(const Tensor&, const Tensor&)>
OpFn binary_case() {
  return one([](const In& in, const Attrs&) { return Op(in[0], in[1]); });
}

template <Tensor (*Op)(const Tensor&)>
OpFn unary_case() {
  return one([](const In& in, const Attrs&) { return Op(in[0]); });
}

OpFn layer_norm_case() {
  return one([](const In& in, const Attrs& a) {
    return layer_norm(in[0], in[1], arg(in, 2), static_cast<float>(a.f("eps")));
  });
}

OpFn attention_case() {
  return one([](const In& in, const Attrs& a) { return attention(in[0], in[1], in[2], a.i("causal") != 0); });
}

}  // namespace

std::vector<OpCase> op_cases() {
  const std::vector<int> x{0}, xy{0, 1}, xyz{0, 1, 2};
  std::vector<OpCase> cases = {
      // --- matrix products: every transpose flag, batched b, and b shared over a's batch
      {"matmul", matmul_case(), xy},
      {"matmul_trans_a", matmul_case(), xy},
      {"matmul_trans_b", matmul_case(), xy},
      {"matmul_trans_ab", matmul_case(), xy},
      {"matmul_batched", matmul_case(), xy},
      {"matmul_batched_trans_ab", matmul_case(), xy},
      {"matmul_shared_b", matmul_case(), xy},
      {"matmul_shared_b_trans_a", matmul_case(), xy},
      {"matmul_shared_b_trans_b", matmul_case(), xy},
      {"matmul_bf16", matmul_case(), xy, kBF16},
      {"matmul_shared_b_bf16", matmul_case(), xy, kBF16},
      {"linear_in_out", linear_case(), xyz},
      {"linear_out_in", linear_case(), xyz},
      {"linear_out_in_nobias", linear_case(), xy},
      {"linear_in_out_bf16", linear_case(), xyz, kBF16},
      {"linear_out_in_bf16", linear_case(), xyz, kBF16},

      // --- elementwise: b repeating over a's leading dims, b of a's shape, b of one element
      {"add_bcast", binary_case<add>(), xy},
      {"add_same", binary_case<add>(), xy},
      {"sub_bcast", binary_case<sub>(), xy},
      {"sub_same", binary_case<sub>(), xy},
      {"mul_bcast", binary_case<mul>(), xy},
      {"mul_same", binary_case<mul>(), xy},
      {"mul_scalar", binary_case<mul>(), xy},
      {"div_bcast", binary_case<div>(), xy},
      {"div_same", binary_case<div>(), xy},
      {"scale", one([](const In& in, const Attrs& a) { return scale(in[0], float(a.f("s"))); }), x},
      {"gelu", unary_case<gelu>(), x},
      {"gelu_bf16", unary_case<gelu>(), x, kBF16},
      {"gelu_exact", unary_case<gelu_exact>(), x},
      {"silu", unary_case<silu>(), x},
      {"relu", unary_case<relu>(), x},
      {"softmax", unary_case<softmax>(), x},

      // --- reductions and layout
      {"sum_mid", one([](const In& in, const Attrs& a) { return sum(in[0], int(a.i("dim")), a.i("keepdim") != 0); }), x},
      {"sum_mid_keepdim", one([](const In& in, const Attrs& a) { return sum(in[0], int(a.i("dim")), a.i("keepdim") != 0); }), x},
      {"mean_mid", one([](const In& in, const Attrs& a) { return mean(in[0], int(a.i("dim")), a.i("keepdim") != 0); }), x},
      {"sum_all", unary_case<sum_all>(), x},
      {"reshape", one([](const In& in, const Attrs& a) { return reshape(in[0], a.ints("dims")); }), x},
      {"permute", one([](const In& in, const Attrs& a) {
         std::vector<int64_t> p = a.ints("perm");
         return permute(in[0], std::vector<int>(p.begin(), p.end()));
       }), x},
      {"transpose", one([](const In& in, const Attrs& a) { return transpose(in[0], int(a.i("d0")), int(a.i("d1"))); }), x},
      {"concat", one([](const In& in, const Attrs& a) { return concat({in[0], in[1]}, int(a.i("dim"))); }), xy},
      {"split", [](const In& in, const Attrs& a) { return split(in[0], a.ints("sizes"), int(a.i("dim"))); }, x},
      {"slice", one([](const In& in, const Attrs& a) {
         return slice(in[0], int(a.i("dim")), a.i("start"), a.i("length"));
       }), x},

      // --- lookups and normalisation (ids, in.1 of embedding, are i64 and get no gradient)
      {"embedding", one([](const In& in, const Attrs&) { return embedding(in[0], in[1]); }), x},
      {"layer_norm", layer_norm_case(), xyz},
      {"layer_norm_nobias", layer_norm_case(), xy},
      {"layer_norm_bf16", layer_norm_case(), xyz, kBF16},
      {"rms_norm", one([](const In& in, const Attrs& a) { return rms_norm(in[0], in[1], float(a.f("eps"))); }), xy},

      // --- attention: q (B, T, H, D) with H = 4, k and v with Hkv = 2 (GQA) or 4 (MHA)
      {"rope", one([](const In& in, const Attrs& a) { return rope(in[0], float(a.f("theta"))); }), x},
      {"attention_causal", attention_case(), xyz},
      {"attention_full", attention_case(), xyz},
      {"attention_mha", attention_case(), xyz},
      {"attention_causal_bf16", attention_case(), xyz, kBF16},

      // --- losses: sums over the counted targets, some targets ignored (-100)
      {"cross_entropy", one([](const In& in, const Attrs& a) {
         return cross_entropy(in[0], in[1], a.i("ignore_index"));
       }), x},
      // chunk_rows below the row count, and not dividing it, so the chunk loop runs 3 times
      {"linear_cross_entropy", one([](const In& in, const Attrs& a) {
         return linear_cross_entropy(in[0], in[1], in[2], a.i("ignore_index"), nullptr, a.i("chunk_rows"));
       }), xy},
  };
  return cases;
}

}  // namespace bb::test
