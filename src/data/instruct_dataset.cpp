// Instruction data: JSON lines to token ids with a loss mask, and padded batches.
#include "data/instruct_dataset.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/error.h"
#include "data/packing.h"

namespace bb {

using nlohmann::ordered_json;

namespace {

void append(InstructExample& e, const std::vector<int64_t>& ids, bool trained) {
  for (int64_t id : ids) {
    e.ids.push_back(static_cast<int32_t>(id));
    e.trained.push_back(trained ? 1 : 0);
  }
}

std::string text_field(const ordered_json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) throw FormatError(fmt::format("{}: field '{}' is missing", where, key));
  if (!j[key].is_string()) throw FormatError(fmt::format("{}: field '{}' must be a string", where, key));
  return j[key].get<std::string>();
}

void end_turn(InstructExample& e, const Tokenizer& tok) {
  if (tok.eos_id() >= 0) append(e, {tok.eos_id()}, true);
  else append(e, tok.encode("\n"), true);
}

}  // namespace

namespace {

void start(InstructExample& e, const Tokenizer& tok) {
  if (tok.special().add_bos) append(e, {tok.bos_id()}, false);
}

// bigbatch's own chat format (see instruct_dataset.h).
void encode_builtin_chat(InstructExample& e, const ordered_json& messages, bool train_all, const std::string& where,
                         const Tokenizer& tok) {
  start(e, tok);
  for (size_t i = 0; i < messages.size(); ++i) {
    const ordered_json& m = messages[i];
    const std::string role = text_field(m, "role", fmt::format("{} (messages[{}])", where, i));
    const std::string content = text_field(m, "content", fmt::format("{} (messages[{}])", where, i));
    if (role == "assistant") {
      append(e, tok.encode("<|assistant|>\n"), train_all);
      append(e, tok.encode(content), true);
      end_turn(e, tok);
    } else {
      append(e, tok.encode("<|" + role + "|>\n" + content + "\n"), train_all);
    }
  }
}

void check_messages(const ordered_json& j, bool need_assistant, const std::string& where) {
  if (!j["messages"].is_array()) throw FormatError(fmt::format("{}: field 'messages' must be a list", where));
  bool any = false;
  for (size_t i = 0; i < j["messages"].size(); ++i) {
    const ordered_json& m = j["messages"][i];
    const std::string at = fmt::format("{} (messages[{}])", where, i);
    if (!m.is_object()) throw FormatError(fmt::format("{}: a message must be an object", at));
    any |= text_field(m, "role", at) == "assistant";
    text_field(m, "content", at);
  }
  if (need_assistant && !any)
    throw FormatError(fmt::format("{}: field 'messages' has no assistant message to learn", where));
}

}  // namespace

InstructExample encode_instruct_line(const std::string& line, const std::string& where, const Tokenizer& tok,
                                     const InstructEncoding& encoding) {
  // ordered: a template that prints a message with tojson keeps the line's key order
  ordered_json j = ordered_json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw FormatError(fmt::format("{}: not a JSON object", where));
  InstructExample e;
  const bool train_all = encoding.train_on == TrainOn::All;
  if (j.contains("messages")) {
    check_messages(j, !train_all, where);
    if (!encoding.chat.tmpl) {
      encode_builtin_chat(e, j["messages"], train_all, where, tok);
      return e;
    }
    const TrainedIds t =
        tokenize_rendered(render_chat_for_training(*encoding.chat.tmpl, j, tok.special(), encoding.train_on, where), tok);
    e.ids.assign(t.ids.begin(), t.ids.end());
    e.trained = t.trained;
    return e;
  }
  const std::string prompt = text_field(j, "prompt", where);
  const std::string completion = text_field(j, "completion", where);
  start(e, tok);
  append(e, tok.encode(prompt), train_all);
  append(e, tok.encode(completion), true);
  end_turn(e, tok);
  return e;
}

InstructDataset::InstructDataset(std::vector<InstructExample> examples, int64_t block_size, uint64_t seed,
                                 int64_t pad_id)
    : examples_(std::move(examples)), block_(block_size), pad_(pad_id), order_(size(), seed) {
  if (examples_.empty()) throw FormatError("instruction data holds no examples");
}

