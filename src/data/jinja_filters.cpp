// The filters of the chat-template engine, as Jinja defines them (tojson as Transformers
// overrides it: json.dumps with ensure_ascii=False). Unknown filters are refused by the parser.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "data/jinja_builtins.h"  // the filters' declarations (has_filter, apply_filter) live there

namespace bb::jinja {
namespace {

using FilterFn = Value (*)(const Value&, const CallArgs&);

char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; }
char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

bool flag(const CallArgs& a, size_t index, std::string_view name, bool fallback) {
  const Value* v = a.get(index, name);
  return v ? v->truthy() : fallback;
}

std::string transform(const Value& v, char (*f)(char)) {
  std::string s = to_output(v);
  std::transform(s.begin(), s.end(), s.begin(), f);
  return s;
}

// item.a.b or item.0, as Jinja's attribute= arguments read it.
Value attribute_path(const Value& item, const std::string& path) {
  Value v = item;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t dot = std::min(path.find('.', start), path.size());
    const std::string part = path.substr(start, dot - start);
    if (v.is_undefined()) return v;
    const bool index = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    v = get_item(v, index ? Value(static_cast<int64_t>(std::stoll(part))) : Value(part));
    start = dot + 1;
  }
  return v;
}

const std::string* attribute_arg(const CallArgs& a, size_t index) {
  const Value* v = a.get(index, "attribute");
  if (!v || v->is_none()) return nullptr;
  if (!v->is_string()) throw EvalError("the argument 'attribute' must be a string");
  return &v->as_string();
}

// The sort key of Jinja's sort, unique and dictsort: strings folded to lower case unless
// case_sensitive.
Value sort_key(const Value& v, bool case_sensitive) {
  return !case_sensitive && v.is_string() ? Value(transform(v, ascii_lower)) : v;
}

Value f_default(const Value& v, const CallArgs& a) {
  a.check("default", {"default_value", "boolean"});
  const Value* fallback = a.get(0, "default_value");
  if (v.is_undefined() || (flag(a, 1, "boolean", false) && !v.truthy())) return fallback ? *fallback : Value("");
  return v;
}

Value f_length(const Value& v, const CallArgs&) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return int64_t{0};
    case Value::Kind::kString: return static_cast<int64_t>(code_point_count(v.as_string()));
    case Value::Kind::kList: return static_cast<int64_t>(v.as_list().size());
    case Value::Kind::kDict: return static_cast<int64_t>(v.as_dict().size());
    default: throw EvalError(fmt::format("length takes a string, list or dict, not {}", describe(v)));
  }
}

Value f_first(const Value& v, const CallArgs&) {
  const List items = iterate(v);
  return items.empty() ? Value() : items.front();
}

Value f_last(const Value& v, const CallArgs&) {
  const List items = iterate(v);
  return items.empty() ? Value() : items.back();
}

Value f_join(const Value& v, const CallArgs& a) {
  a.check("join", {"d", "attribute"});
  const Value* sep = a.get(0, "d");
  const std::string* attribute = attribute_arg(a, 1);
  std::string out;
  bool first = true;
  for (const Value& item : iterate(v)) {
    if (!first && sep) out += to_output(*sep);
    out += to_output(attribute ? attribute_path(item, *attribute) : item);
    first = false;
  }
  return out;
}

Value f_tojson(const Value& v, const CallArgs& a) {
  a.check("tojson", {"ensure_ascii", "indent", "separators", "sort_keys"});  // Transformers' order
  JsonOptions o;
  o.ensure_ascii = flag(a, 0, "ensure_ascii", false);
  if (const Value* indent = a.get(1, "indent"); indent && !indent->is_none()) {
    if (!indent->is_int()) throw EvalError("tojson's indent must be an integer");
    o.indent = static_cast<int>(indent->as_int());
  }
  if (const Value* seps = a.get(2, "separators"); seps && !seps->is_none()) {
    if (!seps->is_list() || seps->as_list().size() != 2 || !seps->as_list()[0].is_string() || !seps->as_list()[1].is_string())
      throw EvalError("tojson's separators must be two strings");
    o.item_separator = seps->as_list()[0].as_string();
    o.key_separator = seps->as_list()[1].as_string();
  }
  o.sort_keys = flag(a, 3, "sort_keys", false);
  return to_json(v, o);
}

