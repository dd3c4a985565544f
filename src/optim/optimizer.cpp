// AdamW, SGD, gradient clipping and zeroing.
#include "optim/optimizer.h"

#include <fmt/format.h>

#include <cmath>

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
  for (auto& p : params_) {
    Tensor g = p.param.grad();
    if (g.defined()) backend_for(g.device()).fill(g, 0.0f);
  }
}

namespace {

Tensor state_like(const Tensor& p) {
  Tensor t = Tensor::empty(p.shape(), DType::F32, p.device(), Category::OptimizerState);
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

void load_slot(const NamedTensors& state, const std::string& key, Tensor& dst) {
  for (const auto& [n, t] : state)
    if (n == key) {
      if (t.shape() != dst.shape())
        throw FormatError(fmt::format("optimizer state '{}' is {} but the parameter is {}", key,
                                      t.shape().str(), dst.shape().str()));
      backend_for(dst.device()).cast(t, dst);
      return;
    }
  throw FormatError(fmt::format("optimizer state '{}' is missing from the checkpoint", key));
}

}  // namespace

AdamW::AdamW(std::vector<ParamGroup> params, AdamWOptions o) : Optimizer(std::move(params)), opt_(o) {
  for (auto& p : params_) {
    m_.push_back(state_like(p.param));
    v_.push_back(state_like(p.param));
  }
}

void AdamW::step(float lr) {
  ++steps_;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].param;
    backend_for(p.device()).adamw(p, grad_or_zero(p), m_[i], v_[i], lr, opt_.beta1, opt_.beta2, opt_.eps,
                                  params_[i].decay ? opt_.weight_decay : 0.0f, steps_);
  }
}

NamedTensors AdamW::state() {
  NamedTensors out;
  for (size_t i = 0; i < params_.size(); ++i) {
    out.emplace_back(params_[i].name + ".exp_avg", m_[i]);
    out.emplace_back(params_[i].name + ".exp_avg_sq", v_[i]);
  }
  return out;
}

void AdamW::load_state(const NamedTensors& state) {
  for (size_t i = 0; i < params_.size(); ++i) {
    load_slot(state, params_[i].name + ".exp_avg", m_[i]);
    load_slot(state, params_[i].name + ".exp_avg_sq", v_[i]);
  }
}

SGD::SGD(std::vector<ParamGroup> params, SGDOptions o) : Optimizer(std::move(params)), opt_(o) {
  if (opt_.momentum != 0.0f)
    for (auto& p : params_) buf_.push_back(state_like(p.param));
}

void SGD::step(float lr) {
  ++steps_;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].param;
    backend_for(p.device()).sgd(p, grad_or_zero(p), buf_.empty() ? Tensor() : buf_[i], lr, opt_.momentum,
                                params_[i].decay ? opt_.weight_decay : 0.0f, opt_.nesterov);
  }
}

NamedTensors SGD::state() {
  NamedTensors out;
  for (size_t i = 0; i < buf_.size(); ++i) out.emplace_back(params_[i].name + ".momentum_buffer", buf_[i]);
  return out;
}

void SGD::load_state(const NamedTensors& state) {
  for (size_t i = 0; i < buf_.size(); ++i) load_slot(state, params_[i].name + ".momentum_buffer", buf_[i]);
}

float clip_grad_norm(const std::vector<ParamGroup>& params, float max_norm) {
  double total = 0;
  std::vector<Tensor> grads;
  for (const auto& p : params) {
    Tensor g = p.param.grad();
    if (!g.defined() || g.is_meta()) continue;
    Tensor s = Tensor::empty(Shape{}, DType::F32, g.device(), Category::Workspace);
    backend_for(g.device()).sum_squares(g, s);
    total += s.item();
    grads.push_back(g);
  }
  float norm = static_cast<float>(std::sqrt(total));
  if (max_norm > 0 && norm > max_norm) {
    float coef = max_norm / (norm + 1e-6f);
    for (Tensor& g : grads) backend_for(g.device()).scale_add(g, coef, Tensor(), g);
  }
  return norm;
}

}  // namespace bb
