// The meta backend: tensors have shapes and dtypes but no data, and no kernel runs. Ops do
// all their allocations before calling a kernel, so a forward and backward here counts the
// same bytes as on the CPU: this is the planner's dry run. It also counts the floating-point
// work of the products (matmul, attention, conv) that would have run, so the planner's time
// model sees the real architecture, LoRA and checkpoint replays included.
#pragma once
#include "backend/backend.h"

namespace bb {

class MetaBackend final : public Backend {
 public:
  std::string_view name() const override { return "meta"; }
  // The CPU backend widens f16 operands (and an f16 output) into f32 workspace for the call.
  // Multiply-adds counted twice, as FLOP figures are quoted.
  struct Flops {
    double matmul = 0, attention = 0, conv = 0;
    // Bytes read and written by every op that is not a product (norms, activations, casts,
    // the loss, the optimizer): the memory-bound share of a step.
    double bytes = 0;
    double calls = 0;  // kernel calls: each pays a fixed cost (an OpenMP fork and join)
    double total() const { return matmul + attention + conv; }
  };
  Flops flops() const { return flops_; }
  // The shape of the last attention call (batch, heads, sequence, head size): what the
  // planner's attention-rate probe runs at.
  AttentionArgs last_attention() const { return last_attention_; }

  void matmul(const Tensor& a, const Tensor& b, const Tensor& bias, const Tensor& c,
              const MatmulArgs& args) override {
    flops_.matmul += 2.0 * double(args.batch) * double(args.m) * double(args.n) * double(args.k);
    flops_.calls += 1;
    if (a.dtype() != DType::F16) return;
    const Tensor a32 = workspace(a.numel()), b32 = workspace(b.numel());
    if (c.dtype() == DType::F16) workspace(c.numel());
  }
  void cast(const Tensor& src, const Tensor& dst) override { touch({&src, &dst}); }
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override { touch({&a, &b, &out}); }
  void scale_add(const Tensor& a, float s, const Tensor& t, const Tensor& out) override { touch({&a, &t, &out}); }
  void accumulate(const Tensor& dst, const Tensor& src, float alpha) override { touch({&dst, &dst, &src}); }
  void reduce_sum(const Tensor& src, const Tensor& out, int64_t outer, int64_t dim,
                  int64_t inner) override { touch({&src, &out}); }
  void sum_squares(const Tensor& src, const Tensor& out) override { touch({&src}); }
  void permute(const Tensor& src, const Tensor& dst, const int* perm) override { touch({&src, &dst}); }
  void copy_block(const Tensor& src, const Tensor& dst, int64_t outer, int64_t src_dim,
                  int64_t dst_dim, int64_t src_off, int64_t dst_off, int64_t len,
                  int64_t inner) override { touch({&src, &dst}); }
  void fill(const Tensor& dst, float value) override { touch({&dst}); }
  void embedding(const Tensor& table, const Tensor& ids, const Tensor& out) override { touch({&ids, &out}); }
  void embedding_backward(const Tensor& grad_out, const Tensor& ids,
                          const Tensor& grad_table) override { touch({&grad_out, &ids, &grad_table}); }
  void layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                 const Tensor& y, const Tensor& mean, const Tensor& rstd) override { touch({&x, &y}); }
  void layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                          const Tensor& mean, const Tensor& rstd, const Tensor& dx,
                          const Tensor& dgamma, const Tensor& dbeta) override { touch({&dy, &x, &dx}); }
  void rmsnorm(const Tensor& x, const Tensor& gamma, float eps, const Tensor& y,
               const Tensor& rstd) override { touch({&x, &y}); }
  void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                        const Tensor& rstd, const Tensor& dx, const Tensor& dgamma) override { touch({&dy, &x, &dx}); }
  void activation(Activation f, const Tensor& x, const Tensor& y) override { touch({&x, &y}); }
  void activation_backward(Activation f, const Tensor& x, const Tensor& dy,
                           const Tensor& dx) override { touch({&x, &dy, &dx}); }
  void softmax(const Tensor& x, const Tensor& y) override { touch({&x, &y}); }
  void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) override { touch({&y, &dy, &dx}); }
  void dropout(const Tensor& x, float p, RngKey key, const Tensor& y) override { touch({&x, &y}); }
  void rope(const Tensor& x, float theta, bool inverse, const Tensor& y) override { touch({&x, &y}); }
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionArgs& args,
                 const Tensor& out, const Tensor& lse) override {
    flops_.attention += attention_flops(args);  // S = Q K^T and O = P V
    flops_.calls += 1;
    last_attention_ = args;
    workspace(attention_scratch_floats(args, q.dtype(), false));
  }
  void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                          const Tensor& lse, const Tensor& dout, const AttentionArgs& args,
                          const Tensor& dq, const Tensor& dk, const Tensor& dv) override {
    flops_.attention += kAttentionBackwardShare * attention_flops(args);
    flops_.calls += 1;
    workspace(attention_scratch_floats(args, q.dtype(), true));
  }
  void cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                     const Tensor& loss, const Tensor& counted, const Tensor& dlogits,
                     float grad_scale) override { touch({&logits, &dlogits}); }
  void adamw(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v, float lr,
             float beta1, float beta2, float eps, float weight_decay, int64_t step) override { touch({&param, &grad, &m, &v, &param, &m, &v}); }
  void sgd(const Tensor& param, const Tensor& grad, const Tensor& buf, float lr, float momentum,
           float weight_decay, bool nesterov) override { touch({&param, &grad, &buf, &param, &buf}); }
  bool has_nonfinite(const Tensor& t) override { return false; }
  void conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
              const ConvArgs& a) override { flops_.conv += conv_flops(a); }
  void conv2d_backward_data(const Tensor& dy, const Tensor& w, const Tensor& dx,
                            const ConvArgs& a) override { flops_.conv += conv_flops(a); }
  void conv2d_backward_weights(const Tensor& x, const Tensor& dy, const Tensor& dw,
                               const Tensor& dbias, const ConvArgs& a) override { flops_.conv += conv_flops(a); }
  void max_pool2d(const Tensor& x, const Tensor& y, const PoolArgs& a) override { touch({&x, &y}); }
  void max_pool2d_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx,
                           const PoolArgs& a) override { touch({&x, &y, &dy, &dx}); }
  void avg_pool2d(const Tensor& x, const Tensor& y, const PoolArgs& a) override { touch({&x, &y}); }
  void avg_pool2d_backward(const Tensor& dy, const Tensor& dx, const PoolArgs& a) override { touch({&dy, &dx}); }
  void batchnorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& residual,
                 const Tensor& running_mean, const Tensor& running_var, const BatchNormArgs& args,
                 const Tensor& mean, const Tensor& var, const Tensor& rstd,
                 const Tensor& y) override { touch({&x, &y}); }
  void batchnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& y, const Tensor& gamma,
                          const Tensor& mean, const Tensor& rstd, const BatchNormArgs& args,
                          const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta,
                          const Tensor& dresidual) override { touch({&dy, &x, &dx}); }
  void groupnorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, int64_t groups,
                 float eps, const Tensor& y, const Tensor& mean, const Tensor& rstd) override { touch({&x, &y}); }
  void groupnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                          const Tensor& mean, const Tensor& rstd, int64_t groups,
                          const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta) override { touch({&dy, &x, &dx}); }
 private:
  // A tensor listed twice is read and written.
  void touch(std::initializer_list<const Tensor*> tensors) {
    for (const Tensor* t : tensors)
      if (t->defined()) flops_.bytes += double(t->nbytes());
    flops_.calls += 1;
  }
  static double conv_flops(const ConvArgs& a) {
    return 2.0 * double(a.n) * double(a.oh) * double(a.ow) * double(a.o) * double(a.c / a.groups) *
           double(a.kh) * double(a.kw);
  }
  Flops flops_;
  AttentionArgs last_attention_;
  // Counts (and at once releases) what a CPU kernel takes as workspace during the call.
  static Tensor workspace(int64_t floats) {
    return Tensor::empty(Shape{floats}, DType::F32, Device::Meta, Category::Workspace);
  }
};

}  // namespace bb
