// Tokenizer file formats and the model-folder loader. Special ids are resolved in order,
// later sources winning: the model's own, config.json's *_token_id, then the token strings
// of special_tokens_map.json and tokenizer_config.json.
#include "data/tokenizer_files.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "data/metaspace_bpe.h"
#include "data/sentencepiece_tokenizer.h"

namespace bb {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string read_file(const std::string& path) {
  // A folder would read as empty text and a FIFO would block: only regular files are read.
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw FormatError(fmt::format("cannot read {}: it is not a regular file", path));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError(fmt::format("cannot read {}", path));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

json parse_json(const std::string& text, const std::string& path) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw FormatError(fmt::format("{} is not valid JSON ({})", path, e.what()));
  }
}

json read_json(const std::string& path) { return parse_json(read_file(path), path); }

// A config file that may be absent; when present it must hold a JSON object.
std::optional<json> read_json_if_present(const std::string& path) {
  if (!fs::exists(path)) return std::nullopt;
  json j = read_json(path);
  if (!j.is_object()) throw FormatError(fmt::format("{} does not hold a JSON object", path));
  return j;
}

std::vector<std::pair<std::string, int64_t>> read_vocab(const json& vocab, const std::string& where) {
  if (!vocab.is_object()) throw FormatError(fmt::format("{} is not an object of token ids", where));
  std::vector<std::pair<std::string, int64_t>> out;
  out.reserve(vocab.size());
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer())
      throw FormatError(fmt::format("{}: the id of token '{}' is not an integer", where, token));
    out.emplace_back(token, id.get<int64_t>());
  }
  return out;
}

// "a b" -> {a, b}; false when it is not two tokens separated by one space
bool split_merge(std::string_view line, std::pair<std::string, std::string>& merge) {
  const size_t space = line.find(' ');
  if (space == std::string_view::npos || space == 0 || space + 1 == line.size() ||
      line.find(' ', space + 1) != std::string_view::npos)
    return false;
  merge = {std::string(line.substr(0, space)), std::string(line.substr(space + 1))};
  return true;
}

// The type of the pre-tokeniser, as JSON text ("\"ByteLevel\"")
std::string pre_tokenizer_type(const json& j) {
  const auto pre = j.find("pre_tokenizer");
  if (pre == j.end()) return "null";
  return pre->is_object() ? pre->value("type", json()).dump() : pre->dump();
}

// The Split patterns of Llama 3's and Qwen 2's tokenizer.json, which byte_level.h matches.
constexpr const char* kLlama3Split =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kQwen2Split =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// Llama 3's pre_tokenizer: a Sequence of a Split by one of those patterns (isolated pieces)
// and a ByteLevel without its own regex. The digits of a piece of numbers (3 or 1), or 0 when
// it is another pre_tokenizer.
int llama3_split_digits(const json& j) {
  const json& pre = j.value("pre_tokenizer", json());
  if (!pre.is_object() || pre.value("type", "") != "Sequence") return 0;
  const json& steps = pre.value("pretokenizers", json::array());
  if (!steps.is_array() || steps.size() != 2 || !steps[0].is_object() || !steps[1].is_object()) return 0;
  const json& split = steps[0];
  const json& bytes = steps[1];
  if (split.value("type", "") != "Split" || split.value("behavior", "") != "Isolated" || split.value("invert", true) ||
      bytes.value("type", "") != "ByteLevel" || bytes.value("use_regex", true) || bytes.value("add_prefix_space", true))
    return 0;
  const json& pattern = split.value("pattern", json::object());
  const std::string regex = pattern.is_object() ? pattern.value("Regex", "") : "";
  return regex == kLlama3Split ? 3 : regex == kQwen2Split ? 1 : 0;
}

bool is_byte_level(const json& j) { return pre_tokenizer_type(j) == "\"ByteLevel\"" || llama3_split_digits(j) > 0; }

// A special token's text: "<s>" or {"content": "<s>", ...}; empty when absent.
std::string token_text(const json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  return "";
}

