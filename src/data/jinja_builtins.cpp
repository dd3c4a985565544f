// Tests, methods, attribute / item / slice access and globals of the chat-template engine
// (the filters are in jinja_filters.cpp). Case mapping is ASCII only.
#include "data/jinja_builtins.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>

namespace bb::jinja {
namespace {

char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; }
char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }
bool ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), ascii_upper);
  return s;
}
std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), ascii_lower);
  return s;
}

// Python's str.title: a letter after a non-letter starts a word.
std::string title_words(const std::string& s) {
  std::string out = s;
  bool prev_letter = false;
  for (char& c : out) {
    c = prev_letter ? ascii_lower(c) : ascii_upper(c);
    prev_letter = ascii_alpha(c);
  }
  return out;
}

std::string capitalize(const std::string& s) {
  std::string out = lower(s);
  if (!out.empty()) out[0] = ascii_upper(out[0]);
  return out;
}

// Python's str.islower / isupper: some cased character, and none of the other case.
bool is_case(const std::string& s, bool want_lower) {
  bool cased = false;
  for (const char c : s) {
    if (!ascii_alpha(c)) continue;
    if ((c >= 'a' && c <= 'z') != want_lower) return false;
    cased = true;
  }
  return cased;
}

const Value& arg(const CallArgs& a, size_t index, std::string_view name, std::string_view what) {
  const Value* v = a.get(index, name);
  if (!v) throw EvalError(fmt::format("{} needs the argument '{}'", what, name));
  return *v;
}

const std::string& string_arg(const Value& v, std::string_view what) {
  if (!v.is_string()) throw EvalError(fmt::format("{} takes a string, not {}", what, describe(v)));
  return v.as_string();
}

int64_t int_arg(const Value& v, std::string_view what) {
  if (!v.is_int() && !v.is_bool()) throw EvalError(fmt::format("{} takes an integer, not {}", what, describe(v)));
  return v.as_int();
}

std::string replace_all(const std::string& s, const std::string& old, const std::string& repl, int64_t count) {
  if (count < 0) count = INT64_MAX;
  std::string out;
  if (old.empty()) {  // Python inserts `repl` before every character and at the end
    const auto chars = code_points(s);
    for (size_t i = 0; i <= chars.size(); ++i) {
      if (static_cast<int64_t>(i) < count) out += repl;
      if (i < chars.size()) out += chars[i];
    }
    return out;
  }
  size_t pos = 0;
  for (int64_t n = 0; n < count; ++n) {
    const size_t hit = s.find(old, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += repl;
    pos = hit + old.size();
  }
  return out + s.substr(pos);
}

bool starts_or_ends(const std::string& s, const Value& affix, bool start, std::string_view what) {
  const auto one = [&](const Value& a) {
    const std::string& x = string_arg(a, what);
    return x.size() <= s.size() && (start ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0);
  };
  if (affix.is_list()) return std::any_of(affix.as_list().begin(), affix.as_list().end(), one);
  return one(affix);
}

// str.format with {}, {0} and {name} fields ({{ and }} for braces); no format specs.
std::string format_string(const std::string& f, const CallArgs& a) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    const char c = f[i];
    if ((c == '{' || c == '}') && i + 1 < f.size() && f[i + 1] == c) {
      out += c;
      ++i;
      continue;
    }
    if (c == '}') throw EvalError("str.format found a single '}'");
    if (c != '{') {
      out += c;
      continue;
    }
    const size_t close = f.find('}', i);
    if (close == std::string::npos) throw EvalError("str.format found a '{' that is never closed");
    std::string field = f.substr(i + 1, close - i - 1);
    bool use_repr = false;
    if (field.size() >= 2 && field[field.size() - 2] == '!') {
      use_repr = field.back() == 'r';
      field.resize(field.size() - 2);
    }
    if (field.find(':') != std::string::npos) throw EvalError("str.format specs such as '{:>10}' are not supported");
    const Value* v = nullptr;
    if (field.empty()) {
      v = auto_index < a.args.size() ? &a.args[auto_index++] : nullptr;
    } else if (std::all_of(field.begin(), field.end(), [](char d) { return d >= '0' && d <= '9'; })) {
      const size_t k = std::stoul(field);
      v = k < a.args.size() ? &a.args[k] : nullptr;
    } else {
      for (const auto& kv : a.kwargs)
        if (kv.first == field) v = &kv.second;
    }
    if (!v) throw EvalError(fmt::format("str.format has no argument for the field '{{{}}}'", field));
    out += use_repr ? repr(*v) : to_output(*v);
    i = close;
  }
  return out;
}

