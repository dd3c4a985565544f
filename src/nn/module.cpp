// Module's parameter registry and the weight initialisers.
#include "nn/module.h"

#include <fmt/format.h>

#include <functional>
#include <random>

#include "backend/backend.h"
#include "core/error.h"

namespace bb {

Tensor& Module::register_parameter(std::string name, Tensor t) {
  params_.emplace_back(std::move(name), std::move(t));
  return params_.back().second;
}

void Module::collect(const std::string& prefix, NamedTensors& out) const {
  for (const auto& [n, t] : params_) out.emplace_back(prefix + n, t);
  for (const auto& [n, m] : children_) m->collect(prefix + n + ".", out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules() const {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  for (const auto& [n, m] : children_) {
    out.emplace_back(n, m);
    for (auto& [sub, sm] : m->named_modules()) out.emplace_back(n + "." + sub, sm);
  }
  return out;
}

Tensor* Module::find(const std::string& name) {
  for (auto& [n, t] : params_)
    if (n == name) return &t;
  for (auto& [n, m] : children_)
    if (name.size() > n.size() && name.compare(0, n.size(), n) == 0 && name[n.size()] == '.')
      if (Tensor* t = m->find(name.substr(n.size() + 1))) return t;
  return nullptr;
}

Tensor Module::parameter(const std::string& name) const {
  Tensor* t = const_cast<Module*>(this)->find(name);
  if (!t) throw ShapeError(fmt::format("the model has no parameter named '{}'", name));
  return *t;
}

void Module::set_parameter(const std::string& name, const Tensor& value) {
  Tensor* t = find(name);
  if (!t) throw ShapeError(fmt::format("the model has no parameter named '{}'", name));
  // A block-quantized weight is stored (out, in) (ops quantize()), the transpose of a kInOut
  // layer's (in, out).
  const bool transposed_blocks = is_block_quantized(value.dtype()) && t->ndim() == 2 && value.ndim() == 2 &&
                                 t->dim(0) == value.dim(1) && t->dim(1) == value.dim(0);
  if (t->shape() != value.shape() && !transposed_blocks)
    throw ShapeError(fmt::format("parameter '{}' is {} in the model but {} in the weights", name,
                                 t->shape().str(), value.shape().str()));
  // Every handle to the parameter (layers keep their own) shares its TensorImpl, so the new
  // data goes into that impl rather than replacing it.
  TensorImpl* impl = t->impl();
  impl->storage = value.impl()->storage;
  impl->offset = value.impl()->offset;
  impl->dtype = value.dtype();
  impl->shape = value.shape();
}

Tensor new_parameter(const Shape& shape, Device device) {
  Tensor t = Tensor::empty(shape, DType::F32, device, Category::Parameters);
  t.set_requires_grad(true);
  return t;
}

void init_normal(Tensor& t, float std, uint64_t seed, const std::string& name) {
  if (t.is_meta()) return;
  std::mt19937_64 gen(seed ^ std::hash<std::string>{}(name));
  std::normal_distribution<float> dist(0.0f, std);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(gen);
}

void init_constant(Tensor& t, float value) { backend_for(t.device()).fill(t, value); }

}  // namespace bb