// An id field of config.json or generation_config.json: an integer, or a list of them
// (Llama 3 lists several EOS). Absent or null: empty.
std::vector<int64_t> id_list(const json& config, const char* key, const std::string& path) {
  const json& v = config.value(key, json());
  std::vector<int64_t> out;
  for (const json& e : v.is_array() ? v : json::array({v})) {
    if (e.is_null()) continue;
    if (!e.is_number_integer())
      throw FormatError(fmt::format("{}: {} is not an integer or a list of integers", path, key));
    out.push_back(e.get<int64_t>());
  }
  return out;
}

// Whether tokenizer.json's post_processor writes a special token before each sequence (a
// TemplateProcessing whose "single" starts with one, alone or inside a Sequence), and which.
std::string post_processor_bos(const json& processor) {
  if (!processor.is_object()) return "";
  const std::string type = processor.value("type", "");
  if (type == "Sequence") {
    for (const json& p : processor.value("processors", json::array()))
      if (std::string t = post_processor_bos(p); !t.empty()) return t;
    return "";
  }
  if (type != "TemplateProcessing") return "";
  const json& single = processor.value("single", json::array());
  if (!single.is_array() || single.empty() || !single[0].is_object() || !single[0].contains("SpecialToken")) return "";
  const json& special = single[0]["SpecialToken"];
  return special.is_object() && special.value("id", json()).is_string() ? special["id"].get<std::string>() : "";
}

template <class Tok>
void resolve_special_ids(const std::string& dir, Tok& tok) {
  SpecialIds ids = tok.special();
  int64_t* fields[] = {&ids.bos, &ids.eos, &ids.pad};
  const char* id_keys[] = {"bos_token_id", "eos_token_id", "pad_token_id"};
  const char* token_keys[] = {"bos_token", "eos_token", "pad_token"};
  std::vector<int64_t> stop;
  for (const char* name : {"config.json", "generation_config.json"}) {
    const std::string path = dir + "/" + name;
    auto config = read_json_if_present(path);
    if (!config) continue;
    for (int k = 0; k < 3; ++k) {
      const std::vector<int64_t> listed = id_list(*config, id_keys[k], path);
      if (!listed.empty()) *fields[k] = listed[0];
      if (k == 1) stop.insert(stop.end(), listed.begin(), listed.end());
    }
  }
  if (fs::exists(dir + "/tokenizer.json")) {
    const std::string bos = post_processor_bos(read_json(dir + "/tokenizer.json").value("post_processor", json()));
    if (!bos.empty() && tok.token_id(bos) >= 0) {
      ids.add_bos = true;
      ids.bos = tok.token_id(bos);
    }
  }
  for (const char* name : {"special_tokens_map.json", "tokenizer_config.json"}) {
    const std::string path = dir + "/" + name;
    auto config = read_json_if_present(path);
    if (!config) continue;
    for (int k = 0; k < 3; ++k) {
      const std::string text = token_text(*config, token_keys[k]);
      const int64_t id = text.empty() ? -1 : tok.token_id(text);
      if (id >= 0) *fields[k] = id;
    }
    if (config->contains("add_bos_token")) {
      const json& add = (*config)["add_bos_token"];
      if (!add.is_boolean()) throw FormatError(fmt::format("{}: add_bos_token is not true or false", path));
      ids.add_bos = add.get<bool>();
    }
  }
  if (ids.eos >= 0 && std::find(stop.begin(), stop.end(), ids.eos) == stop.end()) stop.insert(stop.begin(), ids.eos);
  // An id past the vocabulary would index past the embedding.
  const auto check = [&](int64_t id, const char* key) {
    if (id < -1 || id >= tok.vocab_size())
      throw FormatError(
          fmt::format("{}: {} is {}, outside the vocabulary of {} tokens", dir, key, id, tok.vocab_size()));
  };
  for (int k = 0; k < 3; ++k) check(*fields[k], id_keys[k]);
  for (int64_t id : stop) check(id, "eos_token_id");
  ids.stop.clear();
  for (int64_t id : stop)
    if (std::find(ids.stop.begin(), ids.stop.end(), id) == ids.stop.end()) ids.stop.push_back(id);
  if (ids.add_bos && ids.bos < 0)
    throw FormatError(fmt::format("{}: the tokenizer adds a BOS token but names none (bos_token)", dir));
  ids.bos_text = tok.token_text(ids.bos);
  ids.eos_text = tok.token_text(ids.eos);
  tok.set_special_ids(ids);
}

