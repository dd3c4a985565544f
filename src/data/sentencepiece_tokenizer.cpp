// SentencePieceTokenizer: a thin wrapper that turns the library's status codes into
// FormatError and its int ids into the int64 ids the rest of bigbatch uses.
#include "data/sentencepiece_tokenizer.h"

#include <fmt/format.h>
#include <sentencepiece_processor.h>

#include <algorithm>
#include <filesystem>

#include "core/error.h"

namespace bb {

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) throw FormatError(fmt::format("{} does not exist", path));
  load(path, [&] { return sp_->Load(path); });
}

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::from_proto(const std::string& serialized,
                                                                           const std::string& source) {
  std::unique_ptr<SentencePieceTokenizer> t(new SentencePieceTokenizer());
  t->load(source, [&] { return t->sp_->LoadFromSerializedProto(serialized); });
  return t;
}

void SentencePieceTokenizer::load(const std::string& source, const std::function<sentencepiece::util::Status()>& read) {
  path_ = source;
  sp_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
  sentencepiece::util::Status status;
  try {
    status = read();
  } catch (const std::exception& e) {  // the library throws on some malformed models (an empty piece)
    throw FormatError(fmt::format("{} is not a SentencePiece model ({})", source, e.what()));
  }
  if (!status.ok())
    throw FormatError(fmt::format("{} is not a SentencePiece model ({})", source, status.ToString()));
  vocab_size_ = sp_->GetPieceSize();
  SpecialIds ids;
  ids.bos = sp_->bos_id();
  ids.eos = sp_->eos_id();
  ids.pad = sp_->pad_id();
  ids.add_bos = ids.bos >= 0;  // SentencePiece models are trained with BOS first (Llama 2)
  set_special_ids(ids);
  for (int id = 0; id < vocab_size_; ++id)
    if (sp_->IsControl(id) && !sp_->IdToPiece(id).empty()) control_.emplace_back(sp_->IdToPiece(id), id);
  std::sort(control_.begin(), control_.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

SentencePieceVocab SentencePieceTokenizer::vocab() const {
  const auto bytes = sp_->serialized_model_proto();
  return read_sentencepiece_vocab(std::string(bytes.data(), bytes.size()), path_);
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

void SentencePieceTokenizer::encode_plain(std::string_view text, std::vector<int64_t>& out, size_t offset,
                                          std::vector<size_t>* starts) const {
  if (text.empty()) return;
  if (starts) {
    // The library's proto keeps each piece's byte range in the text it was given.
    const auto spt = sp_->EncodeAsImmutableProto(text);
    for (const auto& p : spt.pieces()) {
      out.push_back(p.id());
      starts->push_back(offset + p.begin());
    }
    return;
  }
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  if (!status.ok())
    throw FormatError(fmt::format("{} cannot encode the text ({})", path_, status.ToString()));
  out.insert(out.end(), ids.begin(), ids.end());
}

std::vector<int64_t> SentencePieceTokenizer::encode(std::string_view text) const {
  std::vector<size_t>* none = nullptr;
  std::vector<int64_t> out;
  encode_split(text, out, none);
  return out;
}

std::vector<int64_t> SentencePieceTokenizer::encode_with_starts(std::string_view text,
                                                                std::vector<size_t>& starts) const {
  starts.clear();
  std::vector<int64_t> out;
  encode_split(text, out, &starts);
  return out;
}

// The library reads "</s>" in text as four characters; Hugging Face, and the chat templates
// that write it, mean the control token. The text between them is encoded as usual.
void SentencePieceTokenizer::encode_split(std::string_view text, std::vector<int64_t>& out,
                                          std::vector<size_t>* starts) const {
  size_t plain = 0;
  for (size_t i = 0; i < text.size();) {
    const auto hit = std::find_if(control_.begin(), control_.end(),
                                  [&](const auto& c) { return text.substr(i, c.first.size()) == c.first; });
    if (hit == control_.end()) {
      ++i;
      continue;
    }
    encode_plain(text.substr(plain, i - plain), out, plain, starts);
    out.push_back(hit->second);
    if (starts) starts->push_back(i);
    i += hit->first.size();
    plain = i;
  }
  encode_plain(text.substr(plain), out, plain, starts);
}

std::string SentencePieceTokenizer::token_text(int64_t id) const {
  return id >= 0 && id < vocab_size_ ? sp_->IdToPiece(static_cast<int>(id)) : std::string();
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
