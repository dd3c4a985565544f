// A GPT-2 or Llama read from a GGUF file (model.init=FILE.gguf): the hyperparameters from
// the {arch}.* keys, every tensor decoded (f32, f16, bf16, q8_0, q4_0), GPT-2's Conv1D weights
// transposed back and Llama's q/k rows put back in Hugging Face's rotate-half order, so the
// model is the one llama.cpp runs. Anything bigbatch would compute differently (RoPE scaling,
// a tensor without a place in the model) is refused with a sentence naming the file.
#pragma once
#include <memory>
#include <string>

#include "data/tokenizer.h"
#include "models/causal_lm.h"

namespace bb {

// True for a path that names a GGUF file (by its .gguf suffix).
bool is_gguf_path(const std::string& path);
// As load_causal_lm (io/hf_model.h): on Device::Meta shapes only, counted as the CPU load.
// Quantized weights are decoded into the model's f32 (or the LoRA base's linear_dtype).
std::unique_ptr<CausalLM> load_gguf_causal_lm(const std::string& path, Device device = Device::CPU,
                                              DType linear_dtype = DType::F32);
// The file's tokenizer (io/gguf_tokenizer_import.cpp): llama.cpp's "gpt2" model (byte-level
// BPE with its merges and pre-tokenizer, or the byte tokenizer bigbatch writes: 256 byte
// tokens and <|endoftext|>, no merges) or "llama" model (SentencePiece: pieces, scores and
// types), with the file's special ids; FormatError naming the file and key for any other,
// which then needs data.tokenizer.
std::unique_ptr<Tokenizer> gguf_tokenizer(const std::string& path);

}  // namespace bb
