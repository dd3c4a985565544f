// Parses the tokens of a chat template into its syntax tree, with Jinja's grammar and
// operator precedence. Statements: if/elif/else, for (with else, `if` filtering and tuple
// targets), set (value, block, namespace attribute), macro, call, filter, generation, break,
// continue. Others (include, extends, block, raw, ...) are an error naming them.
#pragma once
#include <string>
#include <vector>

#include "data/jinja_ast.h"
#include "data/jinja_lexer.h"

namespace bb::jinja {

// Throws FormatError "chat template <source_name>: line N: ..." on a syntax error, an unknown
// filter or test, or a block that is never closed.
Body parse(const std::vector<Token>& tokens, const std::string& source_name);

}  // namespace bb::jinja
