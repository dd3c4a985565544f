// Hugging Face chat templates (the Jinja text in tokenizer_config.json's "chat_template" or in
// chat_template.jinja), rendered as Transformers renders them: trim_blocks and lstrip_blocks
// on, loop controls, raise_exception and strftime_now, tojson as json.dumps(ensure_ascii=False).
// The language is the subset chat templates use: expressions with Python's meaning, the
// filters, tests and methods of jinja_builtins.h, and the statements of jinja_parser.h.
// Not supported (an error naming them): include/import/extends/block/raw/with/do, recursive
// loops, '*'/'**' argument unpacking, '%' string formatting, format specs in str.format;
// case mapping (upper, lower, title) is ASCII only.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "data/jinja_error.h"

namespace bb {

namespace jinja {
struct Stmt;
}

struct ChatRender {
  std::string text;
  // Byte ranges [begin, end) of `text` written inside {% generation %} blocks: the assistant's
  // tokens, the only ones to train on when the loss is masked to them.
  std::vector<std::pair<size_t, size_t>> generation_spans;
};

// A parsed template, to render many conversations. Construction throws FormatError "chat
// template <source_name>: line N: ..." on a syntax error or an unsupported construct; render
// throws FormatError for an error at run time and ChatTemplateRaised for raise_exception.
class ChatTemplate {
 public:
  ChatTemplate(const std::string& template_text, std::string source_name);

  // The context's keys are the template's variables (messages, add_generation_prompt,
  // bos_token, tools, ...). Use ordered_json to keep the key order of dicts that the
  // template prints with tojson (nlohmann::json sorts keys).
  ChatRender render(const nlohmann::ordered_json& context) const;
  ChatRender render(const nlohmann::json& context) const;

  const std::string& source_name() const { return source_; }

 private:
  std::string source_;
  std::shared_ptr<const std::vector<std::unique_ptr<jinja::Stmt>>> body_;
};

std::string render_chat_template(const std::string& template_text, const nlohmann::json& context,
                                 const std::string& source_name);
std::string render_chat_template(const std::string& template_text, const nlohmann::ordered_json& context,
                                 const std::string& source_name);

// The template text of a tokenizer_config.json "chat_template" value: the string itself, or,
// from a list of {"name", "template"} objects, the one called `name`. Throws FormatError
// naming source_name when there is none of that name or the value has another shape.
std::string select_chat_template(const nlohmann::json& chat_template, const std::string& name,
                                 const std::string& source_name);

}  // namespace bb