Value f_trim(const Value& v, const CallArgs& a) {
  a.check("trim", {"chars"});
  return strip_chars(to_output(v), a.get(0, "chars"), true, true);
}

// Jinja's title: a word starts after white space, '-', or an opening bracket.
Value f_title(const Value& v, const CallArgs&) {
  std::string s = to_output(v);
  bool start = true;
  for (char& c : s) {
    const bool sep = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == '-' ||
                     c == '(' || c == '{' || c == '[' || c == '<';
    c = start ? ascii_upper(c) : ascii_lower(c);
    start = sep;
  }
  return s;
}

Value f_capitalize(const Value& v, const CallArgs&) {
  std::string s = transform(v, ascii_lower);
  if (!s.empty()) s[0] = ascii_upper(s[0]);
  return s;
}

Value f_replace(const Value& v, const CallArgs& a) {
  a.check("replace", {"old", "new", "count"});
  Value method = get_attribute(Value(to_output(v)), "replace");
  CallArgs call = a;
  return method.as_function()(call);
}

Value f_indent(const Value& v, const CallArgs& a) {
  a.check("indent", {"width", "first", "blank"});
  const Value* width = a.get(0, "width");
  std::string pad = "    ";
  if (width && width->is_string()) {
    pad = width->as_string();
  } else if (width) {
    if (!width->is_int()) throw EvalError("indent's width must be an integer or a string");
    pad = std::string(static_cast<size_t>(std::max<int64_t>(0, width->as_int())), ' ');
  }
  const bool first = flag(a, 1, "first", false), blank = flag(a, 2, "blank", false);
  const std::string s = to_output(v);
  std::string out;
  size_t start = 0;
  for (size_t line = 0;; ++line) {
    const size_t nl = s.find('\n', start);
    const std::string text = s.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if ((line > 0 || first) && (blank || !text.empty())) out += pad;
    out += text;
    if (nl == std::string::npos) break;
    out += '\n';
    start = nl + 1;
  }
  return out;
}

// Python's int(): an integer string, else a float string truncated, else the default.
Value f_int(const Value& v, const CallArgs& a) {
  a.check("int", {"default", "base"});
  const Value* fallback = a.get(0, "default");
  if (v.is_int() || v.is_bool()) return v.as_int();
  if (v.is_float() && std::isfinite(v.as_float())) return static_cast<int64_t>(std::trunc(v.as_float()));
  if (v.is_string()) {
    const std::string s = strip_spaces(v.as_string(), true, true);
    const Value* base = a.get(1, "base");
    char* end = nullptr;
    errno = 0;
    const long long i = std::strtoll(s.c_str(), &end, base && base->is_int() ? static_cast<int>(base->as_int()) : 10);
    if (!s.empty() && *end == '\0' && errno == 0) return static_cast<int64_t>(i);
    const double f = std::strtod(s.c_str(), &end);
    if (!s.empty() && *end == '\0' && std::isfinite(f)) return static_cast<int64_t>(std::trunc(f));
  }
  return fallback ? *fallback : Value(int64_t{0});
}

Value f_float(const Value& v, const CallArgs& a) {
  a.check("float", {"default"});
  const Value* fallback = a.get(0, "default");
  if (v.is_number()) return v.as_float();
  if (v.is_string()) {
    const std::string s = strip_spaces(v.as_string(), true, true);
    char* end = nullptr;
    const double f = std::strtod(s.c_str(), &end);
    if (!s.empty() && *end == '\0') return f;
  }
  return fallback ? *fallback : Value(0.0);
}

Value f_items(const Value& v, const CallArgs&) {
  if (v.is_undefined()) return List{};
  if (!v.is_dict()) throw EvalError(fmt::format("items takes a dict, not {}", describe(v)));
  List out;
  for (const auto& [k, e] : v.as_dict().items()) out.emplace_back(List{Value(k), e});
  return out;
}

