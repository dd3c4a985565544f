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

// --- elementwise (elementwise.cpp). b repeats over a's leading dims: b's shape is a suffix
// of a's, or b has one element.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& a, float s);
Tensor cast(const Tensor& a, DType dtype);  // identity (no copy) when dtype already matches
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

// --- lookups and normalisation (embedding.cpp, norm.cpp)
Tensor embedding(const Tensor& table, const Tensor& ids);  // (v, d), ids (...) -> (..., d)
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps);
Tensor rms_norm(const Tensor& x, const Tensor& gamma, float eps);

// --- softmax, dropout (softmax.cpp)
Tensor softmax(const Tensor& x);  // over the last dim
// Drops with probability p using the counter-based stream `key`; identity when p == 0.
Tensor dropout(const Tensor& x, float p, RngKey key);

// --- attention (attention.cpp)
// q (B, T, H, D), k and v (B, T, Hkv, D) -> (B, T, H, D). Never stores (T, T).
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal = true);
Tensor rope(const Tensor& x, float theta);  // x (B, T, H, D)

// --- losses (loss.cpp). Both return the SUM over target tokens (f32 scalar) and write how
// many targets counted (not ignore_index) to *count when given: the trainer normalises.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100,
                     int64_t* count = nullptr);
// Cross-entropy of (x w^T) without holding all (rows, vocab) logits: rows go through in
// chunks of `chunk_rows`. x (..., C), w (V, C), targets (...) i64.
Tensor linear_cross_entropy(const Tensor& x, const Tensor& w, const Tensor& targets,
                            int64_t ignore_index = -100, int64_t* count = nullptr,
                            int64_t chunk_rows = 256);

}  // namespace bb
