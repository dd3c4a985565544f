// The CPU backend: oneDNN for matmul (and later convolution), OpenMP loops for the rest.
// Each family of kernels lives in its own file; this header only declares them.
#pragma once
#include "backend/backend.h"

namespace bb {

class CpuBackend final : public Backend {
 public:
  std::string_view name() const override { return "cpu"; }
  void release_caches() override;
  void matmul(const Tensor& a, const Tensor& b, const Tensor& bias, const Tensor& c,
              const MatmulArgs& args) override;
  void cast(const Tensor& src, const Tensor& dst) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override;
  void scale_add(const Tensor& a, float s, const Tensor& t, const Tensor& out) override;
  void accumulate(const Tensor& dst, const Tensor& src, float alpha) override;
  void reduce_sum(const Tensor& src, const Tensor& out, int64_t outer, int64_t dim,
                  int64_t inner) override;
  void sum_squares(const Tensor& src, const Tensor& out) override;
  void permute(const Tensor& src, const Tensor& dst, const int* perm) override;
  void copy_block(const Tensor& src, const Tensor& dst, int64_t outer, int64_t src_dim,
                  int64_t dst_dim, int64_t src_off, int64_t dst_off, int64_t len,
                  int64_t inner) override;
  void fill(const Tensor& dst, float value) override;
  void embedding(const Tensor& table, const Tensor& ids, const Tensor& out) override;
  void embedding_backward(const Tensor& grad_out, const Tensor& ids,
                          const Tensor& grad_table) override;
  void layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                 const Tensor& y, const Tensor& mean, const Tensor& rstd) override;
  void layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                          const Tensor& mean, const Tensor& rstd, const Tensor& dx,
                          const Tensor& dgamma, const Tensor& dbeta) override;
  void rmsnorm(const Tensor& x, const Tensor& gamma, float eps, const Tensor& y,
               const Tensor& rstd) override;
  void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                        const Tensor& rstd, const Tensor& dx, const Tensor& dgamma) override;
  void activation(Activation f, const Tensor& x, const Tensor& y) override;
  void activation_backward(Activation f, const Tensor& x, const Tensor& dy,
                           const Tensor& dx) override;
  void softmax(const Tensor& x, const Tensor& y) override;
  void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) override;
  void dropout(const Tensor& x, float p, RngKey key, const Tensor& y) override;
  void rope(const Tensor& x, float theta, bool inverse, const Tensor& positions, const Tensor& y) override;
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionArgs& args,
                 const Tensor& out, const Tensor& lse) override;
  void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                          const Tensor& lse, const Tensor& dout, const AttentionArgs& args,
                          const Tensor& dq, const Tensor& dk, const Tensor& dv) override;
  void decode_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, int64_t length,
                        const Tensor& out) override;
  void cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                     const Tensor& loss, const Tensor& counted, const Tensor& dlogits,
                     float grad_scale) override;
  void adamw(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v, float lr,
             float beta1, float beta2, float eps, float weight_decay, int64_t step) override;
  void sgd(const Tensor& param, const Tensor& grad, const Tensor& buf, float lr, float momentum,
           float weight_decay, bool nesterov) override;
  bool has_nonfinite(const Tensor& t) override;
  void conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
              const ConvArgs& a) override;
  void conv2d_backward_data(const Tensor& dy, const Tensor& w, const Tensor& dx,
                            const ConvArgs& a) override;
  void conv2d_backward_weights(const Tensor& x, const Tensor& dy, const Tensor& dw,
                               const Tensor& dbias, const ConvArgs& a) override;
  void max_pool2d(const Tensor& x, const Tensor& y, const PoolArgs& a) override;
  void max_pool2d_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx,
                           const PoolArgs& a) override;
  void avg_pool2d(const Tensor& x, const Tensor& y, const PoolArgs& a) override;
  void avg_pool2d_backward(const Tensor& dy, const Tensor& dx, const PoolArgs& a) override;
  void batchnorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& residual,
                 const Tensor& running_mean, const Tensor& running_var, const BatchNormArgs& args,
                 const Tensor& mean, const Tensor& var, const Tensor& rstd,
                 const Tensor& y) override;
  void batchnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& y, const Tensor& gamma,
                          const Tensor& mean, const Tensor& rstd, const BatchNormArgs& args,
                          const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta,
                          const Tensor& dresidual) override;
  void groupnorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, int64_t groups,
                 float eps, const Tensor& y, const Tensor& mean, const Tensor& rstd) override;
  void groupnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                          const Tensor& mean, const Tensor& rstd, int64_t groups,
                          const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta) override;
};

}  // namespace bb