Value string_method(const std::string& s, const std::string& name, const CallArgs& a) {
  const std::string what = "str." + name;
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    a.check(what, {"chars"});
    return strip_chars(s, a.get(0, "chars"), name != "rstrip", name != "lstrip");
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize" || name == "splitlines" ||
      name == "islower" || name == "isupper" || name == "isspace" || name == "isdigit" || name == "isalpha") {
    a.check(what, {});
    if (name == "upper") return upper(s);
    if (name == "lower") return lower(s);
    if (name == "title") return title_words(s);
    if (name == "capitalize") return capitalize(s);
    if (name == "islower" || name == "isupper") return is_case(s, name == "islower");
    if (name == "isspace") return !s.empty() && strip_spaces(s, true, true).empty();
    if (name == "isdigit") return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (name == "isalpha") return !s.empty() && std::all_of(s.begin(), s.end(), ascii_alpha);
    List lines;
    size_t start = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\n' || s[i] == '\r') {
        lines.emplace_back(s.substr(start, i - start));
        if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
        start = i + 1;
      }
    }
    if (start < s.size()) lines.emplace_back(s.substr(start));
    return lines;
  }
  if (name == "split") {
    a.check(what, {"sep", "maxsplit"});
    return split_string(s, a.get(0, "sep"), a.get(1, "maxsplit"));
  }
  if (name == "startswith" || name == "endswith") {
    a.check(what, {"prefix"});
    return starts_or_ends(s, arg(a, 0, "prefix", what), name == "startswith", what);
  }
  if (name == "replace") {
    a.check(what, {"old", "new", "count"});
    const Value* count = a.get(2, "count");
    return replace_all(s, string_arg(arg(a, 0, "old", what), what), string_arg(arg(a, 1, "new", what), what),
                       count ? int_arg(*count, what) : -1);
  }
  if (name == "find" || name == "count") {
    a.check(what, {"sub"});
    const std::string& sub = string_arg(arg(a, 0, "sub", what), what);
    if (name == "find") {
      const size_t hit = s.find(sub);
      return hit == std::string::npos ? int64_t{-1} : static_cast<int64_t>(code_point_count(s.substr(0, hit)));
    }
    if (sub.empty()) return static_cast<int64_t>(code_point_count(s) + 1);
    int64_t n = 0;
    for (size_t pos = s.find(sub); pos != std::string::npos; pos = s.find(sub, pos + sub.size())) ++n;
    return n;
  }
  if (name == "join") {
    a.check(what, {"iterable"});
    std::string out;
    bool first = true;
    for (const Value& v : iterate(arg(a, 0, "iterable", what))) {
      if (!first) out += s;
      out += string_arg(v, what);
      first = false;
    }
    return out;
  }
  if (name == "format") return format_string(s, a);
  return Value();
}

