// Backend: the kernels ops call. Ops do all shape checks and allocations (so the meta
// backend, which runs no kernel, counts exactly the same memory); a kernel only fills
// tensors it is given. Tensors reaching a kernel are contiguous, row-major, and have the
// dtypes its comment states. Shape letters: docs/architecture.md.
#pragma once
#include <cstdint>
#include <string_view>

#include "core/tensor.h"

namespace bb {

enum class BinaryOp : uint8_t { Add, Sub, Mul, Div };
enum class Activation : uint8_t { GeluTanh, GeluExact, Silu, Relu, Relu6, HardSwish };

// Counter-based random stream: element i of the mask depends only on (seed, offset, i), so a
// replay (activation checkpointing) draws the same mask. See docs/notes/dropout-rng.md.
struct RngKey {
  uint64_t seed = 0;
  uint64_t offset = 0;
  // Rows of `row` elements (0: one flat run from index0): row r's element j draws stream
  // index ((index0 + r) << 40) + j, so a sample's masks do not depend on the rows beside it
  // or on how far its row is padded.
  uint64_t index0 = 0;
  uint64_t row = 0;
};

struct MatmulArgs {
  int64_t batch = 1;       // independent products; b is shared when b_batched is false
  int64_t m = 0, n = 0, k = 0;
  bool trans_a = false;    // a is stored (batch, k, m) instead of (batch, m, k)
  bool trans_b = false;    // b is stored (n, k) instead of (k, n)
  bool b_batched = true;
  bool accumulate = false; // c += a b instead of c = a b
};

// A 2-D convolution over channels-last tensors: x (n, h, w, c) -> y (n, oh, ow, o), weights
// (o, kh, kw, c / groups). Padding is pad_* before each spatial dim; what follows is implied
// by the output size.
struct ConvArgs {
  int64_t n = 0, h = 0, w = 0, c = 0;
  int64_t o = 0, kh = 1, kw = 1, oh = 0, ow = 0;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int64_t groups = 1;
};

// A pooling window over channels-last x (n, h, w, c) -> y (n, oh, ow, c).
struct PoolArgs {
  int64_t n = 0, h = 0, w = 0, c = 0, oh = 0, ow = 0;
  int64_t kh = 1, kw = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};

// An activation fused into a norm's output pass (one pass over memory instead of two).
enum class FusedAct : uint8_t { kNone, kRelu, kRelu6 };

struct BatchNormArgs {
  float eps = 1e-5f;
  bool batch_stats = true;  // normalise with this batch's statistics, else the given ones
  FusedAct act = FusedAct::kNone;
};

struct AttentionArgs {
  int64_t batch = 0, heads = 0, kv_heads = 0, seq = 0, head_dim = 0;
  bool causal = true;
  float scale = 1.0f;
  // Packed rows (several documents end to end): (batch, seq) i64, each token's position in
  // its own document, so query t sees only keys t - positions[t] .. t (a block-diagonal
  // causal mask, never formed). Undefined: every key up to t.
  Tensor positions{};
};

// FLOPs of one attention forward: two products of (T x T x D) per head, halved by a causal
// mask. The backward's are kAttentionBackwardShare times that (S again, dV, dP, dQ and dK).
inline double attention_flops(const AttentionArgs& a) {
  const double per_head = 4.0 * double(a.seq) * double(a.seq) * double(a.head_dim);
  return double(a.batch) * double(a.heads) * per_head * (a.causal ? 0.5 : 1.0);
}
constexpr double kAttentionBackwardShare = 2.5;

// FLOPs of one convolution (its backward passes for data and for weights each do as many).
inline double conv_flops(const ConvArgs& a) {
  return 2.0 * double(a.n) * double(a.oh) * double(a.ow) * double(a.o) * double(a.c / a.groups) *
         double(a.kh) * double(a.kw);
}

// f32 workspace of one CPU attention call, forward or backward, for every OpenMP thread.
int64_t attention_scratch_floats(const AttentionArgs& args, DType dtype, bool backward);

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  // Drops what the backend keeps between calls (oneDNN's compiled primitives for every shape
  // seen): the planner's rate probes see many shapes a run never uses. Later calls rebuild
  // what they need.
  virtual void release_caches() = 0;