Value f_reverse(const Value& v, const CallArgs&) {
  if (v.is_string()) {
    auto chars = code_points(v.as_string());
    std::string out;
    for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += *it;
    return out;
  }
  List items = iterate(v);
  std::reverse(items.begin(), items.end());
  return items;
}

Value f_map(const Value& v, const CallArgs& a) {
  List out;
  if (const std::string* attribute = a.args.empty() ? attribute_arg(a, 0) : nullptr) {
    const Value* fallback = nullptr;
    for (const auto& kv : a.kwargs) {
      if (kv.first == "default") fallback = &kv.second;
      else if (kv.first != "attribute") throw EvalError(fmt::format("map has no argument '{}'", kv.first));
    }
    for (const Value& item : iterate(v)) {
      Value x = attribute_path(item, *attribute);
      out.push_back(x.is_undefined() && fallback ? *fallback : x);
    }
    return out;
  }
  if (a.args.empty() || !a.args[0].is_string()) throw EvalError("map needs a filter name or attribute=");
  const std::string& filter = a.args[0].as_string();
  if (!has_filter(filter) || filter == "map") throw EvalError(fmt::format("map names an unknown filter '{}'", filter));
  CallArgs rest{{a.args.begin() + 1, a.args.end()}, a.kwargs, nullptr};
  for (const Value& item : iterate(v)) out.push_back(apply_filter(filter, item, rest));
  return out;
}

// select / reject (on the items) and selectattr / rejectattr (on an attribute of each).
Value select_items(const Value& v, const CallArgs& a, bool by_attribute, bool keep) {
  size_t first = 0;
  const std::string* attribute = nullptr;
  if (by_attribute) {
    if (a.args.empty() || !a.args[0].is_string()) throw EvalError("selectattr and rejectattr need an attribute name");
    attribute = &a.args[0].as_string();
    first = 1;
  }
  if (first < a.args.size() && !a.args[first].is_string()) throw EvalError("the test name must be a string");
  const std::string* test = first < a.args.size() ? &a.args[first].as_string() : nullptr;
  if (test && !has_test(*test)) throw EvalError(fmt::format("unknown test '{}'", *test));
  CallArgs rest{{a.args.begin() + std::min(a.args.size(), first + 1), a.args.end()}, a.kwargs, nullptr};
  List out;
  for (const Value& item : iterate(v)) {
    const Value x = attribute ? attribute_path(item, *attribute) : item;
    if ((test ? apply_test(*test, x, rest) : x.truthy()) == keep) out.push_back(item);
  }
  return out;
}

Value f_sort(const Value& v, const CallArgs& a) {
  a.check("sort", {"reverse", "case_sensitive", "attribute"});
  const bool reverse = flag(a, 0, "reverse", false), case_sensitive = flag(a, 1, "case_sensitive", false);
  const std::string* attribute = attribute_arg(a, 2);
  List items = iterate(v);
  const auto key = [&](const Value& x) { return sort_key(attribute ? attribute_path(x, *attribute) : x, case_sensitive); };
  std::stable_sort(items.begin(), items.end(),
                   [&](const Value& x, const Value& y) { return reverse ? less(key(y), key(x)) : less(key(x), key(y)); });
  return items;
}

Value f_dictsort(const Value& v, const CallArgs& a) {
  a.check("dictsort", {"case_sensitive", "by", "reverse"});
  const bool case_sensitive = flag(a, 0, "case_sensitive", false), reverse = flag(a, 2, "reverse", false);
  const Value* by = a.get(1, "by");
  const size_t index = by && by->is_string() && by->as_string() == "value" ? 1 : 0;
  List items = f_items(v, {}).as_list();
  const auto key = [&](const Value& x) { return sort_key(x.as_list()[index], case_sensitive); };
  std::stable_sort(items.begin(), items.end(),
                   [&](const Value& x, const Value& y) { return reverse ? less(key(y), key(x)) : less(key(x), key(y)); });
  return items;
}

