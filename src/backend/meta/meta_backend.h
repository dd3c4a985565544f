// The meta backend: tensors have shapes and dtypes but no data, and no kernel runs. Ops do
// all their allocations before calling a kernel, so a forward and backward here counts the
// same bytes as on the CPU: this is the planner's dry run. It also counts the floating-point
// work of the products (matmul, attention, conv) that would have run, so the planner's time
// model sees the real architecture, LoRA and checkpoint replays included.
#pragma once
#include <functional>
#include <map>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "backend/backend.h"

namespace bb {

class MetaBackend final : public Backend {
 public:
  std::string_view name() const override { return "meta"; }
  void release_caches() override {}
  // The CPU backend widens f16 operands (and an f16 output) into f32 workspace for the call.
  // Multiply-adds counted twice, as FLOP figures are quoted.
  // A matmul call as the CPU kernel sees it: (batch, m, n, k, trans_a, trans_b, b_batched,
  // accumulate, bias, input dtype, output dtype).
  using MatmulKey = std::tuple<int64_t, int64_t, int64_t, int64_t, bool, bool, bool, bool, bool, DType, DType>;
  // An attention call: (batch, heads, kv_heads, seq, head_dim, causal, dtype, backward).
  using AttentionKey = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, bool, DType, bool>;
  // A call of a kernel that is not a product: its name, its tensor arguments' shapes and
  // dtypes (an undefined one as {-1}) and the bytes it moves (offsets and lengths count).
  using CallKey = std::tuple<std::string_view, std::vector<std::pair<std::vector<int64_t>, DType>>, double>;
  struct Flops {
    double matmul = 0, attention = 0, conv = 0;
    // Bytes read and written by every op that is not a product (norms, activations, casts,
    // the loss, the optimizer): the memory-bound share of a step.
    double bytes = 0;
    double calls = 0;  // kernel calls: each pays a fixed cost (an OpenMP fork and join)
    // How many calls of each product shape: the planner times each shape.
    std::map<MatmulKey, double> matmuls;
    std::map<AttentionKey, double> attentions;
    // How many calls of each other kernel at each signature: the planner times each.
    std::map<CallKey, double> kernels;
    double total() const { return matmul + attention + conv; }
  };
  // wa * a + wb * b, field by field: differences and multiples of counted work.
  static Flops combine(const Flops& a, double wa, const Flops& b, double wb);
  static MatmulArgs matmul_args(const MatmulKey& k);
  static AttentionArgs attention_args(const AttentionKey& k);
  Flops flops() const { return flops_; }

  // A recorded call, replayable on another backend with new tensors of its shapes: the
  // planner times each signature on the CPU.
  using Replay = std::function<void(Backend&, const std::vector<Tensor>&)>;
  const Replay& replay(const CallKey& key) const { return replays_.at(key); }