bool is_string_method(const std::string& name) {
  static const char* const kNames[] = {"strip",   "lstrip",  "rstrip",  "upper",   "lower",      "title",
                                       "capitalize", "split", "startswith", "endswith", "replace", "find",
                                       "count",   "join",    "format",  "splitlines", "islower", "isupper",
                                       "isspace", "isdigit", "isalpha"};
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

Value dict_method(const Value& d, const std::string& name, const CallArgs& a) {
  const std::string what = "dict." + name;
  if (name == "get") {
    a.check(what, {"key", "default"});
    const Value& key = arg(a, 0, "key", what);
    const Value* found = key.is_string() ? d.as_dict().find(key.as_string()) : nullptr;
    if (found) return *found;
    const Value* fallback = a.get(1, "default");
    return fallback ? *fallback : Value(None{});
  }
  a.check(what, {});
  List out;
  for (const auto& [k, v] : d.as_dict().items()) {
    if (name == "keys") out.emplace_back(k);
    if (name == "values") out.push_back(v);
    if (name == "items") out.emplace_back(List{Value(k), v});
  }
  return out;
}

Value bound(Value object, std::string name, Value (*method)(const Value&, const std::string&, const CallArgs&)) {
  return Value(Function([object = std::move(object), name = std::move(name), method](CallArgs& a) {
    return method(object, name, a);
  }));
}

int64_t slice_bound(const Value& v, int64_t length, int64_t step, bool is_start) {
  const int64_t lower = step < 0 ? -1 : 0;
  const int64_t upper = step < 0 ? length - 1 : length;
  if (v.is_undefined() || v.is_none()) return (step < 0) == is_start ? upper : lower;
  int64_t i = int_arg(v, "a slice");
  if (i < 0) i = std::max(i + length, lower);
  return std::min(i, upper);
}

Value range_of(CallArgs& a) {
  a.check("range", {"start", "stop", "step"});
  if (a.args.empty()) throw EvalError("range needs at least one argument");
  int64_t start = 0, stop = 0, step = 1;
  if (a.args.size() == 1) {
    stop = int_arg(a.args[0], "range");
  } else {
    start = int_arg(a.args[0], "range");
    stop = int_arg(a.args[1], "range");
    if (a.args.size() > 2) step = int_arg(a.args[2], "range");
  }
  if (step == 0) throw EvalError("range's step must not be zero");
  const int64_t n = step > 0 ? (stop > start ? (stop - start + step - 1) / step : 0)
                             : (start > stop ? (start - stop - step - 1) / -step : 0);
  constexpr int64_t kMaxRange = 100000;  // Jinja's sandbox limit
  if (n > kMaxRange) throw EvalError(fmt::format("range would make {} items, more than {}", n, kMaxRange));
  List out;
  for (int64_t i = 0; i < n; ++i) out.emplace_back(start + i * step);
  return out;
}

// namespace(...) and dict(...): a mapping from an optional dict and keyword arguments.
Dict mapping_of(const CallArgs& a, std::string_view what) {
  if (a.args.size() > 1) throw EvalError(fmt::format("{} takes at most one positional argument", what));
  Dict d;
  if (!a.args.empty()) {
    if (!a.args[0].is_dict() && !a.args[0].is_namespace())
      throw EvalError(fmt::format("{} takes a dict, not {}", what, describe(a.args[0])));
    for (const auto& [k, v] : a.args[0].as_dict().items()) d.set(k, v);
  }
  for (const auto& [k, v] : a.kwargs) d.set(k, v);
  return d;
}

Value strftime_now(CallArgs& a) {
  a.check("strftime_now", {"format"});
  const std::string& f = string_arg(arg(a, 0, "format", "strftime_now"), "strftime_now");
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  std::string buf(256 + f.size() * 8, '\0');
  buf.resize(std::strftime(buf.data(), buf.size(), f.c_str(), &local));
  return buf;
}

using TestFn = bool (*)(const Value&, const CallArgs&);

const Value& test_arg(const CallArgs& a) { return arg(a, 0, "value", "the test"); }

bool divisible(const Value& v, const CallArgs& a) {
  const Value& d = test_arg(a);
  if (!v.is_number() || !d.is_number()) throw EvalError("divisibleby takes numbers");
  if (v.is_float() || d.is_float()) return d.as_float() != 0 && std::fmod(v.as_float(), d.as_float()) == 0;
  if (d.as_int() == 0) throw EvalError("divisibleby 0 divides by zero");
  return v.as_int() % d.as_int() == 0;
}

bool parity(const Value& v, bool odd) {
  if (!v.is_number()) throw EvalError(fmt::format("the test '{}' takes a number, not {}", odd ? "odd" : "even", describe(v)));
  if (v.is_float()) return std::fmod(std::fabs(v.as_float()), 2.0) == (odd ? 1.0 : 0.0);
  return (v.as_int() % 2 != 0) == odd;
}

const std::pair<std::string_view, TestFn> kTests[] = {
    {"defined", [](const Value& v, const CallArgs&) { return !v.is_undefined(); }},
    {"undefined", [](const Value& v, const CallArgs&) { return v.is_undefined(); }},
    {"none", [](const Value& v, const CallArgs&) { return v.is_none(); }},
    {"boolean", [](const Value& v, const CallArgs&) { return v.is_bool(); }},
    {"true", [](const Value& v, const CallArgs&) { return v.is_bool() && v.as_bool(); }},
    {"false", [](const Value& v, const CallArgs&) { return v.is_bool() && !v.as_bool(); }},
    {"integer", [](const Value& v, const CallArgs&) { return v.is_int(); }},
    {"float", [](const Value& v, const CallArgs&) { return v.is_float(); }},
    {"number", [](const Value& v, const CallArgs&) { return v.is_number(); }},
    {"string", [](const Value& v, const CallArgs&) { return v.is_string(); }},
    {"mapping", [](const Value& v, const CallArgs&) { return v.is_dict(); }},
    {"callable", [](const Value& v, const CallArgs&) { return v.is_function(); }},
    // Jinja's Undefined is an empty iterable and has a length, so these hold for it too.
    {"iterable", [](const Value& v, const CallArgs&) { return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined(); }},
    {"sequence", [](const Value& v, const CallArgs&) { return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined(); }},
    {"odd", [](const Value& v, const CallArgs&) { return parity(v, true); }},
    {"even", [](const Value& v, const CallArgs&) { return parity(v, false); }},
    {"divisibleby", divisible},
    {"lower", [](const Value& v, const CallArgs&) { return is_case(to_output(v), true); }},
    {"upper", [](const Value& v, const CallArgs&) { return is_case(to_output(v), false); }},
    {"eq", [](const Value& v, const CallArgs& a) { return equals(v, test_arg(a)); }},
    {"equalto", [](const Value& v, const CallArgs& a) { return equals(v, test_arg(a)); }},
    {"==", [](const Value& v, const CallArgs& a) { return equals(v, test_arg(a)); }},
    {"ne", [](const Value& v, const CallArgs& a) { return !equals(v, test_arg(a)); }},
    {"!=", [](const Value& v, const CallArgs& a) { return !equals(v, test_arg(a)); }},
    {"lt", [](const Value& v, const CallArgs& a) { return less(v, test_arg(a)); }},
    {"<", [](const Value& v, const CallArgs& a) { return less(v, test_arg(a)); }},
    {"le", [](const Value& v, const CallArgs& a) { return !less(test_arg(a), v); }},
    {"<=", [](const Value& v, const CallArgs& a) { return !less(test_arg(a), v); }},
    {"gt", [](const Value& v, const CallArgs& a) { return less(test_arg(a), v); }},
    {">", [](const Value& v, const CallArgs& a) { return less(test_arg(a), v); }},
    {"ge", [](const Value& v, const CallArgs& a) { return !less(v, test_arg(a)); }},
    {">=", [](const Value& v, const CallArgs& a) { return !less(v, test_arg(a)); }},
    {"in", [](const Value& v, const CallArgs& a) { return contains(test_arg(a), v); }},
    {"sameas",
     [](const Value& v, const CallArgs& a) {
       const Value& o = test_arg(a);
       return v.kind() == o.kind() && (v.identity() ? v.identity() == o.identity() : equals(v, o));
     }},
    {"filter", [](const Value& v, const CallArgs&) { return v.is_string() && has_filter(v.as_string()); }},
    {"test", [](const Value& v, const CallArgs&) { return v.is_string() && has_test(v.as_string()); }},
};

}  // namespace

