// Renders a parsed chat template against a context: scopes as Jinja has them (a for loop and
// a macro have their own; if does not), loops with `loop`, macros and call blocks, and the
// byte spans of what {% generation %} blocks wrote.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "data/jinja_ast.h"
#include "data/jinja_value.h"

namespace bb::jinja {

struct RenderOutput {
  std::string text;
  std::vector<std::pair<size_t, size_t>> generation_spans;  // [begin, end) byte offsets in text
};

// `context` must be a dict (its keys are the template's variables). Throws FormatError
// naming source_name and the line; ChatTemplateRaised for raise_exception.
RenderOutput render(const Body& body, const Value& context, const std::string& source_name);

}  // namespace bb::jinja
