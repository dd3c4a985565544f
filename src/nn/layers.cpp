// Layer construction; weights start at PyTorch's defaults for the layout (models
// re-initialise where their reference implementation does).
#include "nn/layers.h"

namespace bb {

Linear::Linear(const LinearOptions& o, Device device) : opt_(o) {
  Shape ws = o.layout == WeightLayout::kInOut ? Shape{o.in, o.out} : Shape{o.out, o.in};
  weight_ = register_parameter("weight", new_parameter(ws, device));
  init_constant(weight_, 0.0f);
  if (o.bias) {
    bias_ = register_parameter("bias", new_parameter(Shape{o.out}, device));
    init_constant(bias_, 0.0f);
  }
}

Tensor Linear::forward(const Tensor& x) const { return forward_with(x, nullptr); }

Tensor Linear::forward(const Tensor& x, const Context& ctx) const { return forward_with(x, &ctx); }

Tensor Linear::forward_with(const Tensor& x, const Context* ctx) const {
  // The weight may be stored in bf16 (a frozen LoRA base): cast makes it the activation dtype.
  Tensor y = linear(x, cast(weight_, x.dtype()), bias_, opt_.layout);
  return adapter_ ? add(y, adapter_->forward(x, ctx)) : y;
}

void Linear::set_adapter(std::shared_ptr<LinearAdapter> a) {
  for (auto& [name, m] : a->parts()) register_module(name, m);
  adapter_ = std::move(a);
}

Tensor Linear::forward_after(Activation f, const Tensor& x, const Context& ctx) const {
  if (adapter_) return forward(activation(f, x), ctx);
  return activation_linear(f, x, cast(weight_, x.dtype()), bias_, opt_.layout);
}

Tensor LayerNorm::forward_linear(const Tensor& x, const Linear& next, const Context& ctx) const {
  if (next.adapter()) return next.forward(forward(x), ctx);
  return layer_norm_linear(x, weight_, bias_, eps_, cast(next.weight(), x.dtype()), next.bias(),
                           next.options().layout);
}

Tensor Linear::forward_swiglu(const Tensor& gate, const Tensor& up, const Context& ctx) const {
  if (adapter_ || bias_.defined()) return forward(mul(silu(gate), up), ctx);
  return swiglu_linear(gate, up, cast(weight_, gate.dtype()), opt_.layout);
}

std::vector<Tensor> RMSNorm::forward_linears(const Tensor& x, const std::vector<const Linear*>& nexts,
                                             const Context& ctx) const {
  bool plain = true;
  for (const Linear* l : nexts) plain = plain && !l->adapter() && !l->bias().defined();
  std::vector<Tensor> ys;
  if (!plain || nexts.empty()) {
    Tensor n = forward(x);
    for (const Linear* l : nexts) ys.push_back(l->forward(n, ctx));
    return ys;
  }
  std::vector<Tensor> ws;
  for (const Linear* l : nexts) ws.push_back(cast(l->weight(), x.dtype()));
  return rms_norm_linears(x, weight_, eps_, ws, nexts[0]->options().layout);
}

Embedding::Embedding(int64_t count, int64_t dim, Device device) {
  weight_ = register_parameter("weight", new_parameter(Shape{count, dim}, device));
  init_constant(weight_, 0.0f);
}

LayerNorm::LayerNorm(int64_t dim, float eps, Device device, bool bias) : eps_(eps) {
  weight_ = register_parameter("weight", new_parameter(Shape{dim}, device));
  init_constant(weight_, 1.0f);
  if (bias) {
    bias_ = register_parameter("bias", new_parameter(Shape{dim}, device));
    init_constant(bias_, 0.0f);
  }
}

RMSNorm::RMSNorm(int64_t dim, float eps, Device device) : eps_(eps) {
  weight_ = register_parameter("weight", new_parameter(Shape{dim}, device));
  init_constant(weight_, 1.0f);
}

}  // namespace bb
