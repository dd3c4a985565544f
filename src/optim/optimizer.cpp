// AdamW, SGD, gradient clipping and zeroing.
#include "optim/optimizer.h"

#include <fmt/format.h>

#include <cmath>
#include <unordered_map>

#include "backend/backend.h"
#include "core/error.h"

namespace bb {

std::vector<ParamGroup> default_param_groups(const NamedTensors& params, bool decay_embeddings) {
  std::vector<ParamGroup> out;
  for (const auto& [name, t] : params) {
    if (!t.requires_grad()) continue;  // frozen (e.g. LoRA base weights): no state at all
    bool is_bias = name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
    bool is_vector = t.ndim() < 2;  // norm weights
    bool is_embedding = name.find("wte") != std::string::npos || name.find("wpe") != std::string::npos ||
                        name.find("embed_tokens") != std::string::npos;
    out.push_back({name, t, !(is_bias || is_vector || (is_embedding && !decay_embeddings))});
  }
  return out;
}

void Optimizer::zero_grad() {
  for (auto& p : params_) p.param.zero_grad();
}

namespace {

// Zeros over the group's range: 1/N of the parameter on each of N ZeRO ranks.
Tensor state_like(const ParamGroup& g) {
  if (g.length == 0) return Tensor();  // another rank's shard: no state, not even a block
  const Tensor& p = g.param;
  Tensor t = Tensor::empty(g.length < 0 ? p.shape() : Shape{g.length}, DType::F32, p.device(),
                           Category::OptimizerState);
  backend_for(p.device()).fill(t, 0.0f);
  return t;
}

// A parameter that got no gradient this step (unused in the forward) gets a zero one, so the
// update (weight decay, momentum) is the same as PyTorch's with zero_grad(set_to_none=False).
Tensor grad_or_zero(const Tensor& p) {
  Tensor g = p.grad();
  if (g.defined()) return g;
  g = Tensor::empty(p.shape(), DType::F32, p.device(), Category::Gradients);
  backend_for(p.device()).fill(g, 0.0f);
  const_cast<Tensor&>(p).set_grad(g);
  return g;
}

}  // namespace

Tensor ParamGroup::part(const Tensor& t) const {
  if (length < 0) return t;
  return t.view({-1}).narrow_rows(offset, length);
}

NamedTensors Optimizer::state() {
  NamedTensors out;
  for (StateSlot& s : slots()) out.emplace_back(s.key, s.tensor);
  return out;
}

void Optimizer::load_state(const std::function<void(const StateSlot&)>& read) {
  for (const StateSlot& s : slots()) read(s);
}

void Optimizer::load_state(const NamedTensors& state) {
  std::unordered_map<std::string, const Tensor*> by_key;
  for (const auto& [n, t] : state) by_key[n] = &t;
  load_state([&](const StateSlot& s) {
    auto it = by_key.find(s.key);
    if (it == by_key.end())
      throw FormatError(fmt::format("optimizer state '{}' is missing from the checkpoint", s.key));
    const Tensor& t = *it->second;
    const Tensor& p = s.group->param;
    if (t.shape() != p.shape())
      throw FormatError(fmt::format("optimizer state '{}' is {} but the parameter is {}", s.key, t.shape().str(),
                                    p.shape().str()));
    backend_for(s.tensor.device()).cast(s.group->part(t), s.tensor);
  });
}

AdamW::AdamW(std::vector<ParamGroup> params, AdamWOptions o) : Optimizer(std::move(params)), opt_(o) {
  for (auto& p : params_) {
    m_.push_back(state_like(p));
    v_.push_back(state_like(p));
  }
}

void AdamW::step(float lr) {
  ++steps_;
  for (size_t i = 0; i < params_.size(); ++i) {
    const ParamGroup& g = params_[i];
    if (g.updated() == 0) continue;  // another rank's shard
    const Tensor& p = g.param;
    backend_for(p.device()).adamw(g.part(p), g.part(grad_or_zero(p)), m_[i], v_[i], lr, opt_.beta1, opt_.beta2,
                                  opt_.eps, g.decay ? opt_.weight_decay : 0.0f, steps_);
  }
}

std::vector<StateSlot> AdamW::slots() {
  std::vector<StateSlot> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (params_[i].updated() == 0) continue;
    out.push_back({params_[i].name + ".exp_avg", &params_[i], m_[i]});
    out.push_back({params_[i].name + ".exp_avg_sq", &params_[i], v_[i]});
  }
  return out;
}

SGD::SGD(std::vector<ParamGroup> params, SGDOptions o) : Optimizer(std::move(params)), opt_(o) {
  if (opt_.momentum != 0.0f)
    for (auto& p : params_) buf_.push_back(state_like(p));
}

void SGD::step(float lr) {
  ++steps_;
  for (size_t i = 0; i < params_.size(); ++i) {
    const ParamGroup& g = params_[i];
    if (g.updated() == 0) continue;  // another rank's shard
    const Tensor& p = g.param;
    backend_for(p.device()).sgd(g.part(p), g.part(grad_or_zero(p)), buf_.empty() ? Tensor() : buf_[i], lr,
                                opt_.momentum, g.decay ? opt_.weight_decay : 0.0f, opt_.nesterov);
  }
}

std::vector<StateSlot> SGD::slots() {
  std::vector<StateSlot> out;
  for (size_t i = 0; i < buf_.size(); ++i)
    if (params_[i].updated() > 0) out.push_back({params_[i].name + ".momentum_buffer", &params_[i], buf_[i]});
  return out;
}

double grad_sum_squares(const std::vector<ParamGroup>& params) {
  double total = 0;
  for (const auto& p : params) {
    Tensor g = p.param.grad();
    if (!g.defined() || g.is_meta() || p.updated() == 0) continue;
    Tensor s = Tensor::empty(Shape{}, DType::F32, g.device(), Category::Workspace);
    backend_for(g.device()).sum_squares(p.part(g), s);
    total += s.item();
  }
  return total;
}

void scale_grads(const std::vector<ParamGroup>& params, float coef) {
  for (const auto& p : params) {
    Tensor g = p.param.grad();
    if (!g.defined() || p.updated() == 0) continue;
    Tensor part = p.part(g);
    backend_for(g.device()).scale_add(part, coef, Tensor(), part);
  }
}

float clip_coefficient(float norm, float max_norm) {
  return max_norm > 0 && norm > max_norm ? max_norm / (norm + 1e-6f) : 1.0f;
}

float clip_grad_norm(const std::vector<ParamGroup>& params, float max_norm) {
  const float norm = static_cast<float>(std::sqrt(grad_sum_squares(params)));
  const float coef = clip_coefficient(norm, max_norm);
  if (coef != 1.0f) scale_grads(params, coef);
  return norm;
}

}  // namespace bb
