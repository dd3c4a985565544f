// The dynamic values chat templates compute with, with Python's meaning as Jinja gives it in
// Transformers: undefined, none, bool, int, float, string (UTF-8), list, dict (string keys,
// insertion order), namespace (a mutable dict, for {% set ns.x = ... %}) and callables.
// Lists, dicts and namespaces are shared by reference, as in Python.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace bb::jinja {

class Value;
using List = std::vector<Value>;

// String keys in insertion order (Python dicts keep it; chat templates print tools with tojson).
class Dict {
 public:
  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value value);
  const std::vector<std::pair<std::string, Value>>& items() const { return items_; }
  size_t size() const;  // defined after Value: clang instantiates the vector's size() here

 private:
  std::vector<std::pair<std::string, Value>> items_;
};

// The arguments of one call: positional ones, then keyword ones in the order written.
struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
  // The body of a {% call %} block, passed to the macro it calls as `caller`.
  std::shared_ptr<const Value> caller;

  // The argument at `index`, else the keyword argument `name`, else nullptr.
  const Value* get(size_t index, std::string_view name) const;
  // Throws EvalError unless every keyword is one of `names` and at most names.size() are given.
  void check(std::string_view what, std::initializer_list<std::string_view> names) const;
};

using Function = std::function<Value(CallArgs&)>;

struct Undefined {};
struct None {};
struct Namespace {
  std::shared_ptr<Dict> dict;
};

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kFunction };

  Value() = default;
  Value(None) : v_(None{}) {}
  Value(bool b) : v_(b) {}
  Value(int i) : v_(int64_t{i}) {}
  Value(int64_t i) : v_(i) {}
  Value(double f) : v_(f) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(List l) : v_(std::make_shared<const List>(std::move(l))) {}
  Value(Dict d) : v_(std::make_shared<const Dict>(std::move(d))) {}
  Value(Namespace n) : v_(std::move(n)) {}
  Value(Function f) : v_(std::make_shared<const Function>(std::move(f))) {}

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  bool is_number() const { return is_int() || is_float() || is_bool(); }  // bool is an int in Python
  bool is_string() const { return kind() == Kind::kString; }
  bool is_list() const { return kind() == Kind::kList; }
  bool is_dict() const { return kind() == Kind::kDict; }
  bool is_namespace() const { return kind() == Kind::kNamespace; }
  bool is_function() const { return kind() == Kind::kFunction; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const;  // ints and bools
  double as_float() const;  // any number
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const List& as_list() const { return *std::get<std::shared_ptr<const List>>(v_); }
  const Dict& as_dict() const;  // dicts and namespaces
  Dict& namespace_dict() const { return *std::get<Namespace>(v_).dict; }
  const Function& as_function() const { return *std::get<std::shared_ptr<const Function>>(v_); }
  // The shared object behind a list, dict, namespace or function (for `is sameas`).
  const void* identity() const;

  // Python's bool(value); undefined is false.
  bool truthy() const;

 private:
  std::variant<Undefined, None, bool, int64_t, double, std::string, std::shared_ptr<const List>,
               std::shared_ptr<const Dict>, Namespace, std::shared_ptr<const Function>>
      v_;
};

inline size_t Dict::size() const { return items_.size(); }

// "undefined", "none", "boolean", "integer", ...: how messages name a value's type.
std::string type_name(const Value& v);
// The same with an article, for sentences: "an integer", "a string", "none", "an undefined value".
std::string describe(const Value& v);

// str(value) as Jinja prints it: undefined -> "", none -> "None", True, 1.5, [1, 'a'], {'k': 1}.
std::string to_output(const Value& v);
// repr(value): strings quoted as Python quotes them.
std::string repr(const Value& v);
// Python's repr of a float: the shortest text that reads back, with ".0" on whole numbers.
std::string format_float(double f);

struct JsonOptions {
  std::optional<int> indent;     // None: one line
  std::string item_separator;    // default ", " on one line, "," when indented
  std::string key_separator = ": ";
  bool sort_keys = false;
  bool ensure_ascii = false;
};
// json.dumps(value, ensure_ascii=False, ...) as Transformers' tojson filter calls it.
std::string to_json(const Value& v, const JsonOptions& options);

// Python's ==, and <, for the pairs it orders (numbers, strings, lists); EvalError otherwise.
bool equals(const Value& a, const Value& b);
bool less(const Value& a, const Value& b);

Value from_json(const nlohmann::json& j);
Value from_json(const nlohmann::ordered_json& j);

// UTF-8 helpers: strings are indexed, sliced and measured in code points, as in Python.
// next_code_point decodes the one at `pos` and moves past it (a stray byte stands for itself).
uint32_t next_code_point(const std::string& s, size_t& pos);
std::vector<std::string> code_points(const std::string& s);
size_t code_point_count(const std::string& s);
bool is_space_code_point(uint32_t c);  // Python's str.isspace for one code point
// Python's str.strip / lstrip / rstrip with no argument (Unicode white space).
std::string strip_spaces(const std::string& s, bool left, bool right);

}  // namespace bb::jinja
