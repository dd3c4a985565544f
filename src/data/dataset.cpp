// Token windows, padded documents and corpus loading (plain or gzip-compressed files).
#include "data/dataset.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <numeric>

#include "core/error.h"
#include "data/gzip_file.h"
#include "data/packing.h"

namespace bb {
namespace fs = std::filesystem;

uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

TokenWindows::TokenWindows(std::vector<int32_t> tokens, int64_t block_size, uint64_t seed,
                           std::string source)
    : tokens_(std::move(tokens)), block_(block_size), seed_(seed) {
  if (static_cast<int64_t>(tokens_.size()) < block_ + 1)
    throw FormatError(fmt::format("{} has {} tokens, fewer than one window of block_size + 1 = {}",
                                  source, tokens_.size(), block_ + 1));
}

Batch TokenWindows::batch(int64_t first, int64_t count) const {
  Batch b;
  b.tokens = Tensor::empty(Shape{count, block_}, DType::I64);
  b.targets = Tensor::empty(Shape{count, block_}, DType::I64);
  int64_t* x = b.tokens.data<int64_t>();
  int64_t* y = b.targets.data<int64_t>();
  const uint64_t span = tokens_.size() - block_;
  for (int64_t i = 0; i < count; ++i) {
    uint64_t start = mix64(seed_ ^ mix64(static_cast<uint64_t>(first + i))) % span;
    for (int64_t t = 0; t < block_; ++t) {
      x[i * block_ + t] = tokens_[start + t];
      y[i * block_ + t] = tokens_[start + t + 1];
    }
  }
  b.target_count = count * block_;
  b.samples = count;
  return b;
}

Documents::Documents(std::vector<std::vector<int32_t>> docs, int64_t block_size, uint64_t seed,
                     int64_t pad_id)
    : docs_(std::move(docs)), block_(block_size), pad_(pad_id) {
  docs_.erase(std::remove_if(docs_.begin(), docs_.end(), [](auto& d) { return d.size() < 2; }),
              docs_.end());
  if (docs_.empty()) throw FormatError("the corpus has no document of at least two tokens");
  order_ = EpochOrder(size(), seed);
}

int64_t EpochOrder::operator()(int64_t sample) const {
  const int64_t epoch = sample / n_;
  if (epoch != cached_epoch_) {
    order_.resize(n_);
    std::iota(order_.begin(), order_.end(), 0);
    const uint64_t key = mix64(seed_ ^ mix64(static_cast<uint64_t>(epoch) + 0x51));
    std::sort(order_.begin(), order_.end(), [&](int64_t a, int64_t b) {
      return mix64(key ^ static_cast<uint64_t>(a)) < mix64(key ^ static_cast<uint64_t>(b));
    });
    cached_epoch_ = epoch;
  }
  return order_[sample % n_];
}

const std::vector<int32_t>& Documents::doc(int64_t sample) const { return docs_[order_(sample)]; }

Batch padded_batch(const std::vector<const std::vector<int32_t>*>& seqs,
                   const std::vector<const std::vector<uint8_t>*>& trained, int64_t block_size, int64_t pad_id) {
  const int64_t count = static_cast<int64_t>(seqs.size());
  int64_t longest = 1;
  for (const auto* s : seqs) longest = std::max<int64_t>(longest, std::min<int64_t>(s->size() - 1, block_size));
  Batch b;
  b.tokens = Tensor::empty(Shape{count, longest}, DType::I64);
  b.targets = Tensor::empty(Shape{count, longest}, DType::I64);
  int64_t* x = b.tokens.data<int64_t>();
  int64_t* y = b.targets.data<int64_t>();
  for (int64_t i = 0; i < count; ++i) {
    const std::vector<int32_t>& d = *seqs[i];
    const std::vector<uint8_t>* mask = trained.empty() ? nullptr : trained[i];
    const int64_t len = std::min<int64_t>(d.size() - 1, block_size);
    for (int64_t t = 0; t < longest; ++t) {
      const bool loss = t < len && (!mask || (*mask)[t + 1]);
      x[i * longest + t] = t < len ? d[t] : pad_id;
      y[i * longest + t] = loss ? d[t + 1] : kIgnoreIndex;
      b.target_count += loss ? 1 : 0;
    }
  }
  b.samples = count;
  return b;
}

Batch Documents::batch(int64_t first, int64_t count) const {
  std::vector<const std::vector<int32_t>*> ds;
  for (int64_t i = 0; i < count; ++i) ds.push_back(&doc(first + i));
  return padded_batch(ds, {}, block_, pad_);
}

namespace {

std::vector<std::string> corpus_files(const std::string& path) {
  if (path.empty()) throw ConfigError("data.path is empty: name a text file or a folder of them");
  if (!fs::exists(path)) throw FormatError(fmt::format("data.path {} does not exist", path));
  if (!fs::is_directory(path)) return {path};
  std::vector<std::string> files;
  for (auto& e : fs::directory_iterator(path)) {
    std::string ext = e.path().extension().string();
    // fortune packages put index files (.dat) and links (.u8) beside the text
    if (e.is_regular_file() && ext != ".dat" && ext != ".u8") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw FormatError(fmt::format("data.path {} holds no text files", path));
  return files;
}

std::vector<std::string> split_documents(const std::string& text, const std::string& sep) {
  std::vector<std::string> docs;
  std::string cur;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    bool boundary = sep.empty() ? line.empty() : line == sep;
    if (boundary) {
      if (!cur.empty()) docs.push_back(cur);
      cur.clear();
    } else {
      cur += line;
      cur += '\n';
    }
    pos = nl + 1;
  }
  if (!cur.empty()) docs.push_back(cur);
  return docs;
}

}  // namespace

TextCorpus load_text_corpus(const TextDataOptions& o, const Tokenizer& tok) {
  if (!(o.val_fraction >= 0 && o.val_fraction < 1))
    throw ConfigError(fmt::format("data.val_fraction must be in [0, 1), got {}", o.val_fraction));
  std::vector<std::string> docs;
  for (const std::string& f : corpus_files(o.path)) {
    auto part = split_documents(read_maybe_gzip(f), o.separator);
    docs.insert(docs.end(), part.begin(), part.end());
  }
  TextCorpus c;
  if (o.format == "text" && o.packing)
    throw ConfigError("data.packing applies to data.format documents or instruct (text is cut in full windows already)");
  if (o.format == "text") {
    std::vector<int32_t> all;
    for (const std::string& d : docs) {
      if (tok.special().add_bos) all.push_back(static_cast<int32_t>(tok.bos_id()));
      for (int64_t id : tok.encode(d)) all.push_back(static_cast<int32_t>(id));
      if (tok.eos_id() >= 0) all.push_back(static_cast<int32_t>(tok.eos_id()));
    }
    const size_t n_val = static_cast<size_t>(all.size() * o.val_fraction);
    std::vector<int32_t> val(all.end() - n_val, all.end());
    all.resize(all.size() - n_val);
    c.train_tokens = all.size();
    c.val_tokens = val.size();
    c.train = std::make_unique<TokenWindows>(std::move(all), o.block_size, o.seed, o.path);
    if (static_cast<int64_t>(val.size()) > o.block_size)
      c.val = std::make_unique<TokenWindows>(std::move(val), o.block_size, o.seed + 1, o.path + " (validation part)");
  } else if (o.format == "documents") {
    std::vector<std::vector<int32_t>> ids;
    for (const std::string& d : docs) {
      std::vector<int32_t> v;
      if (tok.special().add_bos) v.push_back(static_cast<int32_t>(tok.bos_id()));
      for (int64_t id : tok.encode(d)) v.push_back(static_cast<int32_t>(id));
      if (tok.eos_id() >= 0) v.push_back(static_cast<int32_t>(tok.eos_id()));
      ids.push_back(std::move(v));
    }
    const size_t n_val = static_cast<size_t>(ids.size() * o.val_fraction);
    std::vector<std::vector<int32_t>> val(ids.end() - n_val, ids.end());
    ids.resize(ids.size() - n_val);
    for (auto& d : ids) c.train_tokens += d.size();
    for (auto& d : val) c.val_tokens += d.size();
    const int64_t pad = tok.batch_pad_id();
    if (o.packing) {
      auto sequences = [](std::vector<std::vector<int32_t>>& ds) {
        std::vector<Sequence> out;
        for (auto& d : ds) out.push_back({std::move(d), {}});
        return out;
      };
      pack_corpus(c, sequences(ids), sequences(val), o.block_size, o.seed, pad, o.path);
    } else {
      c.train = std::make_unique<Documents>(std::move(ids), o.block_size, o.seed, pad);
      if (!val.empty()) c.val = std::make_unique<Documents>(std::move(val), o.block_size, o.seed + 1, pad);
    }
  } else {
    throw ConfigError(fmt::format("data.format '{}' is not known (text or documents)", o.format));
  }
  return c;
}

}  // namespace bb
