// The profiling backend's forwarding: one timed call per kernel.
#include "backend/profiling_backend.h"

#include <chrono>
#include <iterator>

#include "backend/profile.h"

namespace bb {
namespace {

// Each activation's forward and backward kernel names, in the order of enum Activation.
constexpr std::string_view kActivationNames[][2] = {
    {"gelu_tanh", "gelu_tanh_backward"}, {"gelu", "gelu_backward"},   {"silu", "silu_backward"},
    {"relu", "relu_backward"},           {"relu6", "relu6_backward"}, {"hardswish", "hardswish_backward"}};
static_assert(std::size(kActivationNames) == size_t(Activation::HardSwish) + 1);
std::string_view activation_name(Activation f) { return kActivationNames[int(f)][0]; }
std::string_view activation_backward_name(Activation f) { return kActivationNames[int(f)][1]; }

std::string_view binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return "add";
    case BinaryOp::Sub: return "sub";
    case BinaryOp::Mul: return "mul";
    case BinaryOp::Div: return "div";
  }
  return "binary";
}

// Books the time from construction to destruction: the kernel call between them.
class Timed {
 public:
  Timed(std::string_view op, double flops) : op_(op), flops_(flops), t0_(std::chrono::steady_clock::now()) {}
  ~Timed() { book_kernel(op_, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(), flops_); }
  Timed(const Timed&) = delete;
  Timed& operator=(const Timed&) = delete;

 private:
  std::string_view op_;
  double flops_;
  std::chrono::steady_clock::time_point t0_;
};