// vocab.json + merges.txt carry no added tokens: Hugging Face takes them from the configs
// (and GPT-2's <|endoftext|> by default), so that they are never split.
void add_config_tokens(const std::string& dir, BpeTokenizer& tok) {
  std::vector<std::string> specials = {"<|endoftext|>"};
  for (const char* name : {"special_tokens_map.json", "tokenizer_config.json"}) {
    auto config = read_json_if_present(dir + "/" + name);
    if (!config) continue;
    for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"})
      specials.push_back(token_text(*config, key));
    const json& decoder = config->value("added_tokens_decoder", json::object());
    for (const auto& [id, entry] : decoder.items()) {
      if (!entry.is_object() || !entry.contains("content") || !entry["content"].is_string())
        throw FormatError(fmt::format("{}/{}: added_tokens_decoder['{}'] has no content", dir, name, id));
      try {
        tok.add_token(entry["content"].get<std::string>(), std::stoll(id));
      } catch (const std::logic_error&) {
        throw FormatError(fmt::format("{}/{}: added_tokens_decoder key '{}' is not an id", dir, name, id));
      }
    }
  }
  for (const std::string& text : specials)
    if (!text.empty() && tok.token_id(text) >= 0) tok.add_token(text, tok.token_id(text));
}

// GPT-2's files name no special tokens: <|endoftext|> ends documents when the vocabulary has it.
SpecialIds gpt2_specials(const BpeTokenizer& tok) {
  SpecialIds ids;
  ids.eos = tok.token_id("<|endoftext|>");
  return ids;
}

constexpr const char* kMetaspace = "\u2581";  // "▁", SentencePiece's space

// model.vocab, model.merges ("a b" or ["a", "b"]) and added_tokens of a tokenizer.json.
void read_bpe_model(const json& j, const std::string& path, BpeSpec& spec) {
  const json& model = j["model"];
  if (!model.is_object() || !model.contains("vocab")) throw FormatError(fmt::format("{} has no model.vocab field", path));
  spec.vocab = read_vocab(model["vocab"], path + " model.vocab");
  if (!model.contains("merges")) throw FormatError(fmt::format("{} has no model.merges field", path));
  const json& merges = model["merges"];
  if (!merges.is_array()) throw FormatError(fmt::format("{}: model.merges is not a list", path));
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    std::pair<std::string, std::string> merge;
    const bool ok = m.is_string() ? split_merge(m.get_ref<const std::string&>(), merge)
                    : m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()
                        ? (merge = {m[0].get<std::string>(), m[1].get<std::string>()}, true)
                        : false;
    if (!ok) throw FormatError(fmt::format("{}: model.merges[{}] is not a pair of tokens", path, i));
    spec.merges.push_back(std::move(merge));
  }
  const json& added = j.value("added_tokens", json::array());
  if (!added.is_array()) throw FormatError(fmt::format("{}: added_tokens is not a list", path));
  for (size_t i = 0; i < added.size(); ++i) {
    const json& a = added[i];
    if (!a.is_object() || !a.value("id", json()).is_number_integer() || !a.value("content", json()).is_string())
      throw FormatError(fmt::format("{}: added_tokens[{}] has no integer id and string content", path, i));
    spec.added.emplace_back(a["content"].get<std::string>(), a["id"].get<int64_t>());
  }
}

BpeSpec tokenizer_json_spec(const json& j, const std::string& path) {
  const auto field = [&](const json& parent, const char* key, const char* name) -> const json& {
    if (!parent.is_object() || !parent.contains(key)) throw FormatError(fmt::format("{} has no {} field", path, name));
    return parent[key];
  };
  const json& model = field(j, "model", "model");
  const json& type = field(model, "type", "model.type");
  if (type != "BPE")
    throw FormatError(fmt::format("{}: model.type {} is not supported (BPE)", path, type.dump()));
  BpeSpec spec;
  spec.source = path;
  spec.split_digits = llama3_split_digits(j);
  if (!is_byte_level(j))
    throw FormatError(fmt::format("{}: pre_tokenizer type {} is not supported (GPT-2's ByteLevel, or Llama 3's or "
                                  "Qwen 2's Split and ByteLevel)", path, pre_tokenizer_type(j)));
  if (!j.value("normalizer", json()).is_null())
    throw FormatError(fmt::format("{}: normalizer {} is not supported (none)", path, j["normalizer"].dump().substr(0, 80)));
  if (spec.split_digits == 0 && !j["pre_tokenizer"].value("use_regex", true))
    throw FormatError(fmt::format("{}: a ByteLevel pre_tokenizer without GPT-2's regex is not supported", path));
  if (model.value("byte_fallback", false))
    throw FormatError(fmt::format("{}: model.byte_fallback is not supported (byte-level BPE has no unknown bytes)", path));
  spec.ignore_merges = model.value("ignore_merges", false);
  spec.add_prefix_space = spec.split_digits == 0 && j["pre_tokenizer"].value("add_prefix_space", false);
  read_bpe_model(j, path, spec);
  return spec;
}