bool has_test(std::string_view name) {
  return std::any_of(std::begin(kTests), std::end(kTests), [&](const auto& t) { return t.first == name; });
}

bool apply_test(const std::string& name, const Value& operand, const CallArgs& args) {
  for (const auto& [n, fn] : kTests)
    if (n == name) return fn(operand, args);
  throw EvalError(fmt::format("unknown test '{}'", name));
}

std::string strip_chars(const std::string& s, const Value* chars, bool left, bool right) {
  if (!chars || chars->is_none()) return strip_spaces(s, left, right);
  const auto set = code_points(string_arg(*chars, "strip"));
  const auto cps = code_points(s);
  const auto in_set = [&](const std::string& c) { return std::find(set.begin(), set.end(), c) != set.end(); };
  size_t begin = 0, end = cps.size();
  while (left && begin < end && in_set(cps[begin])) ++begin;
  while (right && end > begin && in_set(cps[end - 1])) --end;
  std::string out;
  for (size_t i = begin; i < end; ++i) out += cps[i];
  return out;
}

Value split_string(const std::string& s, const Value* sep, const Value* maxsplit) {
  int64_t limit = maxsplit ? int_arg(*maxsplit, "str.split") : -1;
  if (limit < 0) limit = INT64_MAX;
  List out;
  if (!sep || sep->is_none()) {  // runs of white space, none at the ends
    std::string rest = strip_spaces(s, true, false);
    while (!rest.empty()) {
      if (static_cast<int64_t>(out.size()) == limit) {
        out.emplace_back(strip_spaces(rest, false, true));
        break;
      }
      size_t pos = 0, word_end = rest.size();
      while (pos < rest.size()) {
        const size_t start = pos;
        if (is_space_code_point(next_code_point(rest, pos))) {
          word_end = start;
          break;
        }
      }
      out.emplace_back(rest.substr(0, word_end));
      rest = strip_spaces(rest.substr(word_end), true, false);
    }
    return out;
  }
  const std::string& d = string_arg(*sep, "str.split");
  if (d.empty()) throw EvalError("str.split got an empty separator");
  size_t pos = 0;
  for (size_t hit; static_cast<int64_t>(out.size()) < limit && (hit = s.find(d, pos)) != std::string::npos;) {
    out.emplace_back(s.substr(pos, hit - pos));
    pos = hit + d.size();
  }
  out.emplace_back(s.substr(pos));
  return out;
}

