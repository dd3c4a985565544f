// The basic layers: Linear (both weight layouts), Embedding, LayerNorm, RMSNorm, Dropout.
// Each casts its f32 master weight to the activation dtype on use, so one model runs in
// f32 or bf16 by the Context it is given.
#pragma once
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

class Linear : public Module {
 public:
  Linear(const LinearOptions& o, Device device);
  Tensor forward(const Tensor& x) const;
  Tensor& weight() { return weight_; }
  const LinearOptions& options() const { return opt_; }

 private:
  LinearOptions opt_;
  Tensor weight_, bias_;
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

 private:
  float eps_;
  Tensor weight_, bias_;
};

class RMSNorm : public Module {
 public:
  RMSNorm(int64_t dim, float eps, Device device);
  Tensor forward(const Tensor& x) const { return rms_norm(x, weight_, eps_); }

 private:
  float eps_;
  Tensor weight_;
};

// Dropout at one site of the model; active only when the context is training.
inline Tensor dropout(const Tensor& x, float p, const Context& ctx, uint64_t site) {
  return ctx.training && p > 0 ? dropout(x, p, ctx.rng(site)) : x;
}

}  // namespace bb
