// Chat templates in the data path: which one a model uses, the trained byte ranges of a
// rendered conversation, and its token ids with their loss mask.
#include "data/chat_format.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace bb {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

TrainOn parse_train_on(const std::string& text) {
  if (text == "assistant") return TrainOn::Assistant;
  if (text == "all") return TrainOn::All;
  throw ConfigError(fmt::format("data.train_on '{}' is not known (assistant: the assistant's turns; all: every turn)", text));
}

namespace {

std::string read_file(const std::string& path, const char* what) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))  // a folder reads as empty text and a FIFO blocks
    throw FormatError(fmt::format("{} {} does not exist or is not a regular file", what, path));
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  if (!in) throw FormatError(fmt::format("cannot read {} {}", what, path));
  return s.str();
}

std::string read_template_file(const std::string& path) { return read_file(path, "chat template"); }

ChatFormat from_text(const std::string& text, const std::string& source) {
  return {std::make_shared<const ChatTemplate>(text, source), source};
}

}  // namespace

ChatFormat load_chat_format(const std::string& dir, const std::string& override_path) {
  if (!override_path.empty()) return from_text(read_template_file(override_path), override_path);
  const ChatFormat builtin{nullptr, "bigbatch's own (<|role|> lines; the model has no chat template)"};
  if (dir.empty()) return builtin;
  // Transformers writes chat_template.jinja beside tokenizer_config.json and reads it first.
  const std::string jinja_path = (fs::path(dir) / "chat_template.jinja").string();
  if (fs::exists(jinja_path)) return from_text(read_template_file(jinja_path), jinja_path);
  const std::string config_path = (fs::path(dir) / "tokenizer_config.json").string();
  if (!fs::exists(config_path)) return builtin;
  const nlohmann::json config = nlohmann::json::parse(read_file(config_path, "tokenizer config"), nullptr, false);
  if (config.is_discarded() || !config.is_object())
    throw FormatError(fmt::format("{} does not hold a JSON object", config_path));
  const auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return builtin;
  const std::string source = config_path + " (chat_template)";
  return from_text(select_chat_template(*it, "default", source), source);
}

namespace {

ordered_json template_context(const ordered_json& line, const ordered_json& messages, bool generation_prompt,
                              const SpecialIds& special) {
  ordered_json ctx = ordered_json::object();
  for (const auto& [key, value] : line.items())
    if (key != "messages") ctx[key] = value;
  ctx["messages"] = messages;
  ctx["add_generation_prompt"] = generation_prompt;
  ctx["bos_token"] = special.bos_text;
  ctx["eos_token"] = special.eos_text;
  return ctx;
}

ordered_json first(const ordered_json& messages, size_t n) {
  ordered_json out = ordered_json::array();
  for (size_t i = 0; i < n; ++i) out.push_back(messages[i]);
  return out;
}

// Each assistant turn is found from two renderings: the conversation before it with the
// generation prompt, which must begin the whole text, and the conversation up to and
// including it, which shares the turn with the whole text. The turn runs from the end of the
// first to where the second and the whole part (a template may close the text after the last
// message, as Phi-3 writes its eos_token there).
std::vector<std::pair<size_t, size_t>> spans_by_rendering(const ChatTemplate& tmpl, const ordered_json& line,
                                                          const std::string& whole, const SpecialIds& special,
                                                          const std::string& where) {
  const ordered_json& messages = line["messages"];
  std::vector<std::pair<size_t, size_t>> spans;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].value("role", "") != "assistant") continue;
    const std::string before = tmpl.render(template_context(line, first(messages, i), true, special)).text;
    const std::string upto = tmpl.render(template_context(line, first(messages, i + 1), false, special)).text;
    const size_t shared = static_cast<size_t>(
        std::mismatch(upto.begin(), upto.end(), whole.begin(), whole.end()).first - upto.begin());
    if (whole.compare(0, before.size(), before) != 0 || shared < before.size())
      throw FormatError(fmt::format(
          "{}: chat template {} renders the conversation before messages[{}] differently from the whole, so the "
          "assistant's turn cannot be found; mark it with {{% generation %}} in the template or set data.train_on=all",
          where, tmpl.source_name(), i));
    if (shared > before.size()) spans.emplace_back(before.size(), shared);
  }
  return spans;
}

}  // namespace

RenderedChat render_chat_for_training(const ChatTemplate& tmpl, const ordered_json& line, const SpecialIds& special,
                                      TrainOn train_on, const std::string& where) {
  const ordered_json& messages = line["messages"];
  const bool has_assistant = std::any_of(messages.begin(), messages.end(),
                                         [](const ordered_json& m) { return m.value("role", "") == "assistant"; });
  if (train_on == TrainOn::Assistant && !has_assistant)
    throw FormatError(fmt::format("{}: field 'messages' has no assistant message to learn", where));
  ChatRender whole;
  try {
    whole = tmpl.render(template_context(line, messages, false, special));
  } catch (const ChatTemplateRaised& e) {
    throw FormatError(fmt::format("{}: the chat template rejects the messages: {}", where, e.what()));
  }
  RenderedChat out;
  out.text = std::move(whole.text);
  if (train_on == TrainOn::All) out.trained = {{0, out.text.size()}};
  else if (!whole.generation_spans.empty()) out.trained = whole.generation_spans;
  else out.trained = spans_by_rendering(tmpl, line, out.text, special, where);
  if (out.trained.empty())
    throw FormatError(fmt::format("{}: chat template {} renders no text for the assistant's turns", where,
                                  tmpl.source_name()));
  return out;
}

std::string render_chat_prompt(const ChatFormat& format, const ordered_json& messages, const SpecialIds& special) {
  if (format.tmpl) return format.tmpl->render(template_context(ordered_json::object(), messages, true, special)).text;
  std::string text;
  for (const ordered_json& m : messages)
    text += "<|" + m.value("role", "user") + "|>\n" + m.value("content", "") + "\n";
  return text + "<|assistant|>\n";
}

TrainedIds tokenize_rendered(const RenderedChat& chat, const Tokenizer& tok) {
  std::vector<size_t> starts;
  TrainedIds out;
  const std::vector<int64_t> ids = tok.encode_with_starts(chat.text, starts);
  const SpecialIds& special = tok.special();
  if (special.add_bos && (ids.empty() || ids[0] != special.bos)) {
    out.ids.push_back(special.bos);
    out.trained.push_back(0);
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    // Whole tokens only: a range found by rendering may end inside the next message's first
    // token (Phi-3's closing "<|endoftext|>" and the next "<|user|>" share "<|").
    const size_t end = i + 1 < ids.size() ? std::max(starts[i], starts[i + 1]) : chat.text.size();
    const bool in_span = std::any_of(chat.trained.begin(), chat.trained.end(), [&](const auto& s) {
      return starts[i] >= s.first && starts[i] < s.second && end <= s.second;
    });
    out.ids.push_back(ids[i]);
    out.trained.push_back(in_span ? 1 : 0);
  }
  return out;
}

}  // namespace bb
