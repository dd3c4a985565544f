// Module: a tree of named parameters and submodules. Names are dotted paths ("h.0.attn.
// c_attn.weight") that match the Hugging Face names, so checkpoints and optimizer state are
// keyed by them.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace bb {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;

  NamedTensors named_parameters() const;  // registration order, depth first
  std::vector<Tensor> parameters() const;
  // The parameter with this dotted name; throws naming it when there is none.
  Tensor parameter(const std::string& name) const;
  int64_t parameter_count() const;
  // Every submodule with its dotted path ("h.0.attn.c_attn"), depth first, this one excluded.
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules() const;

  // Points a parameter at new data (loading weights); the shape must match. Every handle
  // to the parameter sees the change.
  void set_parameter(const std::string& name, const Tensor& value);

 protected:
  Tensor& register_parameter(std::string name, Tensor t);
  template <typename M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> m) {
    children_.emplace_back(std::move(name), m);
    return m;
  }

 private:
  void collect(const std::string& prefix, NamedTensors& out) const;
  Tensor* find(const std::string& name);

  NamedTensors params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// A module that only groups children under a name ("h", "attn").
class ModuleGroup : public Module {
 public:
  using Module::register_module;
};

// A new f32 parameter counted under Category::Parameters, requiring grad.
Tensor new_parameter(const Shape& shape, Device device);
// Fills with N(0, std) from a generator seeded by (seed, name), so initial weights do not
// depend on the order modules are built in.
void init_normal(Tensor& t, float std, uint64_t seed, const std::string& name);
void init_constant(Tensor& t, float value);

}  // namespace bb
