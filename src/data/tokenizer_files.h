// Reading tokenizers from the files of a Hugging Face model folder: tokenizer.json,
// vocab.json + merges.txt (GPT-2 byte-level BPE) or tokenizer.model (SentencePiece), with
// BOS/EOS/pad ids from tokenizer_config.json, special_tokens_map.json and config.json.
#pragma once
#include <memory>
#include <string>

#include "data/bpe_tokenizer.h"
#include "data/metaspace_bpe.h"
#include "data/tokenizer.h"

namespace bb {

// GPT-2's own files (the vocab.json and merges.txt of the Hub; encoder.json and vocab.bpe of
// OpenAI's release). Registers no added tokens. Throws FormatError naming the file and field.
BpeSpec read_vocab_merges(const std::string& vocab_path, const std::string& merges_path);
// The same from the two files' text (the paths name them in errors).
BpeSpec parse_vocab_merges(const std::string& vocab_text, const std::string& merges_text,
                           const std::string& vocab_path, const std::string& merges_path);

// A tokenizers-library tokenizer.json whose model is BPE and whose pre-tokeniser is GPT-2's
// ByteLevel; its added_tokens are registered. Throws FormatError naming the file and field.
BpeSpec read_tokenizer_json(const std::string& path);
BpeSpec parse_tokenizer_json(const std::string& text, const std::string& path);

// A SentencePiece-style tokenizer.json (Llama 2's, Mistral's, Gemma's: a BPE over text with
// "▁" for spaces, written so by a Prepend/Replace normalizer or a Metaspace pre-tokenizer).
// Other normalizers and pre-tokenizers are refused by name.
MetaspaceSpec read_metaspace_json(const std::string& path);
MetaspaceSpec parse_metaspace_json(const std::string& text, const std::string& path);

// The tokenizer of a model folder. tokenizer.json is preferred, unless it is not byte-level
// and a tokenizer.model is there (Llama 2 folders hold both); then tokenizer.model; then
// vocab.json + merges.txt. A tokenizer.json that is not byte-level is read as
// SentencePiece-style. Throws FormatError when the folder holds none of them.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir);

}  // namespace bb
