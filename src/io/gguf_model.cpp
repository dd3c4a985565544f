// Hugging Face names and layouts -> llama.cpp's (llama-arch.cpp's LLM_TENSOR_NAMES).
#include "io/gguf_model.h"

#include <fmt/format.h>

#include <cstring>
#include <map>
#include <regex>

#include "core/error.h"
#include "models/gpt2.h"
#include "models/llama.h"

namespace bb::gguf {

namespace {

using Mapped = GgufPlace;

const std::map<std::string, std::string> kGpt2Block = {
    {"ln_1.weight", "attn_norm.weight"},         {"ln_1.bias", "attn_norm.bias"},
    {"attn.c_attn.weight", "attn_qkv.weight"},   {"attn.c_attn.bias", "attn_qkv.bias"},
    {"attn.c_proj.weight", "attn_output.weight"}, {"attn.c_proj.bias", "attn_output.bias"},
    {"ln_2.weight", "ffn_norm.weight"},          {"ln_2.bias", "ffn_norm.bias"},
    {"mlp.c_fc.weight", "ffn_up.weight"},        {"mlp.c_fc.bias", "ffn_up.bias"},
    {"mlp.c_proj.weight", "ffn_down.weight"},    {"mlp.c_proj.bias", "ffn_down.bias"}};

const std::map<std::string, std::string> kLlamaBlock = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"}};

Mapped map_gpt2(std::string name) {
  if (name.rfind("transformer.", 0) == 0) name = name.substr(12);
  if (name == "wte.weight") return {"token_embd.weight"};
  if (name == "wpe.weight") return {"position_embd.weight"};
  if (name == "ln_f.weight") return {"output_norm.weight"};
  if (name == "ln_f.bias") return {"output_norm.bias"};
  static const std::regex block(R"(h\.(\d+)\.(.+))");
  std::smatch m;
  if (std::regex_match(name, m, block)) {
    if (m[2] == "attn.bias" || m[2] == "attn.masked_bias") return {""};  // causal-mask buffers, not weights
    auto it = kGpt2Block.find(m[2]);
    if (it != kGpt2Block.end()) {
      const bool conv1d = it->first.rfind("ln_", 0) != 0 && it->first.ends_with(".weight");
      return {fmt::format("blk.{}.{}", m[1].str(), it->second), conv1d};
    }
  }
  return {"?"};
}

Mapped map_llama(const std::string& name, const LlamaConfig& c) {
  if (name == "model.embed_tokens.weight") return {"token_embd.weight"};
  if (name == "model.norm.weight") return {"output_norm.weight"};
  if (name == "lm_head.weight") return {"output.weight"};
  static const std::regex block(R"(model\.layers\.(\d+)\.(.+))");
  std::smatch m;
  if (std::regex_match(name, m, block)) {
    auto it = kLlamaBlock.find(m[2]);
    if (it != kLlamaBlock.end()) {
      Mapped out{fmt::format("blk.{}.{}", m[1].str(), it->second)};
      if (m[2] == "self_attn.q_proj.weight") out.rope_heads = c.num_attention_heads;
      if (m[2] == "self_attn.k_proj.weight") out.rope_heads = c.num_key_value_heads;
      return out;
    }
  }
  return {"?"};
}

// The encoding the converter would give this tensor (see the header).
TensorType type_for(const std::string& name, const Shape& shape, TensorType type) {
  if (shape.ndim() < 2 || name == "position_embd.weight") return TensorType::F32;
  if (type == TensorType::Q4_0 && (name == "token_embd.weight" || name == "output.weight")) return TensorType::Q8_0;
  return type;
}

uint32_t file_type(TensorType t) {  // llama_ftype (llama.h): LLAMA_FTYPE_ALL_F32, MOSTLY_F16, ...
  switch (t) {
    case TensorType::F32: return 0;
    case TensorType::F16: return 1;
    case TensorType::Q4_0: return 2;
    case TensorType::Q8_0: return 7;
    case TensorType::BF16: return 32;
  }
  return 0;
}

void add_hyperparameters(Writer& w, const CausalLM& model) {
  if (const auto* g = dynamic_cast<const GPT2*>(&model)) {
    const GPT2Config& c = g->config();
    w.add("gpt2.context_length", static_cast<uint32_t>(c.block_size));
    w.add("gpt2.embedding_length", static_cast<uint32_t>(c.n_embd));
    w.add("gpt2.feed_forward_length", static_cast<uint32_t>(4 * c.n_embd));
    w.add("gpt2.block_count", static_cast<uint32_t>(c.n_layer));
    w.add("gpt2.attention.head_count", static_cast<uint32_t>(c.n_head));
    w.add("gpt2.attention.layer_norm_epsilon", c.layer_norm_epsilon);
  } else if (const auto* l = dynamic_cast<const Llama*>(&model)) {
    const LlamaConfig& c = l->config();
    w.add("llama.context_length", static_cast<uint32_t>(c.max_position_embeddings));
    w.add("llama.embedding_length", static_cast<uint32_t>(c.hidden_size));
    w.add("llama.feed_forward_length", static_cast<uint32_t>(c.intermediate_size));
    w.add("llama.block_count", static_cast<uint32_t>(c.num_hidden_layers));
    w.add("llama.attention.head_count", static_cast<uint32_t>(c.num_attention_heads));
    w.add("llama.attention.head_count_kv", static_cast<uint32_t>(c.num_key_value_heads));
    w.add("llama.attention.layer_norm_rms_epsilon", c.rms_norm_eps);
    w.add("llama.rope.freq_base", c.rope_theta);
    w.add("llama.rope.dimension_count", static_cast<uint32_t>(c.head_dim()));
    w.add("llama.vocab_size", static_cast<uint32_t>(c.vocab_size));
  } else {
    throw FormatError(fmt::format("GGUF export of a {} model is not supported (gpt2, llama)", model.model_type()));
  }
}

}  // namespace

std::vector<float> transposed(const std::vector<float>& w, int64_t rows, int64_t cols) {
  std::vector<float> t(w.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t[c * rows + r] = w[r * cols + c];
  return t;
}

GgufPlace gguf_place(const CausalLM& model, const std::string& hf_name) {
  const auto* llama = dynamic_cast<const Llama*>(&model);
  return llama ? map_llama(hf_name, llama->config()) : map_gpt2(hf_name);
}

namespace {

// Row i*half + j of each head in Hugging Face's layout is row 2j + i in GGML's.
void move_rope_rows(const uint8_t* w, int64_t heads, int64_t rows, size_t row_bytes, uint8_t* out, bool to_ggml) {
  const int64_t d = rows / heads, half = d / 2;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < half; ++j) {
        const size_t hf = (h * d + i * half + j) * row_bytes, gg = (h * d + 2 * j + i) * row_bytes;
        std::memcpy(out + (to_ggml ? gg : hf), w + (to_ggml ? hf : gg), row_bytes);
      }
}

std::vector<float> move_rope_rows(const std::vector<float>& w, int64_t heads, int64_t rows, int64_t cols, bool to_ggml) {
  std::vector<float> out(w.size());
  move_rope_rows(reinterpret_cast<const uint8_t*>(w.data()), heads, rows, cols * sizeof(float),
                 reinterpret_cast<uint8_t*>(out.data()), to_ggml);
  return out;
}

}  // namespace

std::vector<float> unpermute_rope_rows(const std::vector<float>& w, int64_t heads, int64_t rows, int64_t cols) {
  return move_rope_rows(w, heads, rows, cols, false);
}

void unpermute_rope_rows(const uint8_t* w, int64_t heads, int64_t rows, size_t row_bytes, uint8_t* out) {
  move_rope_rows(w, heads, rows, row_bytes, out, false);
}

std::vector<float> permute_rope_rows(const std::vector<float>& w, int64_t heads, int64_t rows, int64_t cols) {
  return move_rope_rows(w, heads, rows, cols, true);
}

void add_model(Writer& w, const CausalLM& model, TensorType type, const std::string& name,
               std::vector<std::string>& notes) {
  const std::string arch = model.model_type();
  w.add("general.architecture", arch);
  w.add("general.name", name);
  w.add("general.file_type", file_type(type));
  add_hyperparameters(w, model);
  for (const auto& [hf_name, t] : model.named_parameters()) {
    const Mapped m = gguf_place(model, hf_name);
    if (m.name.empty()) continue;
    if (m.name == "?")
      throw FormatError(fmt::format("tensor {} has no llama.cpp name in a {} GGUF", hf_name, arch));
    std::vector<float> v = t.to_floats();
    std::vector<int64_t> shape = t.shape().vec();
    if (m.transpose && shape.size() == 2) {
      v = transposed(v, shape[0], shape[1]);
      std::swap(shape[0], shape[1]);
    }
    if (m.rope_heads > 0) v = permute_rope_rows(v, m.rope_heads, shape[0], shape[1]);
    TensorType tt = type_for(m.name, t.shape(), type);
    if (is_quantized(tt) && shape.back() % kBlock != 0) {
      notes.push_back(fmt::format("{}: rows of {} are not a multiple of {}, written as f16 instead of {}", m.name,
                                  shape.back(), kBlock, tensor_type_name(tt)));
      tt = TensorType::F16;
    }
    w.add_tensor({m.name, shape, tt, encode(tt, v, shape.back())});
  }
}

}  // namespace bb::gguf
