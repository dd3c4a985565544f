// The chat-template entry points: parse once (lexer, parser), render per conversation
// (interpreter), and pick the template out of tokenizer_config.json's "chat_template".
#include "data/jinja.h"

#include <fmt/format.h>

#include "data/jinja_interpreter.h"
#include "data/jinja_lexer.h"
#include "data/jinja_parser.h"

namespace bb {
namespace jinja {

void fail(const std::string& source, int line, const std::string& what) {
  throw FormatError(fmt::format("chat template {}: line {}: {}", source, line, what));
}

}  // namespace jinja

namespace {

template <class Json>
ChatRender render_with(const std::vector<std::unique_ptr<jinja::Stmt>>& body, const Json& context,
                       const std::string& source) {
  if (!context.is_object()) {
    throw FormatError(fmt::format("chat template {}: the context must be a JSON object of variables, not {}", source,
                                  context.type_name()));
  }
  jinja::Value values;
  try {
    values = jinja::from_json(context);
  } catch (const jinja::EvalError& e) {
    throw FormatError(fmt::format("chat template {}: {}", source, e.what()));
  }
  jinja::RenderOutput out = jinja::render(body, values, source);
  return ChatRender{std::move(out.text), std::move(out.generation_spans)};
}

}  // namespace

ChatTemplate::ChatTemplate(const std::string& template_text, std::string source_name)
    : source_(std::move(source_name)),
      body_(std::make_shared<const jinja::Body>(jinja::parse(jinja::lex(template_text, source_), source_))) {}

ChatRender ChatTemplate::render(const nlohmann::ordered_json& context) const { return render_with(*body_, context, source_); }

ChatRender ChatTemplate::render(const nlohmann::json& context) const { return render_with(*body_, context, source_); }

std::string render_chat_template(const std::string& template_text, const nlohmann::json& context,
                                 const std::string& source_name) {
  return ChatTemplate(template_text, source_name).render(context).text;
}

std::string render_chat_template(const std::string& template_text, const nlohmann::ordered_json& context,
                                 const std::string& source_name) {
  return ChatTemplate(template_text, source_name).render(context).text;
}

std::string select_chat_template(const nlohmann::json& chat_template, const std::string& name,
                                 const std::string& source_name) {
  if (chat_template.is_string()) return chat_template.get<std::string>();
  if (!chat_template.is_array()) {
    throw FormatError(fmt::format("{}: chat_template must be a string or a list of {{\"name\", \"template\"}} objects, not {}",
                                  source_name, chat_template.type_name()));
  }
  std::vector<std::string> names;
  for (const auto& entry : chat_template) {
    if (!entry.is_object() || !entry.contains("name") || !entry.contains("template") || !entry["name"].is_string() ||
        !entry["template"].is_string()) {
      throw FormatError(fmt::format("{}: each chat_template entry must be an object with string \"name\" and \"template\"",
                                    source_name));
    }
    if (entry["name"] == name) return entry["template"].get<std::string>();
    names.push_back(entry["name"].get<std::string>());
  }
  throw FormatError(fmt::format("{}: chat_template has no template named '{}' (it has: {})", source_name, name,
                                fmt::join(names, ", ")));
}

}  // namespace bb
