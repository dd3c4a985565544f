// A SentencePiece model (sentencepiece_model.proto's ModelProto) written from its parts, for a
// vocabulary that comes without a tokenizer.model: a GGUF file's tokenizer.ggml.* keys of
// llama.cpp's "llama" (SPM) model. Only the fields llama.cpp's SPM tokenizer reads are set: the
// pieces with their scores and types, a BPE model (merges by score, as Llama's models are),
// byte fallback, the special ids, and an identity normalizer that escapes spaces as U+2581 and
// may add one before the text. Piece types share their numbers with llama.cpp's token types.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace bb {

struct SentencePieceVocab {
  struct Piece {
    std::string text;
    float score = 0;
    int32_t type = 1;  // 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte
  };
  std::vector<Piece> pieces;
  int64_t unk = -1, bos = -1, eos = -1, pad = -1;  // -1: none
  bool byte_fallback = false;
  bool add_dummy_prefix = true;
};

// The serialized ModelProto, as libsentencepiece's LoadFromSerializedProto reads it.
std::string sentencepiece_model_proto(const SentencePieceVocab& v);
// The same parts read back from a serialized ModelProto (a tokenizer.model), with the proto's
// defaults for fields it leaves out; FormatError naming `source` when it does not parse.
SentencePieceVocab read_sentencepiece_vocab(const std::string& serialized, const std::string& source);

}  // namespace bb
