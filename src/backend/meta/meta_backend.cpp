// Arithmetic on the meta backend's counted work.
#include "backend/meta/meta_backend.h"

#include <cmath>

namespace bb {

namespace {
template <class Key>
std::map<Key, double> combine_counts(const std::map<Key, double>& a, double wa, const std::map<Key, double>& b,
                                     double wb) {
  std::map<Key, double> out;
  for (const auto& [k, n] : a) out[k] += wa * n;
  for (const auto& [k, n] : b) out[k] += wb * n;
  // A shape whose calls cancel (in a difference of two counts) is no work at all.
  std::erase_if(out, [](const auto& kv) { return std::abs(kv.second) < 1e-9; });
  return out;
}
}  // namespace

MetaBackend::Flops MetaBackend::combine(const Flops& a, double wa, const Flops& b, double wb) {
  Flops f;
  f.matmul = wa * a.matmul + wb * b.matmul;
  f.attention = wa * a.attention + wb * b.attention;
  f.conv = wa * a.conv + wb * b.conv;
  f.bytes = wa * a.bytes + wb * b.bytes;
  f.calls = wa * a.calls + wb * b.calls;
  f.matmuls = combine_counts(a.matmuls, wa, b.matmuls, wb);
  f.attentions = combine_counts(a.attentions, wa, b.attentions, wb);
  f.kernels = combine_counts(a.kernels, wa, b.kernels, wb);
  return f;
}

MatmulArgs MetaBackend::matmul_args(const MatmulKey& k) {
  const auto& [batch, m, n, kk, ta, tb, bb, acc, bias, in, out] = k;
  return MatmulArgs{.batch = batch, .m = m, .n = n, .k = kk, .trans_a = ta, .trans_b = tb, .b_batched = bb,
                    .accumulate = acc};
}

AttentionArgs MetaBackend::attention_args(const AttentionKey& k) {
  const auto& [batch, heads, kv_heads, seq, head_dim, causal, dtype, backward] = k;
  return AttentionArgs{.batch = batch, .heads = heads, .kv_heads = kv_heads, .seq = seq, .head_dim = head_dim,
                       .causal = causal};
}

}  // namespace bb
