// GGUF -> a bigbatch model: the inverse of io/gguf_model.cpp's mapping.
#include "io/gguf_import.h"

#include <fmt/format.h>

#include <cstring>
#include <set>

#include "core/error.h"
#include "core/storage.h"
#include "io/gguf_model.h"
#include "io/gguf_reader.h"
#include "io/hf_weights.h"
#include "models/gpt2.h"
#include "models/llama.h"

namespace bb {

namespace {

DType block_dtype(gguf::TensorType t) {
  return t == gguf::TensorType::Q8_0 ? DType::Q8_0 : t == gguf::TensorType::Q4_0 ? DType::Q4_0 : DType::F32;
}

// An integer key in [1, limit], as JsonFields::size checks config.json's.
int64_t size_key(const gguf::Reader& r, const std::string& key, int64_t limit) {
  const int64_t v = r.integer(key);
  if (v < 1 || v > limit) throw FormatError(fmt::format("{}: key '{}' is {}, outside [1, {}]", r.path(), key, v, limit));
  return v;
}

int64_t vocab_rows(const gguf::Reader& r) {
  const gguf::TensorInfo* t = r.find_tensor("token_embd.weight");
  if (!t || t->shape.size() != 2) throw FormatError(fmt::format("{} has no 2-D tensor 'token_embd.weight'", r.path()));
  if (t->shape[0] > kMaxVocab) throw FormatError(fmt::format("{}: a vocabulary of {} tokens", r.path(), t->shape[0]));
  return t->shape[0];
}

LlamaConfig llama_config(const gguf::Reader& r) {
  LlamaConfig c;
  c.hidden_size = size_key(r, "llama.embedding_length", kMaxWidth);
  c.intermediate_size = size_key(r, "llama.feed_forward_length", 8 * kMaxWidth);
  c.num_hidden_layers = size_key(r, "llama.block_count", kMaxLayers);
  c.num_attention_heads = size_key(r, "llama.attention.head_count", kMaxWidth);
  c.num_key_value_heads = r.has("llama.attention.head_count_kv") ? size_key(r, "llama.attention.head_count_kv", kMaxWidth)
                                                                 : c.num_attention_heads;
  c.max_position_embeddings = size_key(r, "llama.context_length", kMaxPositions);
  c.rms_norm_eps = static_cast<float>(r.real("llama.attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_theta = static_cast<float>(r.real("llama.rope.freq_base", 10000.0));
  c.vocab_size = vocab_rows(r);
  c.tie_word_embeddings = r.find_tensor("output.weight") == nullptr;
  c.bos_token_id = r.integer("tokenizer.ggml.bos_token_id", -1);
  c.eos_token_id = r.integer("tokenizer.ggml.eos_token_id", -1);
  if (c.num_attention_heads > 0 && c.hidden_size % c.num_attention_heads == 0 &&
      r.integer("llama.rope.dimension_count", c.head_dim()) != c.head_dim())
    throw FormatError(fmt::format("{}: llama.rope.dimension_count is {}, but bigbatch rotates whole heads of {}",
                                  r.path(), r.integer("llama.rope.dimension_count"), c.head_dim()));
  const std::string scaling = r.string("llama.rope.scaling.type", "none");
  if (scaling != "none")
    throw FormatError(fmt::format("{}: llama.rope.scaling.type is '{}', a RoPE scaling bigbatch does not compute",
                                  r.path(), scaling));
  return c;
}

GPT2Config gpt2_config(const gguf::Reader& r) {
  GPT2Config c;
  c.n_embd = size_key(r, "gpt2.embedding_length", kMaxWidth);
  c.n_layer = size_key(r, "gpt2.block_count", kMaxLayers);
  c.n_head = size_key(r, "gpt2.attention.head_count", kMaxWidth);
  c.block_size = size_key(r, "gpt2.context_length", kMaxPositions);
  c.layer_norm_epsilon = static_cast<float>(r.real("gpt2.attention.layer_norm_epsilon", 1e-5));
  c.vocab_size = vocab_rows(r);
  if (r.integer("gpt2.feed_forward_length", 4 * c.n_embd) != 4 * c.n_embd)
    throw FormatError(fmt::format("{}: gpt2.feed_forward_length is {}, but a GPT-2 block's MLP is 4 x {} wide", r.path(),
                                  r.integer("gpt2.feed_forward_length"), c.n_embd));
  return c;
}

template <typename Config>
void validate(const Config& c, const std::string& path) {
  try {
    c.validate();
  } catch (const ConfigError& e) {
    throw FormatError(fmt::format("{}: {}", path, e.what()));
  }
}

}  // namespace

bool is_gguf_path(const std::string& path) { return path.size() > 5 && path.ends_with(".gguf"); }

std::unique_ptr<CausalLM> load_gguf_causal_lm(const std::string& path, Device device, DType linear_dtype) {
  const gguf::Reader r(path);
  const std::string arch = r.string("general.architecture");
  std::unique_ptr<CausalLM> model;
  {
    UncountedMeta scaffold;
    if (arch == "llama") {
      const LlamaConfig c = llama_config(r);
      validate(c, path);
      model = std::make_unique<Llama>(c, 0, Device::Meta);
    } else if (arch == "gpt2") {
      const GPT2Config c = gpt2_config(r);
      validate(c, path);
      model = std::make_unique<GPT2>(c, 0, Device::Meta);
    } else {
      throw FormatError(fmt::format("{}: general.architecture is '{}', a model bigbatch does not train (gpt2, llama)",
                                    path, arch));
    }
  }
  NamedTensors weights;
  std::set<std::string> used;
  const std::map<std::string, WeightLayout> lowered = lowerable_linear_weights(*model);
  for (const auto& [hf_name, p] : model->named_parameters()) {
    const gguf::GgufPlace place = gguf::gguf_place(*model, hf_name);
    if (place.name.empty() || place.name == "?")
      throw FormatError(fmt::format("{}: the model's tensor {} has no GGUF name", path, hf_name));
    const gguf::TensorInfo* t = r.find_tensor(place.name);
    if (!t) throw FormatError(fmt::format("{} has no tensor '{}' (the model's {})", path, place.name, hf_name));
    std::vector<int64_t> shape = p.shape().vec();
    if (place.transpose && shape.size() == 2) std::swap(shape[0], shape[1]);
    if (t->shape != shape)
      throw FormatError(fmt::format("{}: tensor '{}' is {} but the model's {} needs {}", path, place.name,
                                    Shape(t->shape).str(), hf_name, Shape(shape).str()));
    used.insert(place.name);
    // A frozen Linear weight already in the base's block format keeps its blocks: GGML stores
    // a Linear (out, in) with blocks along in, which is the layout quantized_linear reads.
    const bool keep_blocks = is_block_quantized(linear_dtype) && lowered.count(hf_name) && t->shape.size() == 2 &&
                             block_dtype(t->type) == linear_dtype;
    if (keep_blocks) {
      Tensor w = Tensor::empty(Shape(t->shape), linear_dtype, device, Category::QuantizedWeights);
      if (device != Device::Meta) {
        const size_t row_bytes = storage_bytes(linear_dtype, t->shape[1]);
        if (place.rope_heads > 0) gguf::unpermute_rope_rows(r.encoded(*t), place.rope_heads, t->shape[0], row_bytes, w.data<uint8_t>());
        else std::memcpy(w.raw(), r.encoded(*t), w.nbytes());
      }
      weights.emplace_back(hf_name, std::move(w));
      continue;
    }
    Tensor w = Tensor::empty(p.shape(), DType::F32, device, Category::Parameters);
    if (device != Device::Meta) {
      std::vector<float> v = r.values(*t);
      if (place.rope_heads > 0) v = gguf::unpermute_rope_rows(v, place.rope_heads, shape[0], shape[1]);
      if (place.transpose && shape.size() == 2) v = gguf::transposed(v, shape[0], shape[1]);
      std::copy(v.begin(), v.end(), w.data<float>());
    }
    // A frozen base takes its dtype now, tensor by tensor: never the whole model in f32.
    const auto low = lowered.find(hf_name);
    if (low != lowered.end() && linear_dtype != DType::F32)
      w = to_base_dtype(w, linear_dtype, low->second, path, place.name);
    weights.emplace_back(hf_name, std::move(w));
  }
  // Nothing in the file may go unused: a tensor the model has no place for would change
  // what the model computes (rope_freqs, a bias bigbatch's blocks lack).
  for (const gguf::TensorInfo& t : r.tensors())
    if (!used.count(t.name))
      throw FormatError(fmt::format("{}: tensor '{}' has no place in a bigbatch {} (the model would not be the "
                                    "file's)", path, t.name, arch));
  load_named_weights(*model, std::move(weights), path, [](const std::string& n) { return n; }, linear_dtype);
  return model;
}

}  // namespace bb
