// The chat-template lexer. Newlines are normalised to \n and one trailing newline is dropped,
// as Jinja does (keep_trailing_newline=False); tags nest brackets, so '}}' inside a dict
// literal does not end an expression.
#include "data/jinja_lexer.h"

#include <fmt/format.h>

#include <cstring>

#include "data/jinja_error.h"
#include "data/jinja_value.h"

namespace bb::jinja {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

std::string normalise_newlines(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      out += '\n';
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      out += text[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

void append_utf8(std::string& out, uint32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xc0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3f));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xe0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (c & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (c & 0x3f));
  }
}

class Lexer {
 public:
  Lexer(const std::string& text, const std::string& source, const LexOptions& options)
      : src_(normalise_newlines(text)), source_(source), options_(options) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      const size_t tag = find_tag(pos_);
      lex_text(tag);
      if (tag == std::string::npos) break;
      lex_tag(tag);
    }
    tokens_.push_back({TokenKind::kEnd, "", line_});
    return std::move(tokens_);
  }

 private:
  // The next "{{", "{%" or "{#" at or after `from`.
  size_t find_tag(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && std::strchr("{%#", src_[i + 1]) != nullptr) return i;
    }
    return std::string::npos;
  }

  void advance_to(size_t to) {
    for (; pos_ < to; ++pos_)
      if (src_[pos_] == '\n') ++line_;
  }

  // The text from pos_ up to the tag at `tag` (or the end), after the white-space control of
  // the tag before it (strip_next_) and of the tag after it.
  void lex_text(size_t tag) {
    const size_t end = tag == std::string::npos ? src_.size() : tag;
    std::string text = src_.substr(pos_, end - pos_);
    const int line = line_;
    if (strip_next_) {
      text = strip_spaces(text, true, false);
    } else if (trim_next_newline_ && !text.empty() && text[0] == '\n') {
      text.erase(0, 1);
    }
    strip_next_ = trim_next_newline_ = false;
    if (tag != std::string::npos) {
      const char kind = src_[tag + 1];
      const char modifier = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
      if (modifier == '-') {
        text = strip_spaces(text, false, true);
      } else if (options_.lstrip_blocks && kind != '{' && modifier != '+' && at_line_start(tag)) {
        while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.pop_back();
      }
    }
    if (!text.empty()) tokens_.push_back({TokenKind::kText, std::move(text), line});
    advance_to(end);
  }

  // Whether only spaces and tabs stand between the start of its line and position `tag`.
  bool at_line_start(size_t tag) const {
    size_t i = tag;
    while (i > 0 && (src_[i - 1] == ' ' || src_[i - 1] == '\t')) --i;
    return i == 0 || src_[i - 1] == '\n';
  }

  void lex_tag(size_t tag) {
    const char kind = src_[tag + 1];
    const int open_line = line_;
    size_t body = tag + 2;
    if (body < src_.size() && (src_[body] == '-' || (src_[body] == '+' && kind != '{'))) ++body;
    if (kind == '#') {
      const size_t close = src_.find("#}", body);
      if (close == std::string::npos) fail(source_, open_line, "the comment '{#' is never closed with '#}'");
      strip_next_ = close > body && src_[close - 1] == '-';
      trim_next_newline_ = options_.trim_blocks && !(close > body && src_[close - 1] == '+');
      advance_to(close + 2);
      return;
    }
    const bool block = kind == '%';
    tokens_.push_back({block ? TokenKind::kBlockBegin : TokenKind::kExprBegin, block ? "{%" : "{{", open_line});
    advance_to(body);
    int depth = 0;  // open brackets
    while (true) {
      while (pos_ < src_.size() && std::strchr(" \t\n\v\f", src_[pos_]) != nullptr) advance_to(pos_ + 1);
      if (pos_ >= src_.size()) {
        fail(source_, open_line, block ? "the block tag '{%' is never closed with '%}'"
                                       : "the expression '{{' is never closed with '}}'");
      }
      if (depth == 0 && close_tag(block)) return;
      lex_code_token(depth);
    }
  }

  // Consumes the closing "}}" or "%}" (with its '-' or '+') when it is at pos_.
  bool close_tag(bool block) {
    const char* close = block ? "%}" : "}}";
    const char modifier = src_[pos_];
    const bool modified = (modifier == '-' || (modifier == '+' && block)) && src_.compare(pos_ + 1, 2, close) == 0;
    if (!modified && src_.compare(pos_, 2, close) != 0) return false;
    tokens_.push_back({block ? TokenKind::kBlockEnd : TokenKind::kExprEnd, close, line_});
    advance_to(pos_ + (modified ? 3 : 2));
    strip_next_ = modified && modifier == '-';
    trim_next_newline_ = block && options_.trim_blocks && !(modified && modifier == '+');
    return true;
  }

  void lex_code_token(int& depth) {
    const char c = src_[pos_];
    const int line = line_;
    if (is_name_start(c)) {
      size_t end = pos_;
      while (end < src_.size() && is_name_char(src_[end])) ++end;
      tokens_.push_back({TokenKind::kName, src_.substr(pos_, end - pos_), line});
      advance_to(end);
    } else if (is_digit(c)) {
      lex_number();
    } else if (c == '\'' || c == '"') {
      lex_string(c);
    } else {
      static const char* const kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
      for (const char* op : kTwo) {
        if (src_.compare(pos_, 2, op) == 0) {
          tokens_.push_back({TokenKind::kOperator, op, line});
          advance_to(pos_ + 2);
          return;
        }
      }
      if (c == '\0' || std::strchr("+-*/%~<>=()[]{},.:|", c) == nullptr) {
        size_t end = pos_;
        next_code_point(src_, end);
        fail(source_, line, fmt::format("unexpected character '{}' in a tag", src_.substr(pos_, end - pos_)));
      }
      if (c == '(' || c == '[' || c == '{') ++depth;
      if ((c == ')' || c == ']' || c == '}') && depth > 0) --depth;
      tokens_.push_back({TokenKind::kOperator, std::string(1, c), line});
      advance_to(pos_ + 1);
    }
  }

  // Digits with '_' separators, then a fraction (not after '.', so `x.0.1` is two lookups)
  // and an exponent make a float.
  void lex_number() {
    const auto digits = [&](size_t i) {
      while (i < src_.size() && (is_digit(src_[i]) || (src_[i] == '_' && i + 1 < src_.size() && is_digit(src_[i + 1])))) ++i;
      return i;
    };
    size_t end = digits(pos_);
    bool is_float = false;
    const bool after_dot = !tokens_.empty() && tokens_.back().kind == TokenKind::kOperator && tokens_.back().text == ".";
    if (!after_dot && end + 1 < src_.size() && src_[end] == '.' && is_digit(src_[end + 1])) {
      end = digits(end + 1);
      is_float = true;
    }
    if (!after_dot && end < src_.size() && (src_[end] == 'e' || src_[end] == 'E')) {
      size_t e = end + 1;
      if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
      if (e < src_.size() && is_digit(src_[e])) {
        end = digits(e);
        is_float = true;
      }
    }
    std::string text;
    for (size_t i = pos_; i < end; ++i)
      if (src_[i] != '_') text += src_[i];
    Token t{is_float ? TokenKind::kFloat : TokenKind::kInt, text, line_};
    try {
      if (is_float) {
        t.float_value = std::stod(text);
      } else {
        t.int_value = std::stoll(text);
      }
    } catch (const std::out_of_range&) {
      fail(source_, line_, fmt::format("the number {} is too large", text));
    }
    tokens_.push_back(std::move(t));
    advance_to(end);
  }

  // A quoted string with Python's escapes; an unknown escape keeps its backslash, as Python does.
  void lex_string(char quote) {
    const int line = line_;
    std::string value;
    size_t i = pos_ + 1;
    while (true) {
      if (i >= src_.size()) fail(source_, line, fmt::format("a string opened with {} is never closed", quote));
      const char c = src_[i];
      if (c == quote) break;
      if (c != '\\' || i + 1 >= src_.size()) {
        value += c;
        ++i;
        continue;
      }
      const char e = src_[i + 1];
      i += 2;
      switch (e) {
        case 'n': value += '\n'; break;
        case 't': value += '\t'; break;
        case 'r': value += '\r'; break;
        case 'b': value += '\b'; break;
        case 'f': value += '\f'; break;
        case 'v': value += '\v'; break;
        case 'a': value += '\a'; break;
        case '0': value += '\0'; break;
        case '\\': value += '\\'; break;
        case '\'': value += '\''; break;
        case '"': value += '"'; break;
        case '\n': break;  // a backslash at the end of a line joins the lines
        case 'x':
        case 'u':
        case 'U': {
          const size_t len = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          const std::string hex = src_.substr(i, len);
          if (hex.size() != len || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
            fail(source_, line_, fmt::format("the escape \\{}{} in a string is not {} hexadecimal digits", e, hex, len));
          }
          const auto code = static_cast<uint32_t>(std::stoul(hex, nullptr, 16));
          if (code > 0x10ffff) fail(source_, line_, fmt::format("the escape \\{}{} is beyond Unicode", e, hex));
          append_utf8(value, code);
          i += len;
          break;
        }
        default:
          value += '\\';
          value += e;
      }
    }
    tokens_.push_back({TokenKind::kString, std::move(value), line});
    advance_to(i + 1);
  }

  const std::string src_;
  const std::string& source_;
  const LexOptions options_;
  size_t pos_ = 0;
  int line_ = 1;
  bool strip_next_ = false;         // a '-' closed the last tag: strip the text's leading space
  bool trim_next_newline_ = false;  // trim_blocks after a block tag or comment
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> lex(const std::string& template_text, const std::string& source_name, const LexOptions& options) {
  return Lexer(template_text, source_name, options).run();
}

}  // namespace bb::jinja