// The same seeded shuffle per epoch as Documents.
const InstructExample& InstructDataset::example(int64_t sample) const { return examples_[order_(sample)]; }

Batch InstructDataset::batch(int64_t first, int64_t count) const {
  std::vector<const std::vector<int32_t>*> ids;
  std::vector<const std::vector<uint8_t>*> trained;
  for (int64_t i = 0; i < count; ++i) {
    const InstructExample& e = example(first + i);
    ids.push_back(&e.ids);
    trained.push_back(&e.trained);
  }
  return padded_batch(ids, trained, block_, pad_);
}

TextCorpus load_instruct_corpus(const TextDataOptions& o, const Tokenizer& tok) {
  namespace fs = std::filesystem;
  if (o.path.empty()) throw ConfigError("data.path is empty: name a .jsonl file or a folder of them");
  if (!fs::exists(o.path)) throw FormatError(fmt::format("data.path {} does not exist", o.path));
  std::vector<std::string> files;
  if (fs::is_directory(o.path)) {
    for (auto& e : fs::directory_iterator(o.path))
      if (e.is_regular_file() && e.path().extension() == ".jsonl") files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
  } else if (fs::is_regular_file(o.path)) {
    files.push_back(o.path);
  } else {  // a FIFO or device would block or never end
    throw FormatError(fmt::format("data.path {} is neither a regular file nor a folder", o.path));
  }
  InstructEncoding encoding;
  encoding.chat = load_chat_format(o.tokenizer_dir, o.chat_template);
  encoding.train_on = parse_train_on(o.train_on);
  if (o.too_long != "error" && o.too_long != "truncate" && o.too_long != "drop")
    throw ConfigError(fmt::format("data.too_long '{}' is not known (error, truncate or drop)", o.too_long));
  std::vector<InstructExample> all;
  int64_t dropped = 0;
  for (const std::string& f : files) {
    std::ifstream in(f);
    if (!in) throw FormatError(fmt::format("cannot read {}", f));
    std::string line;
    for (int64_t n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string where = fmt::format("{}:{}", f, n);
      InstructExample e = encode_instruct_line(line, where, tok, encoding);
      const int64_t tokens = static_cast<int64_t>(e.ids.size());
      if (tokens > o.block_size + 1) {
        if (o.too_long == "drop") {
          ++dropped;
          continue;
        }
        if (o.too_long != "truncate")
          throw FormatError(fmt::format("{}: the example is {} tokens, longer than the block size of {} (+1 for the "
                                        "last target); shorten it, raise model.block_size, or set data.too_long "
                                        "to truncate or drop",
                                        where, tokens, o.block_size));
        e.ids.resize(static_cast<size_t>(o.block_size + 1));
        e.trained.resize(e.ids.size());
      }
      all.push_back(std::move(e));
    }
  }
  if (all.empty())
    throw FormatError(fmt::format("data.path {} holds no instruction examples{}", o.path,
                                  dropped ? fmt::format(" within the block size ({} dropped as too long)", dropped) : ""));
  const size_t n_val = static_cast<size_t>(all.size() * o.val_fraction);
  std::vector<InstructExample> val(all.end() - n_val, all.end());
  all.resize(all.size() - n_val);
  TextCorpus c;
  c.chat_format = encoding.chat.source;
  c.dropped = dropped;
  for (auto& e : all) c.train_tokens += e.ids.size();
  for (auto& e : val) c.val_tokens += e.ids.size();
  const int64_t pad = tok.batch_pad_id();
  if (o.packing) {
    auto sequences = [](std::vector<InstructExample>& es) {
      std::vector<Sequence> out;
      for (InstructExample& e : es) out.push_back({std::move(e.ids), std::move(e.trained)});
      return out;
    };
    pack_corpus(c, sequences(all), sequences(val), o.block_size, o.seed, pad, o.path);
    return c;
  }
  c.train = std::make_unique<InstructDataset>(std::move(all), o.block_size, o.seed, pad);
  if (!val.empty()) c.val = std::make_unique<InstructDataset>(std::move(val), o.block_size, o.seed + 1, pad);
  return c;
}

}  // namespace bb