  void matmul(const Tensor& a, const Tensor& b, const Tensor& bias, const Tensor& c,
              const MatmulArgs& args) override {
    flops_.matmul += 2.0 * double(args.batch) * double(args.m) * double(args.n) * double(args.k);
    flops_.calls += 1;
    flops_.matmuls[MatmulKey{args.batch, args.m, args.n, args.k, args.trans_a, args.trans_b, args.b_batched,
                             args.accumulate, bias.defined(), a.dtype(), c.dtype()}] += 1;
    if (a.dtype() != DType::F16) return;
    const Tensor a32 = workspace(a.numel()), b32 = workspace(b.numel());
    if (c.dtype() == DType::F16) workspace(c.numel());
  }
  void cast(const Tensor& src, const Tensor& dst) override { touch("cast", {&src, &dst}, {&src, &dst},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.cast(ts[0], ts[1]); }); }
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override { touch("binary", {&a, &b, &out}, {&a, &b, &out},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.binary(op, ts[0], ts[1], ts[2]); }); }
  void scale_add(const Tensor& a, float s, const Tensor& t, const Tensor& out) override { touch("scale_add", {&a, &t, &out}, {&a, &t, &out},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.scale_add(ts[0], s, ts[1], ts[2]); }); }
  void accumulate(const Tensor& dst, const Tensor& src, float alpha) override { touch("accumulate", {&dst, &dst, &src}, {&dst, &src},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.accumulate(ts[0], ts[1], alpha); }); }
  void reduce_sum(const Tensor& src, const Tensor& out, int64_t outer, int64_t dim,
                  int64_t inner) override { touch("reduce_sum", {&src, &out}, {&src, &out},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.reduce_sum(ts[0], ts[1], outer, dim, inner); }); }
  void sum_squares(const Tensor& src, const Tensor& out) override { touch("sum_squares", {&src}, {&src, &out},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.sum_squares(ts[0], ts[1]); }); }
  void permute(const Tensor& src, const Tensor& dst, const int* perm) override { touch("permute", {&src, &dst}, {&src, &dst},
          [=, order = std::vector<int>(perm, perm + src.ndim())](Backend& kern, const std::vector<Tensor>& ts) { kern.permute(ts[0], ts[1], order.data()); }); }
  void copy_block(const Tensor& src, const Tensor& dst, int64_t outer, int64_t src_dim,
                  int64_t dst_dim, int64_t src_off, int64_t dst_off, int64_t len,
                  int64_t inner) override { touch("copy_block", {&src, &dst}, {&src, &dst},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.copy_block(ts[0], ts[1], outer, src_dim, dst_dim, src_off, dst_off, len, inner); }); }
  void fill(const Tensor& dst, float value) override { touch("fill", {&dst}, {&dst},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.fill(ts[0], value); }); }
  void embedding(const Tensor& table, const Tensor& ids, const Tensor& out) override { touch("embedding", {&ids, &out}, {&table, &ids, &out},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.embedding(ts[0], ts[1], ts[2]); }); }
  void embedding_backward(const Tensor& grad_out, const Tensor& ids,
                          const Tensor& grad_table) override { touch("embedding_backward", {&grad_out, &ids, &grad_table}, {&grad_out, &ids, &grad_table},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.embedding_backward(ts[0], ts[1], ts[2]); }); }
  void layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                 const Tensor& y, const Tensor& mean, const Tensor& rstd) override { touch("layernorm", {&x, &y}, {&x, &gamma, &beta, &y, &mean, &rstd},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.layernorm(ts[0], ts[1], ts[2], eps, ts[3], ts[4], ts[5]); }); }
  void layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                          const Tensor& mean, const Tensor& rstd, const Tensor& dx,
                          const Tensor& dgamma, const Tensor& dbeta) override { touch("layernorm_backward", {&dy, &x, &dx}, {&dy, &x, &gamma, &mean, &rstd, &dx, &dgamma, &dbeta},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.layernorm_backward(ts[0], ts[1], ts[2], ts[3], ts[4], ts[5], ts[6], ts[7]); }); }
  void rmsnorm(const Tensor& x, const Tensor& gamma, float eps, const Tensor& y,
               const Tensor& rstd) override { touch("rmsnorm", {&x, &y}, {&x, &gamma, &y, &rstd},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.rmsnorm(ts[0], ts[1], eps, ts[2], ts[3]); }); }
  void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                        const Tensor& rstd, const Tensor& dx, const Tensor& dgamma) override { touch("rmsnorm_backward", {&dy, &x, &dx}, {&dy, &x, &gamma, &rstd, &dx, &dgamma},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.rmsnorm_backward(ts[0], ts[1], ts[2], ts[3], ts[4], ts[5]); }); }
  void activation(Activation f, const Tensor& x, const Tensor& y) override { touch("activation", {&x, &y}, {&x, &y},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.activation(f, ts[0], ts[1]); }); }
  void activation_backward(Activation f, const Tensor& x, const Tensor& dy,
                           const Tensor& dx) override { touch("activation_backward", {&x, &dy, &dx}, {&x, &dy, &dx},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.activation_backward(f, ts[0], ts[1], ts[2]); }); }
  void softmax(const Tensor& x, const Tensor& y) override { touch("softmax", {&x, &y}, {&x, &y},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.softmax(ts[0], ts[1]); }); }
  void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) override { touch("softmax_backward", {&y, &dy, &dx}, {&y, &dy, &dx},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.softmax_backward(ts[0], ts[1], ts[2]); }); }
  void dropout(const Tensor& x, float p, RngKey key, const Tensor& y) override { touch("dropout", {&x, &y}, {&x, &y},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.dropout(ts[0], p, key, ts[1]); }); }
  // Replayed without positions: the same work, and a replay's made-up positions could be
  // out of range.
  void rope(const Tensor& x, float theta, bool inverse, const Tensor& positions, const Tensor& y) override {
    touch("rope", {&x, &positions, &y}, {&x, &y},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.rope(ts[0], theta, inverse, Tensor(), ts[1]); }); }
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionArgs& args,
                 const Tensor& out, const Tensor& lse) override {
    flops_.attention += attention_flops(args);  // S = Q K^T and O = P V
    flops_.calls += 1;
    count_attention(args, q.dtype(), false);
    workspace(attention_scratch_floats(args, q.dtype(), false));
  }
  void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                          const Tensor& lse, const Tensor& dout, const AttentionArgs& args,
                          const Tensor& dq, const Tensor& dk, const Tensor& dv) override {
    flops_.attention += kAttentionBackwardShare * attention_flops(args);
    flops_.calls += 1;
    count_attention(args, q.dtype(), true);
    workspace(attention_scratch_floats(args, q.dtype(), true));
  }
  void decode_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, int64_t length,
                        const Tensor& out) override {
    touch("decode_attention", {&q, &k_cache, &v_cache, &out}, {&q, &k_cache, &v_cache, &out},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.decode_attention(ts[0], ts[1], ts[2], length, ts[3]); });
  }
  void cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                     const Tensor& loss, const Tensor& counted, const Tensor& dlogits,
                     float grad_scale) override { touch("cross_entropy", {&logits, &dlogits}, {&logits, &targets, &loss, &counted, &dlogits},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.cross_entropy(ts[0], ts[1], ignore_index, ts[2], ts[3], ts[4], grad_scale); }); }
  void adamw(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v, float lr,
             float beta1, float beta2, float eps, float weight_decay, int64_t step) override { touch("adamw", {&param, &grad, &m, &v, &param, &m, &v}, {&param, &grad, &m, &v},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.adamw(ts[0], ts[1], ts[2], ts[3], lr, beta1, beta2, eps, weight_decay, step); }); }
  void sgd(const Tensor& param, const Tensor& grad, const Tensor& buf, float lr, float momentum,
           float weight_decay, bool nesterov) override { touch("sgd", {&param, &grad, &buf, &param, &buf}, {&param, &grad, &buf},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.sgd(ts[0], ts[1], ts[2], lr, momentum, weight_decay, nesterov); }); }
  bool has_nonfinite(const Tensor& t) override { return false; }
  void conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
              const ConvArgs& a) override { flops_.conv += conv_flops(a); }
  void conv2d_backward_data(const Tensor& dy, const Tensor& w, const Tensor& dx,
                            const ConvArgs& a) override { flops_.conv += conv_flops(a); }
  void conv2d_backward_weights(const Tensor& x, const Tensor& dy, const Tensor& dw,
                               const Tensor& dbias, const ConvArgs& a) override { flops_.conv += conv_flops(a); }
  void max_pool2d(const Tensor& x, const Tensor& y, const PoolArgs& a) override { touch("max_pool2d", {&x, &y}, {&x, &y},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.max_pool2d(ts[0], ts[1], a); }); }
  void max_pool2d_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx,
                           const PoolArgs& a) override { touch("max_pool2d_backward", {&x, &y, &dy, &dx}, {&x, &y, &dy, &dx},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.max_pool2d_backward(ts[0], ts[1], ts[2], ts[3], a); }); }
  void avg_pool2d(const Tensor& x, const Tensor& y, const PoolArgs& a) override { touch("avg_pool2d", {&x, &y}, {&x, &y},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.avg_pool2d(ts[0], ts[1], a); }); }
  void avg_pool2d_backward(const Tensor& dy, const Tensor& dx, const PoolArgs& a) override { touch("avg_pool2d_backward", {&dy, &dx}, {&dy, &dx},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.avg_pool2d_backward(ts[0], ts[1], a); }); }
  void batchnorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& residual,
                 const Tensor& running_mean, const Tensor& running_var, const BatchNormArgs& args,
                 const Tensor& mean, const Tensor& var, const Tensor& rstd,
                 const Tensor& y) override { touch("batchnorm", {&x, &y}, {&x, &gamma, &beta, &residual, &running_mean, &running_var, &mean, &var, &rstd, &y},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.batchnorm(ts[0], ts[1], ts[2], ts[3], ts[4], ts[5], args, ts[6], ts[7], ts[8], ts[9]); }); }
  void batchnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& y, const Tensor& gamma,
                          const Tensor& mean, const Tensor& rstd, const BatchNormArgs& args,
                          const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta,
                          const Tensor& dresidual) override { touch("batchnorm_backward", {&dy, &x, &dx}, {&dy, &x, &y, &gamma, &mean, &rstd, &dx, &dgamma, &dbeta, &dresidual},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.batchnorm_backward(ts[0], ts[1], ts[2], ts[3], ts[4], ts[5], args, ts[6], ts[7], ts[8], ts[9]); }); }
  void groupnorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, int64_t groups,
                 float eps, const Tensor& y, const Tensor& mean, const Tensor& rstd) override { touch("groupnorm", {&x, &y}, {&x, &gamma, &beta, &y, &mean, &rstd},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.groupnorm(ts[0], ts[1], ts[2], groups, eps, ts[3], ts[4], ts[5]); }); }
  void groupnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                          const Tensor& mean, const Tensor& rstd, int64_t groups,
                          const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta) override { touch("groupnorm_backward", {&dy, &x, &dx}, {&dy, &x, &gamma, &mean, &rstd, &dx, &dgamma, &dbeta},
          [=](Backend& kern, const std::vector<Tensor>& ts) { kern.groupnorm_backward(ts[0], ts[1], ts[2], ts[3], ts[4], groups, ts[5], ts[6], ts[7]); }); }
 private:
  void count_attention(const AttentionArgs& a, DType dtype, bool backward) {
    flops_.attentions[AttentionKey{a.batch, a.heads, a.kv_heads, a.seq, a.head_dim, a.causal, dtype, backward}] += 1;
  }
  // `moved`: the tensors the kernel reads or writes (one listed twice is read and written);
  // `args`: its tensor arguments in order, for the replay.
  void touch(std::string_view kernel, std::initializer_list<const Tensor*> moved,
             std::initializer_list<const Tensor*> args, Replay run) {
    double bytes = 0;
    for (const Tensor* t : moved)
      if (t->defined()) bytes += double(t->nbytes());
    flops_.bytes += bytes;
    flops_.calls += 1;
    CallKey key{kernel, {}, bytes};
    for (const Tensor* t : args)
      std::get<1>(key).emplace_back(t->defined() ? t->shape().vec() : std::vector<int64_t>{-1},
                                    t->defined() ? t->dtype() : DType::F32);
    if (!replays_.contains(key)) replays_.emplace(key, std::move(run));
    flops_.kernels[key] += 1;
  }
  Flops flops_;
  std::map<CallKey, Replay> replays_;
  // Counts (and at once releases) what a CPU kernel takes as workspace during the call.
  static Tensor workspace(int64_t floats) {
    return Tensor::empty(Shape{floats}, DType::F32, Device::Meta, Category::Workspace);
  }
};

}  // namespace bb
