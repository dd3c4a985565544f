// SentencePieceTokenizer: a thin wrapper that turns the library's status codes into
// FormatError and its int ids into the int64 ids the rest of bigbatch uses.
#include "data/sentencepiece_tokenizer.h"

#include <fmt/format.h>
#include <sentencepiece_processor.h>

#include <filesystem>

#include "core/error.h"

namespace bb {

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& path)
    : path_(path), sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  if (!std::filesystem::is_regular_file(path)) throw FormatError(fmt::format("{} does not exist", path));
  sentencepiece::util::Status status;
  try {
    status = sp_->Load(path);
  } catch (const std::exception& e) {  // the library throws on some malformed models (an empty piece)
    throw FormatError(fmt::format("{} is not a SentencePiece model ({})", path, e.what()));
  }
  if (!status.ok())
    throw FormatError(fmt::format("{} is not a SentencePiece model ({})", path, status.ToString()));
  vocab_size_ = sp_->GetPieceSize();
  special_ = {sp_->bos_id(), sp_->eos_id(), sp_->pad_id()};
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::vector<int64_t> SentencePieceTokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  if (!status.ok())
    throw FormatError(fmt::format("{} cannot encode the text ({})", path_, status.ToString()));
  return {ids.begin(), ids.end()};
}

std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::vector<int> known;  // ids past the vocabulary (a padded embedding) decode to nothing
  known.reserve(ids.size());
  for (int64_t id : ids)
    if (id >= 0 && id < vocab_size_) known.push_back(static_cast<int>(id));
  std::string text;
  const auto status = sp_->Decode(known, &text);
  if (!status.ok())
    throw FormatError(fmt::format("{} cannot decode the ids ({})", path_, status.ToString()));
  return text;
}

int64_t SentencePieceTokenizer::token_id(const std::string& piece) const {
  const int id = sp_->PieceToId(piece);
  // the library answers the unknown token's id for a piece it does not have
  return id == sp_->unk_id() && sp_->IdToPiece(id) != piece ? -1 : id;
}

}  // namespace bb
