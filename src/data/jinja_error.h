// Errors of the chat-template engine (data/jinja*). Every message is one sentence naming the
// template, the line and the construct: "chat template mistral.jinja: line 3: unknown filter
// 'foo'". Value operations and builtins know the construct but not the line; they throw
// EvalError, which the interpreter turns into a FormatError carrying both.
#pragma once
#include <stdexcept>
#include <string>

#include "core/error.h"

namespace bb {

// What the template itself raised with raise_exception(msg); the text contains msg.
struct ChatTemplateRaised : FormatError {
  using FormatError::FormatError;
};

namespace jinja {

struct EvalError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws FormatError "chat template <source>: line <line>: <what>".
[[noreturn]] void fail(const std::string& source, int line, const std::string& what);

}  // namespace jinja
}  // namespace bb
