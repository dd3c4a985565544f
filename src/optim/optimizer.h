// Optimizers over named parameters: AdamW (decoupled weight decay) and SGD with momentum.
// State tensors are counted as optimizer state and keyed by parameter name, so training
// checkpoints save and restore them by name. A group may cover a flat range of its parameter
// only: under ZeRO-1 each rank updates, and keeps state for, its shard of every bucket.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/module.h"

namespace bb {

struct ParamGroup {
  std::string name;
  Tensor param;
  bool decay = true;  // weight decay applies
  // The flat elements [offset, offset + length) this optimizer updates; length -1 is the
  // whole parameter, 0 none of it (another rank's shard).
  int64_t offset = 0, length = -1;
  int64_t updated() const { return length < 0 ? param.numel() : length; }
  // t (the parameter or its gradient) restricted to the range: t itself when whole, else a
  // flat view of the range.
  Tensor part(const Tensor& t) const;
};

// One state tensor: "<param>.<slot>" ("h.0.ln_1.weight.exp_avg"), over its group's range.
struct StateSlot {
  std::string key;
  const ParamGroup* group;
  Tensor tensor;
};

// No decay on biases, norm weights and embeddings (the usual choice for transformers).
std::vector<ParamGroup> default_param_groups(const NamedTensors& params, bool decay_embeddings = false);

class Optimizer {
 public:
  explicit Optimizer(std::vector<ParamGroup> params) : params_(std::move(params)) {}
  virtual ~Optimizer() = default;
  // One update with learning rate lr, reading each parameter's .grad().
  virtual void step(float lr) = 0;
  // The state tensors, by "<param>.<slot>", for checkpoints.
  virtual std::vector<StateSlot> slots() = 0;
  NamedTensors state();
  // Each slot from the tensor of its key, the whole parameter's (a checkpoint of unsharded
  // state); a missing key or a wrong shape throws FormatError naming it.
  void load_state(const NamedTensors& state);
  // Each slot filled by read (which reassembles the slot's range from a sharded checkpoint).
  void load_state(const std::function<void(const StateSlot&)>& read);
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
  std::vector<StateSlot> slots() override;

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
  std::vector<StateSlot> slots() override;

 private:
  SGDOptions opt_;
  std::vector<Tensor> buf_;
};

// The sum of squares of the gradients over each group's range.
double grad_sum_squares(const std::vector<ParamGroup>& params);
// Multiplies the gradients over each group's range by coef.
void scale_grads(const std::vector<ParamGroup>& params, float coef);
// The clipping factor for a global gradient norm: 1 when within max_norm (0: no clipping).
float clip_coefficient(float norm, float max_norm);
// The global L2 norm of all gradients; when above max_norm, scales them to max_norm.
// Returns the norm before clipping. One process: a sharded optimizer sums the squares over
// ranks first (Trainer).
float clip_grad_norm(const std::vector<ParamGroup>& params, float max_norm);

}  // namespace bb