Value get_attribute(const Value& object, const std::string& name) {
  switch (object.kind()) {
    case Value::Kind::kUndefined:
      throw EvalError(fmt::format("cannot read the attribute '{}' of an undefined value", name));
    case Value::Kind::kDict:
      if (name == "items" || name == "keys" || name == "values" || name == "get") return bound(object, name, dict_method);
      [[fallthrough]];
    case Value::Kind::kNamespace: {
      const Value* v = object.as_dict().find(name);
      return v ? *v : Value();
    }
    case Value::Kind::kString:
      if (is_string_method(name)) {
        return bound(object, name, [](const Value& o, const std::string& n, const CallArgs& a) {
          return string_method(o.as_string(), n, a);
        });
      }
      return Value();
    case Value::Kind::kList: {
      static const char* const kMutators[] = {"append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse"};
      if (std::find(std::begin(kMutators), std::end(kMutators), name) != std::end(kMutators)) {
        throw EvalError(fmt::format("list.{} would change a list, which chat templates may not do", name));
      }
      return Value();
    }
    default: return Value();
  }
}

Value get_item(const Value& object, const Value& key) {
  if (object.is_undefined()) throw EvalError(fmt::format("cannot read the item [{}] of an undefined value", repr(key)));
  if ((object.is_list() || object.is_string()) && (key.is_int() || key.is_bool())) {
    const int64_t n = object.is_list() ? static_cast<int64_t>(object.as_list().size())
                                       : static_cast<int64_t>(code_point_count(object.as_string()));
    int64_t i = key.as_int();
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value();
    if (object.is_list()) return object.as_list()[static_cast<size_t>(i)];
    return code_points(object.as_string())[static_cast<size_t>(i)];
  }
  if ((object.is_dict() || object.is_namespace()) && key.is_string()) {
    const Value* v = object.as_dict().find(key.as_string());
    return v ? *v : Value();
  }
  if (key.is_string()) return get_attribute(object, key.as_string());  // Jinja falls back to getattr
  return Value();
}