class ProfilingBackend final : public Backend {
 public:
  explicit ProfilingBackend(Backend& inner) : inner_(inner) {}
  std::string_view name() const override { return inner_.name(); }
  void release_caches() override { inner_.release_caches(); }
  void matmul(const Tensor& a, const Tensor& b, const Tensor& bias, const Tensor& c, const MatmulArgs& args) override {
    Timed timed("matmul", 2.0 * double(args.batch) * double(args.m) * double(args.n) * double(args.k));
    inner_.matmul(a, b, bias, c, args);
  }
  void cast(const Tensor& src, const Tensor& dst) override {
    Timed timed("cast", 0);
    inner_.cast(src, dst);
  }
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override {
    Timed timed(binary_name(op), 0);
    inner_.binary(op, a, b, out);
  }
  void scale_add(const Tensor& a, float s, const Tensor& t, const Tensor& out) override {
    Timed timed("scale_add", 0);
    inner_.scale_add(a, s, t, out);
  }
  void accumulate(const Tensor& dst, const Tensor& src, float alpha) override {
    Timed timed("accumulate", 0);
    inner_.accumulate(dst, src, alpha);
  }
  void reduce_sum(const Tensor& src, const Tensor& out, int64_t outer, int64_t dim, int64_t inner) override {
    Timed timed("reduce_sum", 0);
    inner_.reduce_sum(src, out, outer, dim, inner);
  }
  void sum_squares(const Tensor& src, const Tensor& out) override {
    Timed timed("sum_squares", 0);
    inner_.sum_squares(src, out);
  }
  void permute(const Tensor& src, const Tensor& dst, const int* perm) override {
    Timed timed("permute", 0);
    inner_.permute(src, dst, perm);
  }
  void copy_block(const Tensor& src, const Tensor& dst, int64_t outer, int64_t src_dim, int64_t dst_dim, int64_t src_off, int64_t dst_off, int64_t len, int64_t inner) override {
    Timed timed("copy_block", 0);
    inner_.copy_block(src, dst, outer, src_dim, dst_dim, src_off, dst_off, len, inner);
  }
  void fill(const Tensor& dst, float value) override {
    Timed timed("fill", 0);
    inner_.fill(dst, value);
  }
  void embedding(const Tensor& table, const Tensor& ids, const Tensor& out) override {
    Timed timed("embedding", 0);
    inner_.embedding(table, ids, out);
  }
  void embedding_backward(const Tensor& grad_out, const Tensor& ids, const Tensor& grad_table) override {
    Timed timed("embedding_backward", 0);
    inner_.embedding_backward(grad_out, ids, grad_table);
  }
  void layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, const Tensor& y, const Tensor& mean, const Tensor& rstd) override {
    Timed timed("layernorm", 0);
    inner_.layernorm(x, gamma, beta, eps, y, mean, rstd);
  }
  void layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd, const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta) override {
    Timed timed("layernorm_backward", 0);
    inner_.layernorm_backward(dy, x, gamma, mean, rstd, dx, dgamma, dbeta);
  }
  void rmsnorm(const Tensor& x, const Tensor& gamma, float eps, const Tensor& y, const Tensor& rstd) override {
    Timed timed("rmsnorm", 0);
    inner_.rmsnorm(x, gamma, eps, y, rstd);
  }
  void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& rstd, const Tensor& dx, const Tensor& dgamma) override {
    Timed timed("rmsnorm_backward", 0);
    inner_.rmsnorm_backward(dy, x, gamma, rstd, dx, dgamma);
  }
  void activation(Activation f, const Tensor& x, const Tensor& y) override {
    Timed timed(activation_name(f), 0);
    inner_.activation(f, x, y);
  }
  void activation_backward(Activation f, const Tensor& x, const Tensor& dy, const Tensor& dx) override {
    Timed timed(activation_backward_name(f), 0);
    inner_.activation_backward(f, x, dy, dx);
  }
  void softmax(const Tensor& x, const Tensor& y) override {
    Timed timed("softmax", 0);
    inner_.softmax(x, y);
  }
  void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) override {
    Timed timed("softmax_backward", 0);
    inner_.softmax_backward(y, dy, dx);
  }
  void dropout(const Tensor& x, float p, RngKey key, const Tensor& y) override {
    Timed timed("dropout", 0);
    inner_.dropout(x, p, key, y);
  }
  void rope(const Tensor& x, float theta, bool inverse, const Tensor& positions, const Tensor& y) override {
    Timed timed("rope", 0);
    inner_.rope(x, theta, inverse, positions, y);
  }
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionArgs& args, const Tensor& out, const Tensor& lse) override {
    Timed timed("attention", attention_flops(args));
    inner_.attention(q, k, v, args, out, lse);
  }
  void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse, const Tensor& dout, const AttentionArgs& args, const Tensor& dq, const Tensor& dk, const Tensor& dv) override {
    Timed timed("attention_backward", kAttentionBackwardShare * attention_flops(args));
    inner_.attention_backward(q, k, v, out, lse, dout, args, dq, dk, dv);
  }
  void decode_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, int64_t length,
                        const Tensor& out) override {
    Timed timed("decode_attention", 4.0 * double(q.numel()) * double(length));
    inner_.decode_attention(q, k_cache, v_cache, length, out);
  }
  void cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index, const Tensor& loss, const Tensor& counted, const Tensor& dlogits, float grad_scale) override {
    Timed timed("cross_entropy", 0);
    inner_.cross_entropy(logits, targets, ignore_index, loss, counted, dlogits, grad_scale);
  }
  void adamw(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v, float lr, float beta1, float beta2, float eps, float weight_decay, int64_t step) override {
    Timed timed("adamw", 0);
    inner_.adamw(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step);
  }
  void sgd(const Tensor& param, const Tensor& grad, const Tensor& buf, float lr, float momentum, float weight_decay, bool nesterov) override {
    Timed timed("sgd", 0);
    inner_.sgd(param, grad, buf, lr, momentum, weight_decay, nesterov);
  }
  bool has_nonfinite(const Tensor& t) override {
    Timed timed("has_nonfinite", 0);
    return inner_.has_nonfinite(t);
  }
  void conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y, const ConvArgs& a) override {
    Timed timed("conv2d", conv_flops(a));
    inner_.conv2d(x, w, bias, y, a);
  }
  void conv2d_backward_data(const Tensor& dy, const Tensor& w, const Tensor& dx, const ConvArgs& a) override {
    Timed timed("conv2d_backward_data", conv_flops(a));
    inner_.conv2d_backward_data(dy, w, dx, a);
  }
  void conv2d_backward_weights(const Tensor& x, const Tensor& dy, const Tensor& dw, const Tensor& dbias, const ConvArgs& a) override {
    Timed timed("conv2d_backward_weights", conv_flops(a));
    inner_.conv2d_backward_weights(x, dy, dw, dbias, a);
  }
  void max_pool2d(const Tensor& x, const Tensor& y, const PoolArgs& a) override {
    Timed timed("max_pool2d", 0);
    inner_.max_pool2d(x, y, a);
  }
  void max_pool2d_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx, const PoolArgs& a) override {
    Timed timed("max_pool2d_backward", 0);
    inner_.max_pool2d_backward(x, y, dy, dx, a);
  }
  void avg_pool2d(const Tensor& x, const Tensor& y, const PoolArgs& a) override {
    Timed timed("avg_pool2d", 0);
    inner_.avg_pool2d(x, y, a);
  }
  void avg_pool2d_backward(const Tensor& dy, const Tensor& dx, const PoolArgs& a) override {
    Timed timed("avg_pool2d_backward", 0);
    inner_.avg_pool2d_backward(dy, dx, a);
  }
  void batchnorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& residual, const Tensor& running_mean, const Tensor& running_var, const BatchNormArgs& args, const Tensor& mean, const Tensor& var, const Tensor& rstd, const Tensor& y) override {
    Timed timed("batchnorm", 0);
    inner_.batchnorm(x, gamma, beta, residual, running_mean, running_var, args, mean, var, rstd, y);
  }
  void batchnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& y, const Tensor& gamma, const Tensor& mean, const Tensor& rstd, const BatchNormArgs& args, const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta, const Tensor& dresidual) override {
    Timed timed("batchnorm_backward", 0);
    inner_.batchnorm_backward(dy, x, y, gamma, mean, rstd, args, dx, dgamma, dbeta, dresidual);
  }
  void groupnorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, int64_t groups, float eps, const Tensor& y, const Tensor& mean, const Tensor& rstd) override {
    Timed timed("groupnorm", 0);
    inner_.groupnorm(x, gamma, beta, groups, eps, y, mean, rstd);
  }
  void groupnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd, int64_t groups, const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta) override {
    Timed timed("groupnorm_backward", 0);
    inner_.groupnorm_backward(dy, x, gamma, mean, rstd, groups, dx, dgamma, dbeta);
  }

 private:
  Backend& inner_;
};

}  // namespace

Backend& profiling_backend(Backend& inner) {
  static ProfilingBackend profiler(inner);
  return profiler;
}

}  // namespace bb
