// A model folder's tokenizer as GGUF's tokenizer.ggml.* keys, written so that llama.cpp's
// tokenizer gives the ids bigbatch's gives. Byte-level BPE (vocab.json + merges.txt, or a
// ByteLevel tokenizer.json) is llama.cpp's "gpt2" model; bigbatch's byte tokenizer (a folder
// without tokenizer files) is the same model with one token per byte and no merges; a
// SentencePiece tokenizer.model is llama.cpp's "llama" model (pieces, scores and types).
#pragma once
#include <cstdint>
#include <string>

#include "data/tokenizer.h"
#include "io/gguf_writer.h"

namespace bb::gguf {

// Adds tokenizer.ggml.* (and tokenizer.chat_template when the folder has a template).
// `vocab_size` is the model's embedding rows: ids past the tokenizer's are padding tokens
// ([PAD<id>], unused), as llama.cpp's converter writes them. Throws FormatError with one
// sentence for a tokenizer GGUF cannot express (a SentencePiece-style tokenizer.json without
// its tokenizer.model, a prefix space). `special`:
// the folder's BOS/EOS/pad ids, as its tokenizer reads them.
void add_tokenizer(Writer& w, const std::string& dir, int64_t vocab_size, const SpecialIds& special);

}  // namespace bb::gguf