Value get_slice(const Value& object, const Value& start, const Value& stop, const Value& step) {
  if (!object.is_list() && !object.is_string()) throw EvalError(fmt::format("cannot slice {}", describe(object)));
  const int64_t s = step.is_undefined() || step.is_none() ? 1 : int_arg(step, "a slice");
  if (s == 0) throw EvalError("a slice step cannot be zero");
  const std::vector<std::string> chars = object.is_string() ? code_points(object.as_string()) : std::vector<std::string>{};
  const int64_t n = object.is_list() ? static_cast<int64_t>(object.as_list().size()) : static_cast<int64_t>(chars.size());
  const int64_t b = slice_bound(start, n, s, true), e = slice_bound(stop, n, s, false);
  List items;
  std::string text;
  for (int64_t i = b; s > 0 ? i < e : i > e; i += s) {
    if (object.is_list()) {
      items.push_back(object.as_list()[static_cast<size_t>(i)]);
    } else {
      text += chars[static_cast<size_t>(i)];
    }
  }
  return object.is_list() ? Value(std::move(items)) : Value(std::move(text));
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined: return false;
    case Value::Kind::kString:
      if (!item.is_string()) throw EvalError(fmt::format("'in <string>' needs a string on the left, not {}", describe(item)));
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::kList:
      return std::any_of(container.as_list().begin(), container.as_list().end(),
                         [&](const Value& v) { return equals(v, item); });
    case Value::Kind::kDict:
    case Value::Kind::kNamespace: return item.is_string() && container.as_dict().find(item.as_string()) != nullptr;
    default: throw EvalError(fmt::format("cannot look for an item in {}", describe(container)));
  }
}

List iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return {};
    case Value::Kind::kList: return v.as_list();
    case Value::Kind::kDict: {
      List keys;
      for (const auto& kv : v.as_dict().items()) keys.emplace_back(kv.first);
      return keys;
    }
    case Value::Kind::kString: {
      List chars;
      for (auto& c : code_points(v.as_string())) chars.emplace_back(std::move(c));
      return chars;
    }
    default: throw EvalError(fmt::format("cannot iterate over {}", describe(v)));
  }
}

const Dict& globals() {
  static const Dict g = [] {
    Dict d;
    d.set("range", Value(Function(range_of)));
    d.set("namespace", Value(Function([](CallArgs& a) {
            return Value(Namespace{std::make_shared<Dict>(mapping_of(a, "namespace"))});
          })));
    d.set("dict", Value(Function([](CallArgs& a) { return Value(mapping_of(a, "dict")); })));
    d.set("raise_exception", Value(Function([](CallArgs& a) -> Value {
            throw RaisedByTemplate(a.args.empty() ? std::string("(no message)") : to_output(a.args[0]));
          })));
    d.set("strftime_now", Value(Function(strftime_now)));
    return d;
  }();
  return g;
}

}  // namespace bb::jinja
