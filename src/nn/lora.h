// LoRA: a frozen Linear W plus a trained low-rank update, y = x W + dropout(x) A^T B^T * alpha/r,
// with A (r, in) and B (out, r) as PEFT stores them (B starts at zero, so training starts from
// the base model). Layers are chosen by name as PEFT's target_modules chooses them.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/layers.h"

namespace bb {

struct LoraOptions {
  int64_t r = 8;
  float alpha = 16.0f;
  float dropout = 0.0f;
  // PEFT's two forms of target_modules: a list of names, each matching a module whose path
  // equals it or ends with "." + it; or, when target_regex is set, a regular expression the
  // whole module path must match.
  std::vector<std::string> targets{};
  std::string target_regex{};
  // Frozen base Linear weights: f32, bf16, or ggml's q8_0 / q4_0 blocks (Linear::quantized()).
  DType base_dtype = DType::F32;
  uint64_t seed = 0;
  float scaling() const { return alpha / static_cast<float>(r); }
};

// "c_attn|q_proj,v_proj" -> {"c_attn", "q_proj", "v_proj"}
std::vector<std::string> split_target_modules(const std::string& text);
bool lora_matches(const LoraOptions& o, const std::string& module_path);

class LoraAdapter final : public LinearAdapter {
 public:
  // A kaiming-uniform as PEFT (bound 1/sqrt(in)), drawn from (seed, path); B zeros.
  LoraAdapter(int64_t in, int64_t out, const LoraOptions& o, const std::string& path, Device device);
  Tensor forward(const Tensor& x, const Context* ctx) const override;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> parts() const override;
  const Linear& a() const { return *a_; }
  const Linear& b() const { return *b_; }
  float scaling() const { return scaling_; }

 private:
  std::shared_ptr<Linear> a_, b_;
  float scaling_, dropout_;
  uint64_t site_;  // dropout stream of this layer
};

// `lin`'s weight as a frozen base in `dtype`: itself when already so; bf16 cast; q8_0 / q4_0
// quantized (out, in) in QuantizedWeights (on meta, the same shape and bytes). ConfigError
// naming the layer (`path`) when its inputs are not whole blocks.
Tensor frozen_base_weight(const Linear& lin, const std::string& path, DType dtype);

// Freezes every parameter of `model` (requires_grad off: no gradient buffer, no optimizer
// state), stores frozen Linear weights in o.base_dtype, and attaches an adapter to each Linear
// whose path matches. Returns the adapted paths; ConfigError when none matches.
std::vector<std::string> apply_lora(Module& model, const LoraOptions& o);

// The adapted paths of a model and their adapters, in model order.
std::vector<std::pair<std::string, std::shared_ptr<Linear>>> lora_layers(const Module& model);

// The model's base parameters (adapter parameters left out) with every adapter folded into
// its Linear's weight, W + scaling * (B A) in the Linear's layout, as new f32 tensors.
// A quantized base is dequantized (the values the adapter trained against).
NamedTensors merged_weights(const Module& model);
// The same without the adapters: the frozen base as f32 tensors of the model's shapes.
NamedTensors base_weights(const Module& model);

}  // namespace bb
