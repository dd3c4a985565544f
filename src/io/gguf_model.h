// A GPT-2 or Llama model as llama.cpp's GGUF tensors and {arch}.* hyperparameters: tensor
// names as llama.cpp's converter (convert_hf_to_gguf.py) writes them, GPT-2's Conv1D weights
// transposed to (out, in), Llama's q/k rows permuted for GGML's RoPE layout.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/gguf_writer.h"
#include "models/causal_lm.h"

namespace bb::gguf {

// Adds general.architecture, general.name, general.file_type, the {arch}.* keys and every
// weight of `model`. Which encoding each tensor gets follows the converter: 1-D tensors
// (norms, biases) and the position embeddings stay f32, 2-D weights take `type`; for q4_0
// the token embeddings and output take q8_0 (llama-quantize keeps those at a higher type).
// A quantized tensor whose rows are not a multiple of 32 falls back to f16, and a line
// saying so is appended to `notes`. Throws FormatError for a tensor llama.cpp has no name for.
void add_model(Writer& w, const CausalLM& model, TensorType type, const std::string& name,
               std::vector<std::string>& notes);

// Where a parameter of `model` (by its Hugging Face name) goes in a GGUF file: llama.cpp's
// name ("" for a tensor left out, "?" for one without a name), whether it is transposed
// (GPT-2's Conv1D) and, above 0, the heads its rows are permuted over (Llama's q and k).
struct GgufPlace {
  std::string name;
  bool transpose = false;
  int64_t rope_heads = 0;
};
GgufPlace gguf_place(const CausalLM& model, const std::string& hf_name);

// Llama's q_proj or k_proj (heads * head_dim rows of `cols`) with each head's rows reordered
// from Hugging Face's rotate-half pairing (i, i + d/2) to GGML's adjacent pairs (2i, 2i + 1):
// convert_hf_to_gguf.py's LlamaModel.permute.
std::vector<float> permute_rope_rows(const std::vector<float>& w, int64_t heads, int64_t rows, int64_t cols);
// The inverse: GGML's layout back to Hugging Face's (reading a GGUF).
std::vector<float> unpermute_rope_rows(const std::vector<float>& w, int64_t heads, int64_t rows, int64_t cols);
// The same over rows of row_bytes bytes (a block-quantized tensor's rows), w into out.
void unpermute_rope_rows(const uint8_t* w, int64_t heads, int64_t rows, size_t row_bytes, uint8_t* out);
// (rows, cols) row-major -> (cols, rows).
std::vector<float> transposed(const std::vector<float>& w, int64_t rows, int64_t cols);

}  // namespace bb::gguf
