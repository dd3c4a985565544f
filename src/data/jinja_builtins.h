// What chat templates call: filters (x | trim), tests (x is defined), methods of strings and
// dicts (s.strip(), d.items()), attribute, item and slice access, and the globals (range,
// namespace, dict, raise_exception, strftime_now). Semantics are Python's and Jinja's as
// Transformers runs them; errors are EvalError, given a line by the interpreter.
#pragma once
#include <string>
#include <string_view>

#include "data/jinja_error.h"
#include "data/jinja_value.h"

namespace bb::jinja {

// raise_exception(msg) in a template: the interpreter turns it into ChatTemplateRaised.
struct RaisedByTemplate : EvalError {
  using EvalError::EvalError;
};

bool has_filter(std::string_view name);
bool has_test(std::string_view name);
Value apply_filter(const std::string& name, const Value& operand, const CallArgs& args);
bool apply_test(const std::string& name, const Value& operand, const CallArgs& args);

// obj.name: a dict's key, else a method of the string, list or dict bound to it, else
// undefined. An undefined object throws (Jinja's default Undefined does the same).
Value get_attribute(const Value& object, const std::string& name);
// obj[key]: list and string indices (negative from the end), dict keys; undefined if absent.
Value get_item(const Value& object, const Value& key);
// obj[start:stop:step] on a list or string, each bound undefined when omitted.
Value get_slice(const Value& object, const Value& start, const Value& stop, const Value& step);

// `item in container`: a substring of a string, an element of a list, a key of a dict; false
// for an undefined container.
bool contains(const Value& container, const Value& item);

// The items a for loop visits: a list's elements, a dict's keys, a string's characters;
// nothing for undefined.
List iterate(const Value& v);

// The globals every template sees, below the caller's context.
const Dict& globals();

// Shared by filters and methods: Python's str.strip(chars) family, and str.split.
std::string strip_chars(const std::string& s, const Value* chars, bool left, bool right);
Value split_string(const std::string& s, const Value* sep, const Value* maxsplit);

}  // namespace bb::jinja