// A Prepend("▁") normalizer, a Replace of " " by "▁", or a Sequence of them: which of the two
// it does. Anything else is refused by name.
void read_metaspace_normalizer(const json& n, const std::string& path, bool& prepends, bool& replaces) {
  if (n.is_null()) return;
  const std::string type = n.is_object() ? n.value("type", "") : "";
  if (type == "Sequence" && n.value("normalizers", json()).is_array()) {
    for (const json& part : n["normalizers"]) read_metaspace_normalizer(part, path, prepends, replaces);
    return;
  }
  if (type == "Prepend" && n.value("prepend", "") == kMetaspace) {
    prepends = true;
    return;
  }
  const json& pattern = n.is_object() ? n.value("pattern", json()) : json();
  if (type == "Replace" && pattern.is_object() && pattern.value("String", "") == " " && n.value("content", "") == kMetaspace) {
    replaces = true;
    return;
  }
  throw FormatError(fmt::format("{}: normalizer {} is not supported (SentencePiece-style files: Prepend \"\u2581\" and "
                                "Replace \" \" by \"\u2581\")", path, n.dump().substr(0, 80)));
}

// SentencePiece-style BPE (Llama 2's, Mistral's, Gemma's tokenizer.json): the normalizer or a
// Metaspace pre_tokenizer writes spaces as "▁", and the vocabulary is text.
MetaspaceSpec metaspace_spec(const json& j, const std::string& path) {
  MetaspaceSpec spec;
  spec.source = path;
  bool prepends = false, replaces = false;
  read_metaspace_normalizer(j.value("normalizer", json()), path, prepends, replaces);
  const json& pre = j.value("pre_tokenizer", json());
  using Prepend = MetaspaceSpec::Prepend;
  if (prepends) spec.prepend = Prepend::always;
  if (!pre.is_null()) {
    if (!pre.is_object() || pre.value("type", "") != "Metaspace" || pre.value("replacement", "") != kMetaspace)
      throw FormatError(fmt::format("{}: pre_tokenizer type {} is not supported (GPT-2's ByteLevel, Llama 3's or Qwen 2's "
                                    "Split and ByteLevel, or Metaspace)", path, pre_tokenizer_type(j)));
    replaces = true;
    const std::string scheme = pre.contains("prepend_scheme") ? pre.value("prepend_scheme", "")
                               : pre.value("add_prefix_space", true) ? "always" : "never";
    if (scheme != "always" && scheme != "first" && scheme != "never")
      throw FormatError(fmt::format("{}: pre_tokenizer.prepend_scheme '{}' is not known (always, first or never)", path, scheme));
    if (!prepends && scheme != "never") spec.prepend = scheme == "always" ? Prepend::if_missing : Prepend::first_if_missing;
    spec.split = pre.value("split", true);
  }
  if (!replaces)
    throw FormatError(fmt::format("{}: neither its normalizer nor its pre_tokenizer writes spaces as \"\u2581\": a "
                                  "pre_tokenizer type {} is not supported", path, pre_tokenizer_type(j)));
  const json& model = j["model"];
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix", "dropout"})
    if (!model.value(key, json()).is_null())
      throw FormatError(fmt::format("{}: model.{} is not supported (null)", path, key));
  if (model.value("ignore_merges", false))
    throw FormatError(fmt::format("{}: model.ignore_merges is not supported in a SentencePiece-style file", path));
  spec.byte_fallback = model.value("byte_fallback", false);
  spec.fuse_unk = model.value("fuse_unk", false);
  const json& unk = model.value("unk_token", json());
  if (!unk.is_null() && !unk.is_string()) throw FormatError(fmt::format("{}: model.unk_token is not a string", path));
  if (unk.is_string()) spec.unk = unk.get<std::string>();
  BpeSpec parts;
  read_bpe_model(j, path, parts);
  spec.vocab = std::move(parts.vocab);
  spec.merges = std::move(parts.merges);
  spec.added = std::move(parts.added);
  return spec;
}

}  // namespace

