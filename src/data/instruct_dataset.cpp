// Instruction data: JSON lines to token ids with a loss mask, and padded batches.
#include "data/instruct_dataset.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/error.h"

namespace bb {

using nlohmann::json;

namespace {

void append(InstructExample& e, const std::vector<int64_t>& ids, bool trained) {
  for (int64_t id : ids) {
    e.ids.push_back(static_cast<int32_t>(id));
    e.trained.push_back(trained ? 1 : 0);
  }
}

std::string text_field(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) throw FormatError(fmt::format("{}: field '{}' is missing", where, key));
  if (!j[key].is_string()) throw FormatError(fmt::format("{}: field '{}' must be a string", where, key));
  return j[key].get<std::string>();
}

void end_turn(InstructExample& e, const Tokenizer& tok) {
  if (tok.eos_id() >= 0) append(e, {tok.eos_id()}, true);
  else append(e, tok.encode("\n"), true);
}

}  // namespace

InstructExample encode_instruct_line(const std::string& line, const std::string& where, const Tokenizer& tok) {
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw FormatError(fmt::format("{}: not a JSON object", where));
  InstructExample e;
  if (j.contains("messages")) {
    if (!j["messages"].is_array()) throw FormatError(fmt::format("{}: field 'messages' must be a list", where));
    bool any = false;
    for (size_t i = 0; i < j["messages"].size(); ++i) {
      const json& m = j["messages"][i];
      const std::string at = fmt::format("{} (messages[{}])", where, i);
      if (!m.is_object()) throw FormatError(fmt::format("{}: a message must be an object", at));
      const std::string role = text_field(m, "role", at), content = text_field(m, "content", at);
      if (role == "assistant") {
        append(e, tok.encode("<|assistant|>\n"), false);
        append(e, tok.encode(content), true);
        end_turn(e, tok);
        any = true;
      } else {
        append(e, tok.encode("<|" + role + "|>\n" + content + "\n"), false);
      }
    }
    if (!any) throw FormatError(fmt::format("{}: field 'messages' has no assistant message to learn", where));
  } else {
    const std::string prompt = text_field(j, "prompt", where);
    const std::string completion = text_field(j, "completion", where);
    append(e, tok.encode(prompt), false);
    append(e, tok.encode(completion), true);
    end_turn(e, tok);
  }
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
  std::vector<InstructExample> all;
  for (const std::string& f : files) {
    std::ifstream in(f);
    if (!in) throw FormatError(fmt::format("cannot read {}", f));
    std::string line;
    for (int64_t n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      all.push_back(encode_instruct_line(line, fmt::format("{}:{}", f, n), tok));
    }
  }
  if (all.empty()) throw FormatError(fmt::format("data.path {} holds no instruction examples", o.path));
  const size_t n_val = static_cast<size_t>(all.size() * o.val_fraction);
  std::vector<InstructExample> val(all.end() - n_val, all.end());
  all.resize(all.size() - n_val);
  TextCorpus c;
  for (auto& e : all) c.train_tokens += e.ids.size();
  for (auto& e : val) c.val_tokens += e.ids.size();
  const int64_t pad = std::max<int64_t>(tok.eos_id(), 0);
  c.train = std::make_unique<InstructDataset>(std::move(all), o.block_size, o.seed, pad);
  if (!val.empty()) c.val = std::make_unique<InstructDataset>(std::move(val), o.block_size, o.seed + 1, pad);
  return c;
}

}  // namespace bb