Value f_unique(const Value& v, const CallArgs& a) {
  a.check("unique", {"case_sensitive", "attribute"});
  const bool case_sensitive = flag(a, 0, "case_sensitive", false);
  const std::string* attribute = attribute_arg(a, 1);
  List out, seen;
  for (const Value& item : iterate(v)) {
    Value key = sort_key(attribute ? attribute_path(item, *attribute) : item, case_sensitive);
    if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); })) {
      seen.push_back(std::move(key));
      out.push_back(item);
    }
  }
  return out;
}

Value f_round(const Value& v, const CallArgs& a) {
  a.check("round", {"precision", "method"});
  if (!v.is_number()) throw EvalError(fmt::format("round takes a number, not {}", describe(v)));
  const Value* precision = a.get(0, "precision");
  const Value* method = a.get(1, "method");
  const double scale = std::pow(10.0, precision && precision->is_int() ? static_cast<double>(precision->as_int()) : 0.0);
  const std::string how = method && method->is_string() ? method->as_string() : "common";
  const double x = v.as_float() * scale;
  if (how == "common") return std::nearbyint(x) / scale;  // Python's round: half to even
  if (how == "floor") return std::floor(x) / scale;
  if (how == "ceil") return std::ceil(x) / scale;
  throw EvalError("round's method must be 'common', 'floor' or 'ceil'");
}

Value f_abs(const Value& v, const CallArgs&) {
  if (v.is_float()) return std::fabs(v.as_float());
  if (v.is_number()) return std::abs(v.as_int());
  throw EvalError(fmt::format("abs takes a number, not {}", describe(v)));
}

Value f_attr(const Value& v, const CallArgs& a) {
  a.check("attr", {"name"});
  const Value* name = a.get(0, "name");
  if (!name || !name->is_string()) throw EvalError("attr needs an attribute name");
  return get_attribute(v, name->as_string());
}

const std::pair<std::string_view, FilterFn> kFilters[] = {
    {"abs", f_abs},
    {"attr", f_attr},
    {"capitalize", f_capitalize},
    {"count", f_length},
    {"d", f_default},
    {"default", f_default},
    {"dictsort", f_dictsort},
    {"first", f_first},
    {"float", f_float},
    {"indent", f_indent},
    {"int", f_int},
    {"items", f_items},
    {"join", f_join},
    {"last", f_last},
    {"length", f_length},
    {"list", [](const Value& v, const CallArgs&) { return Value(iterate(v)); }},
    {"lower", [](const Value& v, const CallArgs&) { return Value(transform(v, ascii_lower)); }},
    {"map", f_map},
    {"reject", [](const Value& v, const CallArgs& a) { return select_items(v, a, false, false); }},
    {"rejectattr", [](const Value& v, const CallArgs& a) { return select_items(v, a, true, false); }},
    {"replace", f_replace},
    {"reverse", f_reverse},
    {"round", f_round},
    {"safe", [](const Value& v, const CallArgs&) { return v; }},
    {"select", [](const Value& v, const CallArgs& a) { return select_items(v, a, false, true); }},
    {"selectattr", [](const Value& v, const CallArgs& a) { return select_items(v, a, true, true); }},
    {"sort", f_sort},
    {"string", [](const Value& v, const CallArgs&) { return Value(to_output(v)); }},
    {"title", f_title},
    {"tojson", f_tojson},
    {"trim", f_trim},
    {"unique", f_unique},
    {"upper", [](const Value& v, const CallArgs&) { return Value(transform(v, ascii_upper)); }},
};

}  // namespace

bool has_filter(std::string_view name) {
  return std::any_of(std::begin(kFilters), std::end(kFilters), [&](const auto& f) { return f.first == name; });
}

Value apply_filter(const std::string& name, const Value& operand, const CallArgs& args) {
  for (const auto& [n, fn] : kFilters)
    if (n == name) return fn(operand, args);
  throw EvalError(fmt::format("unknown filter '{}'", name));
}

}  // namespace bb::jinja
