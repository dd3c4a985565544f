// LoRA adapters: construction, forward, attaching to a model's Linears and merging.
#include "nn/lora.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <functional>
#include <map>
#include <random>
#include <regex>

#include "core/error.h"
#include "core/grad_mode.h"

namespace bb {

std::vector<std::string> split_target_modules(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : text + ",") {
    if (ch == '|' || ch == ',' || ch == ' ') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  return out;
}

bool lora_matches(const LoraOptions& o, const std::string& path) {
  if (!o.target_regex.empty()) return std::regex_match(path, std::regex(o.target_regex));
  for (const std::string& t : o.targets)
    if (path == t || (path.size() > t.size() && path.compare(path.size() - t.size(), t.size(), t) == 0 &&
                      path[path.size() - t.size() - 1] == '.'))
      return true;
  return false;
}

LoraAdapter::LoraAdapter(int64_t in, int64_t out, const LoraOptions& o, const std::string& path, Device device)
    : scaling_(o.scaling()), dropout_(o.dropout), site_(std::hash<std::string>{}(path) | 1) {
  a_ = std::make_shared<Linear>(LinearOptions{in, o.r, false, WeightLayout::kOutIn}, device);
  b_ = std::make_shared<Linear>(LinearOptions{o.r, out, false, WeightLayout::kOutIn}, device);
  Tensor& w = a_->weight();
  if (!w.is_meta()) {
    // kaiming_uniform_(a=sqrt(5)) on (r, in): bound = sqrt(6 / ((1 + 5) in)) = 1 / sqrt(in)
    std::mt19937_64 gen(o.seed ^ std::hash<std::string>{}(path + ".lora_A"));
    const float bound = 1.0f / std::sqrt(static_cast<float>(in));
    std::uniform_real_distribution<float> dist(-bound, bound);
    float* p = w.data<float>();
    for (int64_t i = 0; i < w.numel(); ++i) p[i] = dist(gen);
  }
}

Tensor LoraAdapter::forward(const Tensor& x, const Context* ctx) const {
  Tensor in = ctx ? dropout(x, dropout_, *ctx, site_) : x;
  return scale(b_->forward(a_->forward(in)), scaling_);
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> LoraAdapter::parts() const {
  return {{"lora_A", a_}, {"lora_B", b_}};
}

Tensor frozen_base_weight(const Linear& lin, const std::string& path, DType dtype) {
  const Tensor& w = lin.weight();
  // A weight loaded for this base is already in its dtype (io::load_named_weights): kept as is.
  if (dtype == DType::F32 || w.dtype() == dtype) return w;
  const LinearOptions& lo = lin.options();
  if (is_block_quantized(dtype) && lo.in % kQuantBlock != 0)
    throw ConfigError(fmt::format("lora.base_dtype {}: layer {} has {} inputs, not a multiple of {} (ggml's block)",
                                  dtype_name(dtype), path, lo.in, kQuantBlock));
  if (is_block_quantized(dtype)) {
    if (!w.is_meta()) return quantize(w, dtype, lo.layout);
    const Shape rows = lo.layout == WeightLayout::kInOut ? Shape{lo.out, lo.in} : w.shape();
    return Tensor::empty(rows, dtype, Device::Meta, Category::QuantizedWeights);
  }
  Tensor low = Tensor::empty(w.shape(), dtype, w.device(), Category::Parameters);
  if (!w.is_meta()) backend_for(low.device()).cast(w, low);
  return low;
}

std::vector<std::string> apply_lora(Module& model, const LoraOptions& o) {
  if (o.r <= 0) throw ConfigError(fmt::format("lora.r must be positive, got {}", o.r));
  for (auto& [name, t] : model.named_parameters()) t.set_requires_grad(false);
  std::vector<std::string> adapted;
  for (auto& [path, m] : model.named_modules()) {
    auto lin = std::dynamic_pointer_cast<Linear>(m);
    if (!lin || lin->adapter()) continue;
    // The LM head stays f32: the fused loss reads it as an f32 master weight.
    if (path != "lm_head") model.set_parameter(path + ".weight", frozen_base_weight(*lin, path, o.base_dtype));
    if (!lora_matches(o, path)) continue;
    const LinearOptions& lo = lin->options();
    lin->set_adapter(std::make_shared<LoraAdapter>(lo.in, lo.out, o, path, lin->weight().device()));
    adapted.push_back(path);
  }
  if (adapted.empty())
    throw ConfigError(fmt::format("lora.target_modules '{}' matches no Linear layer of the model",
                                  o.target_regex.empty() ? fmt::format("{}", fmt::join(o.targets, "|")) : o.target_regex));
  return adapted;
}

std::vector<std::pair<std::string, std::shared_ptr<Linear>>> lora_layers(const Module& model) {
  std::vector<std::pair<std::string, std::shared_ptr<Linear>>> out;
  for (auto& [path, m] : model.named_modules())
    if (auto lin = std::dynamic_pointer_cast<Linear>(m); lin && lin->adapter()) out.emplace_back(path, lin);
  return out;
}

namespace {

// The base parameters (adapters left out) as f32 in each layer's layout, with every adapter
// folded in when `merge`.
NamedTensors float_weights(const Module& model, bool merge) {
  NoGradGuard no_grad;
  std::map<std::string, std::shared_ptr<Linear>> by_weight;
  if (merge)
    for (auto& [path, lin] : lora_layers(model)) by_weight[path + ".weight"] = lin;
  std::map<std::string, WeightLayout> layouts;  // a quantized weight is (out, in) in every layout
  for (auto& [path, m] : model.named_modules())
    if (auto lin = std::dynamic_pointer_cast<Linear>(m)) layouts[path + ".weight"] = lin->options().layout;
  NamedTensors out;
  for (auto& [name, t] : model.named_parameters()) {
    if (name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos) continue;
    Tensor w = cast(t, DType::F32);
    if (is_block_quantized(t.dtype()) && layouts[name] == WeightLayout::kInOut) w = transpose(w, 0, 1);
    auto it = by_weight.find(name);
    if (it != by_weight.end()) {
      const auto& ad = dynamic_cast<const LoraAdapter&>(*it->second->adapter());
      Tensor delta = matmul(ad.b().weight(), ad.a().weight());  // (out, in)
      if (it->second->options().layout == WeightLayout::kInOut) delta = transpose(delta, 0, 1);
      w = add(w, scale(delta, ad.scaling()));
    }
    out.emplace_back(name, w.same(t) ? t.clone(Category::Parameters) : w);
  }
  return out;
}

}  // namespace

NamedTensors merged_weights(const Module& model) { return float_weights(model, true); }

NamedTensors base_weights(const Module& model) { return float_weights(model, false); }

}  // namespace bb
