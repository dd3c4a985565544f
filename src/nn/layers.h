// The basic layers: Linear (both weight layouts), Embedding, LayerNorm, RMSNorm, Dropout.
// Each casts its f32 master weight to the activation dtype on use, so one model runs in
// f32 or bf16 by the Context it is given.
#pragma once
#include <functional>
#include <memory>

#include "nn/context.h"
#include "nn/module.h"
#include "ops/ops.h"

namespace bb {

struct LinearOptions {
  int64_t in = 0, out = 0;
  bool bias = true;
  WeightLayout layout = WeightLayout::kOutIn;
};

// A path added to a Linear's output: LoRA's low-rank update (nn/lora.h).
class LinearAdapter : public Module {
 public:
  // x (..., in) -> (..., out); ctx is null where the caller has none (then no dropout).
  virtual Tensor forward(const Tensor& x, const Context* ctx) const = 0;
  // The submodules to register under the Linear's own name ("c_attn.lora_A").
  virtual std::vector<std::pair<std::string, std::shared_ptr<Module>>> parts() const = 0;
};

class Linear : public Module {
 public:
  Linear(const LinearOptions& o, Device device);
  Tensor forward(const Tensor& x) const;
  // The same, giving an adapter the context it needs for dropout.
  Tensor forward(const Tensor& x, const Context& ctx) const;
  // forward(activation(x), ctx) with the activation recomputed in backward, not saved (an
  // adapter's input is recomputed too: its path runs under checkpoint()).
  Tensor forward_after(Activation f, const Tensor& x, const Context& ctx) const;
  // forward(silu(gate) * up, ctx) (SwiGLU) with the product recomputed in backward, not saved
  // (kept when an adapter is attached: the adapter reads the product of two inputs, which
  // the one-input checkpoint() does not replay).
  Tensor forward_swiglu(const Tensor& gate, const Tensor& up, const Context& ctx) const;
  // The frozen product alone, x W + b, without the adapter.
  Tensor base_forward(const Tensor& x) const;
  // forward(pre(x), ctx) for a quantized base: pre(x) is not kept (the product's gradient does
  // not read it) and the adapter's path recomputes it.
  Tensor quantized_after(const std::function<Tensor(const Tensor&)>& pre, const Tensor& x, const Context& ctx) const;
  Tensor& weight() { return weight_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const LinearOptions& options() const { return opt_; }
  // A frozen q8_0 / q4_0 base weight (apply_lora): stored (out, in) whatever the layout.
  bool quantized() const { return is_block_quantized(weight_.dtype()); }
  // Adds `a`'s output to every forward from now on; its parts join this layer's parameters.
  void set_adapter(std::shared_ptr<LinearAdapter> a);
  const std::shared_ptr<LinearAdapter>& adapter() const { return adapter_; }

 private:
  Tensor forward_with(const Tensor& x, const Context* ctx) const;
  LinearOptions opt_;
  Tensor weight_, bias_;
  std::shared_ptr<LinearAdapter> adapter_;
};

class Embedding : public Module {
 public:
  Embedding(int64_t count, int64_t dim, Device device);
  Tensor forward(const Tensor& ids) const { return embedding(weight_, ids); }
  const Tensor& weight() const { return weight_; }
  Tensor& weight() { return weight_; }

 private:
  Tensor weight_;
};

class LayerNorm : public Module {
 public:
  LayerNorm(int64_t dim, float eps, Device device, bool bias = true);
  Tensor forward(const Tensor& x) const { return layer_norm(x, weight_, bias_, eps_); }
  // next.forward(forward(x), ctx) with the normalised x recomputed in backward, not saved
  // (for next's adapter too, whose path runs under checkpoint()).
  Tensor forward_linear(const Tensor& x, const Linear& next, const Context& ctx) const;

 private:
  float eps_;
  Tensor weight_, bias_;
};

class RMSNorm : public Module {
 public:
  RMSNorm(int64_t dim, float eps, Device device);
  Tensor forward(const Tensor& x) const { return rms_norm(x, weight_, eps_); }
  // [next.forward(forward(x), ctx) for next in nexts] with the normalised x recomputed in
  // backward, not saved (adapters' paths run under checkpoint(); kept when any has a bias).
  std::vector<Tensor> forward_linears(const Tensor& x, const std::vector<const Linear*>& nexts,
                                      const Context& ctx) const;

 private:
  float eps_;
  Tensor weight_;
};

// Dropout at one site of the model; active only when the context is training.
inline Tensor dropout(const Tensor& x, float p, const Context& ctx, uint64_t site) {
  return ctx.training && ctx.dropout && p > 0 ? dropout(x, p, ctx.rng(site, x.numel())) : x;
}

}  // namespace bb
