// Layer construction; weights start at PyTorch's defaults for the layout (models
// re-initialise where their reference implementation does).
#include "nn/layers.h"

#include "autograd/checkpoint.h"

namespace bb {

namespace {

// Under selective checkpointing an adapted Linear keeps the fused base product, which saves
// only its input x, and adds its adapter applied to pre(x) through checkpoint(): pre (the
// norm or activation) and the adapter's dropout and small products are recomputed in
// backward instead of being saved. Dropout replays the same masks (same context).
Tensor checkpointed_adapter(const Linear& l, const Tensor& x, const Context& ctx,
                            std::function<Tensor(const Tensor&)> pre) {
  const LinearAdapter* adapter = l.adapter().get();
  std::vector<Tensor> trained;
  for (const Tensor& p : adapter->parameters())
    if (p.requires_grad()) trained.push_back(p);
  return checkpoint([adapter, pre, ctx](const Tensor& in, bool) { return adapter->forward(pre(in), &ctx); },
                    x, trained);
}

}  // namespace

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

Tensor Linear::base_forward(const Tensor& x) const {
  // The weight may be stored in bf16 (a frozen LoRA base): cast makes it the activation dtype.
  // A q8_0 / q4_0 base is (out, in) whatever the layout and is never cast as a whole.
  return quantized() ? quantized_linear(x, weight_, bias_) : linear(x, cast(weight_, x.dtype()), bias_, opt_.layout);
}

Tensor Linear::forward_with(const Tensor& x, const Context* ctx) const {
  Tensor y = base_forward(x);
  return adapter_ ? add(y, adapter_->forward(x, ctx)) : y;
}

// A quantized base has no fused kernel, but its product saves nothing of its input (its
// gradient needs only the weight): pre(x) is formed and dropped, and the adapter's path
// recomputes it in backward as the fused kernels do.
Tensor Linear::quantized_after(const std::function<Tensor(const Tensor&)>& pre, const Tensor& x,
                               const Context& ctx) const {
  Tensor y = base_forward(pre(x));
  return adapter_ ? add(y, checkpointed_adapter(*this, x, ctx, pre)) : y;
}

void Linear::set_adapter(std::shared_ptr<LinearAdapter> a) {
  for (auto& [name, m] : a->parts()) register_module(name, m);
  adapter_ = std::move(a);
}

Tensor Linear::forward_after(Activation f, const Tensor& x, const Context& ctx) const {
  if (quantized()) return quantized_after([f](const Tensor& in) { return activation(f, in); }, x, ctx);
  Tensor y = activation_linear(f, x, cast(weight_, x.dtype()), bias_, opt_.layout);
  if (!adapter_) return y;
  return add(y, checkpointed_adapter(*this, x, ctx, [f](const Tensor& in) { return activation(f, in); }));
}

Tensor LayerNorm::forward_linear(const Tensor& x, const Linear& next, const Context& ctx) const {
  if (next.quantized()) return next.quantized_after([this](const Tensor& in) { return forward(in); }, x, ctx);
  Tensor y = layer_norm_linear(x, weight_, bias_, eps_, cast(next.weight(), x.dtype()), next.bias(),
                               next.options().layout);
  if (!next.adapter()) return y;
  return add(y, checkpointed_adapter(next, x, ctx, [this](const Tensor& in) { return forward(in); }));
}

Tensor Linear::forward_swiglu(const Tensor& gate, const Tensor& up, const Context& ctx) const {
  // A quantized base saves nothing of the product; silu and mul keep their inputs.
  if (quantized() && !adapter_) return base_forward(mul(silu(gate), up));
  if (adapter_ || bias_.defined()) return forward(mul(silu(gate), up), ctx);
  return swiglu_linear(gate, up, cast(weight_, gate.dtype()), opt_.layout);
}

std::vector<Tensor> RMSNorm::forward_linears(const Tensor& x, const std::vector<const Linear*>& nexts,
                                             const Context& ctx) const {
  bool fusable = !nexts.empty();
  bool quantized = false;
  for (const Linear* l : nexts) quantized = quantized || l->quantized();
  std::vector<Tensor> ys;
  if (quantized) {  // the norm once; each product saves nothing of it
    Tensor n = forward(x);
    for (const Linear* l : nexts) {
      ys.push_back(l->base_forward(n));
      if (l->adapter())
        ys.back() = add(ys.back(), checkpointed_adapter(*l, x, ctx, [this](const Tensor& in) { return forward(in); }));
    }
    return ys;
  }
  for (const Linear* l : nexts) fusable = fusable && !l->bias().defined();
  if (!fusable) {  // attention_bias: the fused product has no bias term
    Tensor n = forward(x);
    for (const Linear* l : nexts) ys.push_back(l->forward(n, ctx));
    return ys;
  }
  std::vector<Tensor> ws;
  for (const Linear* l : nexts) ws.push_back(cast(l->weight(), x.dtype()));
  ys = rms_norm_linears(x, weight_, eps_, ws, nexts[0]->options().layout);
  for (size_t i = 0; i < nexts.size(); ++i)
    if (nexts[i]->adapter())
      ys[i] = add(ys[i], checkpointed_adapter(*nexts[i], x, ctx, [this](const Tensor& in) { return forward(in); }));
  return ys;
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
