// Splits a chat template into text and the tokens of its tags: {{ expr }}, {% stmt %} and
// {# comment #} (dropped), with Jinja's white-space control: '-' inside a tag strips the white
// space on that side, and trim_blocks / lstrip_blocks (on for chat templates, as Transformers
// sets them) drop the newline after a block tag and the indentation before one.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace bb::jinja {

enum class TokenKind {
  kText,        // template text between tags, white-space control already applied
  kExprBegin,   // {{
  kExprEnd,     // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,
  kString,      // text holds the value, escapes resolved
  kInt,
  kFloat,
  kOperator,    // text holds it: + - * / // % ** ~ == != < > <= >= = ( ) [ ] { } , . : |
  kEnd,         // end of the template
};

struct Token {
  TokenKind kind;
  std::string text;
  int line = 1;  // 1-based line of the template where the token starts
  int64_t int_value = 0;
  double float_value = 0;
};

struct LexOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
};

// Throws FormatError naming source_name and the line for an unterminated tag, comment or
// string, or a character no token starts with.
std::vector<Token> lex(const std::string& template_text, const std::string& source_name, const LexOptions& options = {});

}  // namespace bb::jinja
