// The operations models are built from. Each checks its inputs, allocates its outputs,
// runs its kernel on the inputs' device and, when gradients are wanted, records itself with
// its gradient rule, written from other ops next to its forward. Shape letters:
// docs/architecture.md.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "core/tensor.h"

namespace bb {

// --- matrix products (matmul.cpp)
// a (..., m, k) or, with trans_a, (..., k, m); b (k, n) shared by every batch entry, or
// (..., k, n) with a's batch dims; trans_b reads b as (n, k). Same float dtype.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
// y (..., out) = x (..., in) w + bias. Layout kInOut stores w as (in, out) (Hugging Face
// GPT-2's Conv1D); kOutIn as (out, in) (torch.nn.Linear, Llama). bias (out) f32 or none.
enum class WeightLayout { kInOut, kOutIn };
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias,
              WeightLayout layout = WeightLayout::kOutIn);

// --- fused linears for selective checkpointing (fused.cpp): same values and gradients as
// linear(layer_norm(x)), linear(activation(x)), [linear(rms_norm(x), w) for w in ws] and
// linear(silu(gate) * up), but the intermediate is recomputed in backward instead of saved.
Tensor layer_norm_linear(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                         const Tensor& w, const Tensor& bias, WeightLayout layout);
Tensor activation_linear(Activation f, const Tensor& x, const Tensor& w, const Tensor& bias,
                         WeightLayout layout);
std::vector<Tensor> rms_norm_linears(const Tensor& x, const Tensor& gamma, float eps,
                                     const std::vector<Tensor>& ws, WeightLayout layout);
Tensor swiglu_linear(const Tensor& gate, const Tensor& up, const Tensor& w, WeightLayout layout);

// --- a frozen block-quantized weight (quantized.cpp). w (out, in) q8_0 or q4_0, blocks along
// in whatever the layer's layout, so quantize() of a kInOut weight transposes it. Never
// dequantized as a whole: linear and its input gradient dequantize row tiles of about 1 MiB
// into the activation dtype and multiply tile by tile. No gradient reaches w.
Tensor quantize(const Tensor& w, DType dtype, WeightLayout layout);
Tensor quantized_linear(const Tensor& x, const Tensor& w, const Tensor& bias);
// Rows of w dequantized per tile: a fixed function of the shape, so the meta backend's dry
// run allocates the same workspace as the CPU.
int64_t quantized_tile_rows(int64_t out, int64_t in, DType compute);

// --- elementwise (elementwise.cpp). b repeats over a's leading dims: b's shape is a suffix
// of a's, or b has one element.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& a, float s);
// Identity (no copy) when dtype already matches. A block-quantized a may be cast to a float
// dtype (dequantized; no gradient flows back into it).
Tensor cast(const Tensor& a, DType dtype);
Tensor activation(Activation f, const Tensor& x);
inline Tensor gelu(const Tensor& x) { return activation(Activation::GeluTanh, x); }
inline Tensor gelu_exact(const Tensor& x) { return activation(Activation::GeluExact, x); }
inline Tensor silu(const Tensor& x) { return activation(Activation::Silu, x); }
inline Tensor relu(const Tensor& x) { return activation(Activation::Relu, x); }

// --- reductions (reduce.cpp)
Tensor sum(const Tensor& x, int dim, bool keepdim = false);
Tensor mean(const Tensor& x, int dim, bool keepdim = false);
Tensor sum_all(const Tensor& x);  // f32 scalar
// Sums x (..., suffix) down to `shape` (a suffix of x's shape): the gradient of broadcasting.
Tensor sum_to(const Tensor& x, const Shape& shape);

// --- layout (layout.cpp)
Tensor reshape(const Tensor& x, const std::vector<int64_t>& dims);
Tensor permute(const Tensor& x, const std::vector<int>& perm);
Tensor transpose(const Tensor& x, int d0, int d1);
Tensor concat(const std::vector<Tensor>& xs, int dim);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int dim);
Tensor slice(const Tensor& x, int dim, int64_t start, int64_t length);
// dst[.., offset : offset + src.dim(dim), ..] = src along `dim`, in place (no gradient): the
// key/value cache's write of new positions.
void write_slice(const Tensor& src, const Tensor& dst, int dim, int64_t offset);