BpeSpec read_vocab_merges(const std::string& vocab_path, const std::string& merges_path) {
  return parse_vocab_merges(read_file(vocab_path), read_file(merges_path), vocab_path, merges_path);
}

BpeSpec parse_vocab_merges(const std::string& vocab_text, const std::string& merges_text,
                           const std::string& vocab_path, const std::string& merges_path) {
  BpeSpec spec;
  spec.source = fmt::format("{} and {}", vocab_path, merges_path);
  spec.vocab = read_vocab(parse_json(vocab_text, vocab_path), vocab_path);
  std::istringstream lines(merges_text);
  std::string line;
  for (int n = 1; std::getline(lines, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (n == 1 && line.rfind("#version", 0) == 0)) continue;
    std::pair<std::string, std::string> merge;
    if (!split_merge(line, merge))
      throw FormatError(fmt::format("{} line {} is not two tokens separated by a space", merges_path, n));
    spec.merges.push_back(std::move(merge));
  }
  return spec;
}

BpeSpec read_tokenizer_json(const std::string& path) { return parse_tokenizer_json(read_file(path), path); }

BpeSpec parse_tokenizer_json(const std::string& text, const std::string& path) {
  try {
    return tokenizer_json_spec(parse_json(text, path), path);
  } catch (const json::exception& e) {  // a field of the wrong type
    throw FormatError(fmt::format("{} does not hold a tokenizer ({})", path, e.what()));
  }
}

MetaspaceSpec read_metaspace_json(const std::string& path) { return parse_metaspace_json(read_file(path), path); }

MetaspaceSpec parse_metaspace_json(const std::string& text, const std::string& path) {
  const json j = parse_json(text, path);
  try {
    if (!j.is_object() || !j.value("model", json()).is_object() || j["model"].value("type", json()) != "BPE")
      throw FormatError(fmt::format("{}: model.type {} is not supported (BPE)", path,
                                    j.is_object() ? j.value("model", json()).value("type", json()).dump() : "null"));
    return metaspace_spec(j, path);
  } catch (const json::exception& e) {  // a field of the wrong type
    throw FormatError(fmt::format("{} does not hold a tokenizer ({})", path, e.what()));
  }
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir) {
  const auto has = [&](const char* name) { return fs::exists(dir + "/" + name); };
  const std::string json_path = dir + "/tokenizer.json", sp_path = dir + "/tokenizer.model";
  // a SentencePiece-style tokenizer.json gives way to the tokenizer.model beside it (Llama 2
  // folders hold both): libsentencepiece is the reference for it
  const bool byte_level = has("tokenizer.json") && is_byte_level(read_json(json_path));
  if (byte_level) {
    auto tok = std::make_unique<BpeTokenizer>(read_tokenizer_json(json_path));
    tok->set_special_ids(gpt2_specials(*tok));
    resolve_special_ids(dir, *tok);
    return tok;
  }
  if (has("tokenizer.json") && !has("tokenizer.model")) {
    auto tok = std::make_unique<MetaspaceBpeTokenizer>(read_metaspace_json(json_path));
    resolve_special_ids(dir, *tok);
    return tok;
  }
  if (has("tokenizer.model")) {
    auto tok = std::make_unique<SentencePieceTokenizer>(sp_path);
    resolve_special_ids(dir, *tok);
    return tok;
  }
  if (has("vocab.json") && has("merges.txt")) {
    auto tok = std::make_unique<BpeTokenizer>(read_vocab_merges(dir + "/vocab.json", dir + "/merges.txt"));
    add_config_tokens(dir, *tok);
    tok->set_special_ids(gpt2_specials(*tok));
    resolve_special_ids(dir, *tok);
    return tok;
  }
  throw FormatError(fmt::format("{} holds no tokenizer (tokenizer.json, vocab.json and merges.txt, or tokenizer.model)", dir));
}

}  // namespace bb
