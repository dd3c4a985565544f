// Optimizers over named parameters: AdamW (decoupled weight decay) and SGD with momentum.
// State tensors are counted as optimizer state and keyed by parameter name, so training
// checkpoints save and restore them by name.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/module.h"

namespace bb {

struct ParamGroup {
  std::string name;
  Tensor param;
  bool decay = true;  // weight decay applies
};

// No decay on biases, norm weights and embeddings (the usual choice for transformers).
std::vector<ParamGroup> default_param_groups(const NamedTensors& params, bool decay_embeddings = false);

class Optimizer {
 public:
  explicit Optimizer(std::vector<ParamGroup> params) : params_(std::move(params)) {}
  virtual ~Optimizer() = default;
  // One update with learning rate lr, reading each parameter's .grad().
  virtual void step(float lr) = 0;
  // State by "<param>.<slot>" for checkpoints ("h.0.ln_1.weight.exp_avg").
  virtual NamedTensors state() = 0;
  virtual void load_state(const NamedTensors& state) = 0;
  int64_t steps() const { return steps_; }
  void set_steps(int64_t s) { steps_ = s; }
  const std::vector<ParamGroup>& params() const { return params_; }
  void zero_grad();

 protected:
  std::vector<ParamGroup> params_;
  int64_t steps_ = 0;
};

struct AdamWOptions {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.01f;
};

class AdamW : public Optimizer {
 public:
  AdamW(std::vector<ParamGroup> params, AdamWOptions o);
  void step(float lr) override;
  NamedTensors state() override;
  void load_state(const NamedTensors& state) override;

 private:
  AdamWOptions opt_;
  std::vector<Tensor> m_, v_;
};

struct SGDOptions {
  float momentum = 0.9f, weight_decay = 0.0f;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> params, SGDOptions o);
  void step(float lr) override;
  NamedTensors state() override;
  void load_state(const NamedTensors& state) override;

 private:
  SGDOptions opt_;
  std::vector<Tensor> buf_;
};

// The global L2 norm of all gradients; when above max_norm, scales them to max_norm.
// Returns the norm before clipping.
float clip_grad_norm(const std::vector<ParamGroup>& params, float max_norm);

}  // namespace bb