// --- lookups and normalisation (embedding.cpp, norm.cpp)
Tensor embedding(const Tensor& table, const Tensor& ids);  // (v, d), ids (...) -> (..., d)
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps);
Tensor rms_norm(const Tensor& x, const Tensor& gamma, float eps);

// --- softmax, dropout (softmax.cpp)
Tensor softmax(const Tensor& x);  // over the last dim
// Drops with probability p using the counter-based stream `key`; identity when p == 0.
Tensor dropout(const Tensor& x, float p, RngKey key);

// --- attention (attention.cpp)
// q (B, T, H, D), k and v (B, T, Hkv, D) -> (B, T, H, D). Never stores (T, T). positions
// (B, T) i64, for packed rows, is each token's position in its own document: a token then
// attends only to the earlier tokens of its document (causal only).
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal = true,
                 const Tensor& positions = {});
// One new query per sequence, q (B, 1, H, D), over the first `length` positions of a
// preallocated cache (B, capacity, Hkv, D), read in place. Generation only: no gradient.
Tensor decode_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, int64_t length);
// x (B, T, H, D); position t, or positions (B, T) i64 of packed rows.
Tensor rope(const Tensor& x, float theta, const Tensor& positions = {});

// --- losses (loss.cpp). Both return the SUM over target tokens (f32 scalar) and write how
// many targets counted (not ignore_index) to *count when given: the trainer normalises.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100,
                     int64_t* count = nullptr);
// Cross-entropy of (x w^T) without holding all (rows, vocab) logits: rows go through in
// chunks of `chunk_rows` (0: about 24M logits a chunk). x (..., C), w (V, C), targets (...) i64. Its gradients are formed
// during the forward, already multiplied by `grad_scale`, the seed backward is expected to
// bring (Context::grad_scale): in f16 they are then cast at the loss scale, not below it.
Tensor linear_cross_entropy(const Tensor& x, const Tensor& w, const Tensor& targets,
                            int64_t ignore_index = -100, int64_t* count = nullptr,
                            int64_t chunk_rows = 0, float grad_scale = 1.0f);

// --- vision (conv.cpp, pool.cpp, batch_norm.cpp): channels-last images (N, H, W, C).
struct Conv2dParams {
  int64_t stride = 1, padding = 0, groups = 1;
};
// x (N, H, W, C), w (O, KH, KW, C/groups) in x's dtype, bias (O) f32 or undefined ->
// (N, OH, OW, O). The weight's and bias's gradients are f32.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p = {});
struct Pool2dParams {
  int64_t kernel = 2, stride = 0, padding = 0;  // stride 0 = kernel
};
Tensor max_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p);  // divides by kernel^2
Tensor global_avg_pool(const Tensor& x);                    // (N, H, W, C) -> (N, C)
Tensor flatten(const Tensor& x);                            // (N, ...) -> (N, rest)
// A training batch's statistics, f32 (C): mean and biased variance over `count` rows.
struct BatchNormStats {
  Tensor mean, var;
  int64_t count = 0;
};
// y = act(xhat * gamma + beta + residual) over the last dim of x (..., C), gamma and beta
// f32 (C); residual like x or undefined. batch_stats: xhat from this batch's statistics
// (reported in *stats), else from running_mean / running_var (f32 (C)), whose gradient is
// the plain affine one (frozen statistics).
Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                  const Tensor& running_mean, const Tensor& running_var, bool batch_stats,
                  float eps, const Tensor& residual = Tensor(), FusedAct act = FusedAct::kNone,
                  BatchNormStats* stats = nullptr);
// GroupNorm of x (N, ..., C) in `groups` groups of channels; gamma, beta f32 (C).
Tensor group_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, int64_t groups,
                  float eps);

}  // namespace bb