  // c (batch, m, n) = a (batch, m, k) * b (batch?, k, n) [+ bias (n)]. a, b: f32 or bf16
  // (same); c: f32 or bf16; bias: f32 or undefined.
  virtual void matmul(const Tensor& a, const Tensor& b, const Tensor& bias, const Tensor& c,
                      const MatmulArgs& args) = 0;
  // dst = src converted to dst's dtype (f32, bf16, f16); either side may also be block-quantized
  // (q8_0, q4_0: quantize or dequantize, same element count).
  virtual void cast(const Tensor& src, const Tensor& dst) = 0;
  // out = a op b, where b's elements repeat over a's leading dims (b.numel() divides
  // a.numel()); all three the same float dtype, or b f32 with a bf16.
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) = 0;
  // out = a * s + t (t may be undefined: then out = a * s). Same float dtype.
  virtual void scale_add(const Tensor& a, float s, const Tensor& t, const Tensor& out) = 0;
  // dst (f32) += alpha * src (any float dtype, same element count): gradient accumulation.
  virtual void accumulate(const Tensor& dst, const Tensor& src, float alpha) = 0;
  // out (outer, inner) = sum over the middle dim of src (outer, dim, inner); float dtypes,
  // summed in f32.
  virtual void reduce_sum(const Tensor& src, const Tensor& out, int64_t outer, int64_t dim,
                          int64_t inner) = 0;
  // Sum of squares of all elements into out (f32, one element), summed in double.
  virtual void sum_squares(const Tensor& src, const Tensor& out) = 0;
  // dst = src with dims permuted: dst dim i is src dim perm[i].
  virtual void permute(const Tensor& src, const Tensor& dst, const int* perm) = 0;
  // For each o < outer: dst[o, dst_off : dst_off+len, :] = src[o, src_off : src_off+len, :]
  // with rows of `inner` elements; src has src_dim rows per o, dst has dst_dim. Concat,
  // split, slice and their gradients are all this copy.
  virtual void copy_block(const Tensor& src, const Tensor& dst, int64_t outer, int64_t src_dim,
                          int64_t dst_dim, int64_t src_off, int64_t dst_off, int64_t len,
                          int64_t inner) = 0;
  virtual void fill(const Tensor& dst, float value) = 0;

  // out (n, d) = table (v, d) rows at ids (n, i64); ids out of range throw.
  virtual void embedding(const Tensor& table, const Tensor& ids, const Tensor& out) = 0;
  // grad_table (v, d, f32) += rows of grad_out (n, d) scattered at ids.
  virtual void embedding_backward(const Tensor& grad_out, const Tensor& ids,
                                  const Tensor& grad_table) = 0;

  // y (rows, c) = norm(x) * gamma + beta; mean and rstd (rows, f32) saved for backward.
  // gamma, beta f32 (beta may be undefined); x, y f32 or bf16; statistics in f32.
  virtual void layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                         const Tensor& y, const Tensor& mean, const Tensor& rstd) = 0;
  // dx (like x), dgamma and dbeta (f32, written, not accumulated; dbeta may be undefined).
  virtual void layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                                  const Tensor& mean, const Tensor& rstd, const Tensor& dx,
                                  const Tensor& dgamma, const Tensor& dbeta) = 0;
  // RMSNorm: y = x * rstd * gamma; rstd (rows, f32) saved.
  virtual void rmsnorm(const Tensor& x, const Tensor& gamma, float eps, const Tensor& y,
                       const Tensor& rstd) = 0;
  virtual void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                                const Tensor& rstd, const Tensor& dx, const Tensor& dgamma) = 0;

  // y = f(x), dx = f'(x) * dy; same dtype throughout (f32 or bf16).
  virtual void activation(Activation f, const Tensor& x, const Tensor& y) = 0;
  virtual void activation_backward(Activation f, const Tensor& x, const Tensor& dy,
                                   const Tensor& dx) = 0;
  // Softmax over the last dim, computed in f32.
  virtual void softmax(const Tensor& x, const Tensor& y) = 0;
  virtual void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) = 0;
  // y = x * mask / (1 - p); the mask is drawn from `key` (same key, same mask).
  virtual void dropout(const Tensor& x, float p, RngKey key, const Tensor& y) = 0;

  // Rotary embedding on x (batch, seq, heads, head_dim), pairs (i, i + head_dim/2) as in
  // Llama's rotate_half; position t rotates by t * theta^(-2i/head_dim). `inverse` applies
  // the opposite rotation, which is the gradient. positions (batch, seq) i64, each below seq,
  // replaces t where rows are packed; undefined: t itself.
  virtual void rope(const Tensor& x, float theta, bool inverse, const Tensor& positions, const Tensor& y) = 0;

  // Attention without the (seq, seq) score matrix: q (batch, seq, heads, head_dim), k and v
  // (batch, seq, kv_heads, head_dim), out like q; lse (batch, heads, seq, f32) saved, the
  // log-sum-exp of each query's scores, so backward can recompute probabilities tile by tile.
  // The CPU kernels take per-thread tiles from one workspace tensor per call
  // (attention_scratch_floats), which the meta backend allocates too.
  virtual void attention(const Tensor& q, const Tensor& k, const Tensor& v,
                         const AttentionArgs& args, const Tensor& out, const Tensor& lse) = 0;
  virtual void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& out, const Tensor& lse, const Tensor& dout,
                                  const AttentionArgs& args, const Tensor& dq, const Tensor& dk,
                                  const Tensor& dv) = 0;

  // One new query per sequence against a key/value cache read in place: q (batch, 1, heads,
  // head_dim); k_cache and v_cache (batch, capacity, kv_heads, head_dim), of which the first
  // `length` positions are filled; out like q. No mask: every cached position precedes the
  // query. Scores and the softmax in f32. For generation (no gradient).
  virtual void decode_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                int64_t length, const Tensor& out) = 0;
  // Cross-entropy of logits (rows, vocab) against targets (rows, i64), fused with
  // log-softmax. loss (f32, one element) = sum over rows whose target != ignore_index;
  // counted (f32, one element) = how many such rows. If dlogits is defined it receives
  // d(loss)/d(logits) * grad_scale, in the logits' dtype or, from f32 logits, in any float
  // dtype (rounded once).
  virtual void cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                             const Tensor& loss, const Tensor& counted, const Tensor& dlogits,
                             float grad_scale) = 0;

  // AdamW on f32 tensors; step is the 1-based optimizer step (bias correction).
  virtual void adamw(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                     float lr, float beta1, float beta2, float eps, float weight_decay,
                     int64_t step) = 0;
  // SGD with momentum (buf undefined when momentum is 0) and decoupled-free L2 weight decay.
  virtual void sgd(const Tensor& param, const Tensor& grad, const Tensor& buf, float lr,
                   float momentum, float weight_decay, bool nesterov) = 0;
  // True when any element is inf or NaN (the fp16 overflow check).
  virtual bool has_nonfinite(const Tensor& t) = 0;

  // --- vision (conv.cpp, pool.cpp, batchnorm.cpp, groupnorm.cpp): channels-last tensors.
  // y = conv(x, w) [+ bias]; x, w, y one dtype (f32 or bf16), bias f32 or undefined.
  virtual void conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                      const ConvArgs& a) = 0;
  // dx (like dy) = the gradient of conv2d's input.
  virtual void conv2d_backward_data(const Tensor& dy, const Tensor& w, const Tensor& dx,
                                    const ConvArgs& a) = 0;
  // dw (f32, (o, kh, kw, c / groups)) and dbias (f32 or undefined), written, not accumulated.
  virtual void conv2d_backward_weights(const Tensor& x, const Tensor& dy, const Tensor& dw,
                                       const Tensor& dbias, const ConvArgs& a) = 0;
  // Max pooling; backward sends each window's gradient to its first maximal element.
  virtual void max_pool2d(const Tensor& x, const Tensor& y, const PoolArgs& a) = 0;
  virtual void max_pool2d_backward(const Tensor& x, const Tensor& y, const Tensor& dy,
                                   const Tensor& dx, const PoolArgs& a) = 0;
  // Average pooling, dividing by kh * kw (padding counts, as in PyTorch's default).
  virtual void avg_pool2d(const Tensor& x, const Tensor& y, const PoolArgs& a) = 0;
  virtual void avg_pool2d_backward(const Tensor& dy, const Tensor& dx, const PoolArgs& a) = 0;
  // BatchNorm over the last dim of x (rows, c): y = act(xhat * gamma + beta [+ residual]).
  // With batch_stats, mean and var (biased) are this batch's and written; otherwise they
  // are copied from running_mean / running_var. rstd = 1 / sqrt(var + eps) is written. All
  // statistics and gamma, beta are f32 (c); x, y, residual one dtype.
  virtual void batchnorm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         const Tensor& residual, const Tensor& running_mean,
                         const Tensor& running_var, const BatchNormArgs& args,
                         const Tensor& mean, const Tensor& var, const Tensor& rstd,
                         const Tensor& y) = 0;
  // dx (like x), dgamma and dbeta (f32, written); dresidual (like x, or undefined) receives
  // the gradient of the sum before the activation. y is batchnorm's output (for act's mask).
  virtual void batchnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& y,
                                  const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                                  const BatchNormArgs& args, const Tensor& dx,
                                  const Tensor& dgamma, const Tensor& dbeta,
                                  const Tensor& dresidual) = 0;
  // GroupNorm of x (n, ..., c) over groups of c / groups channels; mean, rstd (n, groups) f32.
  virtual void groupnorm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         int64_t groups, float eps, const Tensor& y, const Tensor& mean,
                         const Tensor& rstd) = 0;
  virtual void groupnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                                  const Tensor& mean, const Tensor& rstd, int64_t groups,
                                  const Tensor& dx, const Tensor& dgamma,
                                  const Tensor& dbeta) = 0;
};

// The backend that runs a device's kernels. Adding one is a folder under backend/ and a line
// in registry.cpp.
Backend& backend_for(Device device);

}  // namespace bb
