// Values of the chat-template engine: truthiness, printing (str and repr, as Python prints),
// JSON (as json.dumps writes it), comparison, and conversion from nlohmann::json.
#include "data/jinja_value.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "data/jinja_error.h"

namespace bb::jinja {

// A byte that starts no valid sequence is taken alone (callers copy bytes, so nothing is lost)
// and reads as U+FFFD.
uint32_t next_code_point(const std::string& s, size_t& pos) {
  constexpr uint32_t kReplacement = 0xfffd;
  const auto b0 = static_cast<unsigned char>(s[pos]);
  int len = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xe ? 3 : (b0 >> 3) == 0x1e ? 4 : 0;
  if (len == 0 || pos + len > s.size()) {
    ++pos;
    return kReplacement;
  }
  uint32_t c = len == 1 ? b0 : b0 & (0x7f >> len);
  for (int i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(s[pos + i]);
    if ((b >> 6) != 0x2) {
      ++pos;
      return kReplacement;
    }
    c = (c << 6) | (b & 0x3f);
  }
  pos += len;
  return c;
}

namespace {

std::string quote_json(const std::string& s, bool ensure_ascii) {
  std::string out = "\"";
  for (size_t pos = 0; pos < s.size();) {
    const size_t start = pos;
    const uint32_t c = next_code_point(s, pos);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else if (ensure_ascii && c >= 0x80) {
          if (c >= 0x10000) {
            const uint32_t v = c - 0x10000;
            out += fmt::format("\\u{:04x}\\u{:04x}", 0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff));
          } else {
            out += fmt::format("\\u{:04x}", c);
          }
        } else {
          out.append(s, start, pos - start);
        }
    }
  }
  return out + "\"";
}

std::string quote_python(const std::string& s) {
  const char quote = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, quote);
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (ch == quote || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\r') {
      out += "\\r";
    } else if (ch == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += ch;
    }
  }
  return out + quote;
}

void write_json(const Value& v, const JsonOptions& o, int depth, std::string& out) {
  const auto newline = [&](int d) {
    if (!o.indent) return;
    out += '\n';
    out.append(static_cast<size_t>(std::max(0, *o.indent)) * d, ' ');
  };
  const std::string item_sep = !o.item_separator.empty() ? o.item_separator : o.indent ? "," : ", ";
  switch (v.kind()) {
    case Value::Kind::kNone: out += "null"; return;
    case Value::Kind::kBool: out += v.as_bool() ? "true" : "false"; return;
    case Value::Kind::kInt: out += std::to_string(v.as_int()); return;
    case Value::Kind::kFloat: {
      const double f = v.as_float();
      out += std::isnan(f) ? "NaN" : std::isinf(f) ? (f > 0 ? "Infinity" : "-Infinity") : format_float(f);
      return;
    }
    case Value::Kind::kString: out += quote_json(v.as_string(), o.ensure_ascii); return;
    case Value::Kind::kList: {
      const List& l = v.as_list();
      if (l.empty()) {
        out += "[]";
        return;
      }
      out += "[";
      for (size_t i = 0; i < l.size(); ++i) {
        if (i) out += item_sep;
        newline(depth + 1);
        write_json(l[i], o, depth + 1, out);
      }
      newline(depth);
      out += "]";
      return;
    }
    case Value::Kind::kDict:
    case Value::Kind::kNamespace: {
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : v.as_dict().items()) items.push_back(&kv);
      if (items.empty()) {
        out += "{}";
        return;
      }
      if (o.sort_keys) {
        std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
      }
      out += "{";
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += item_sep;
        newline(depth + 1);
        out += quote_json(items[i]->first, o.ensure_ascii) + o.key_separator;
        write_json(items[i]->second, o, depth + 1, out);
      }
      newline(depth);
      out += "}";
      return;
    }
    case Value::Kind::kUndefined:
    case Value::Kind::kFunction:
      throw EvalError(fmt::format("tojson cannot write {} as JSON", describe(v)));
  }
}

template <class Json>
Value convert(const Json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value(None{});
    case nlohmann::json::value_t::boolean: return Value(j.template get<bool>());
    case nlohmann::json::value_t::number_integer: return Value(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      const auto u = j.template get<uint64_t>();
      return u > static_cast<uint64_t>(INT64_MAX) ? Value(static_cast<double>(u)) : Value(static_cast<int64_t>(u));
    }
    case nlohmann::json::value_t::number_float: return Value(j.template get<double>());
    case nlohmann::json::value_t::string: return Value(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
      List l;
      l.reserve(j.size());
      for (const auto& e : j) l.push_back(convert(e));
      return Value(std::move(l));
    }
    case nlohmann::json::value_t::object: {
      Dict d;
      for (auto it = j.begin(); it != j.end(); ++it) d.set(it.key(), convert(it.value()));
      return Value(std::move(d));
    }
    default: throw EvalError("the context holds a binary or discarded JSON value");
  }
}

}  // namespace

const Value* Dict::find(std::string_view key) const {
  for (const auto& kv : items_)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

void Dict::set(const std::string& key, Value value) {
  for (auto& kv : items_) {
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  }
  items_.emplace_back(key, std::move(value));
}

const Value* CallArgs::get(size_t index, std::string_view name) const {
  if (index < args.size()) return &args[index];
  for (const auto& kv : kwargs)
    if (kv.first == name) return &kv.second;
  return nullptr;
}

void CallArgs::check(std::string_view what, std::initializer_list<std::string_view> names) const {
  if (args.size() > names.size()) {
    throw EvalError(fmt::format("{} takes at most {} argument{}, got {}", what, names.size(),
                                names.size() == 1 ? "" : "s", args.size()));
  }
  for (const auto& kv : kwargs) {
    if (std::find(names.begin(), names.end(), kv.first) == names.end())
      throw EvalError(fmt::format("{} has no argument '{}'", what, kv.first));
  }
}

int64_t Value::as_int() const { return is_bool() ? (as_bool() ? 1 : 0) : std::get<int64_t>(v_); }

double Value::as_float() const { return is_float() ? std::get<double>(v_) : static_cast<double>(as_int()); }

const Dict& Value::as_dict() const {
  return is_namespace() ? *std::get<Namespace>(v_).dict : *std::get<std::shared_ptr<const Dict>>(v_);
}

const void* Value::identity() const {
  switch (kind()) {
    case Kind::kList: return std::get<std::shared_ptr<const List>>(v_).get();
    case Kind::kDict: return std::get<std::shared_ptr<const Dict>>(v_).get();
    case Kind::kNamespace: return std::get<Namespace>(v_).dict.get();
    case Kind::kFunction: return std::get<std::shared_ptr<const Function>>(v_).get();
    default: return nullptr;
  }
}

bool Value::truthy() const {
  switch (kind()) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool: return as_bool();
    case Kind::kInt: return as_int() != 0;
    case Kind::kFloat: return as_float() != 0.0;
    case Kind::kString: return !as_string().empty();
    case Kind::kList: return !as_list().empty();
    case Kind::kDict: return as_dict().size() != 0;
    case Kind::kNamespace:
    case Kind::kFunction: return true;
  }
  return false;
}

std::string type_name(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return "undefined";
    case Value::Kind::kNone: return "none";
    case Value::Kind::kBool: return "boolean";
    case Value::Kind::kInt: return "integer";
    case Value::Kind::kFloat: return "float";
    case Value::Kind::kString: return "string";
    case Value::Kind::kList: return "list";
    case Value::Kind::kDict: return "dict";
    case Value::Kind::kNamespace: return "namespace";
    case Value::Kind::kFunction: return "function";
  }
  return "value";
}

std::string describe(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return "an undefined value";
    case Value::Kind::kNone: return "none";
    case Value::Kind::kInt: return "an integer";
    default: return "a " + type_name(v);
  }
}

std::string format_float(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  std::string s = fmt::format("{}", f);  // shortest round trip, exponent outside [1e-4, 1e16)
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string to_output(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return "";
    case Value::Kind::kString: return v.as_string();
    default: return repr(v);
  }
}

std::string repr(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return "Undefined";
    case Value::Kind::kNone: return "None";
    case Value::Kind::kBool: return v.as_bool() ? "True" : "False";
    case Value::Kind::kInt: return std::to_string(v.as_int());
    case Value::Kind::kFloat: return format_float(v.as_float());
    case Value::Kind::kString: return quote_python(v.as_string());
    case Value::Kind::kList: {
      std::string out = "[";
      for (const Value& e : v.as_list()) out += (out.size() > 1 ? ", " : "") + repr(e);
      return out + "]";
    }
    case Value::Kind::kDict:
    case Value::Kind::kNamespace: {
      std::string out = "{";
      for (const auto& [k, e] : v.as_dict().items()) out += (out.size() > 1 ? ", " : "") + quote_python(k) + ": " + repr(e);
      out += "}";
      return v.is_namespace() ? "<Namespace " + out + ">" : out;
    }
    case Value::Kind::kFunction: return "<function>";
  }
  return "";
}

std::string to_json(const Value& v, const JsonOptions& options) {
  std::string out;
  write_json(v, options, 0, out);
  return out;
}

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_float() == b.as_float();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return true;
    case Value::Kind::kString: return a.as_string() == b.as_string();
    case Value::Kind::kList: {
      const List &x = a.as_list(), &y = b.as_list();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!equals(x[i], y[i])) return false;
      return true;
    }
    case Value::Kind::kDict: {
      const Dict &x = a.as_dict(), &y = b.as_dict();
      if (x.size() != y.size()) return false;
      for (const auto& [k, e] : x.items()) {
        const Value* other = y.find(k);
        if (!other || !equals(e, *other)) return false;
      }
      return true;
    }
    default: return a.identity() == b.identity();
  }
}

bool less(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_float() < b.as_float();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();
  if (a.is_list() && b.is_list()) {
    const List &x = a.as_list(), &y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equals(x[i], y[i])) return less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  throw EvalError(fmt::format("cannot order {} and {}", describe(a), describe(b)));
}

Value from_json(const nlohmann::json& j) { return convert(j); }
Value from_json(const nlohmann::ordered_json& j) { return convert(j); }

std::vector<std::string> code_points(const std::string& s) {
  std::vector<std::string> out;
  for (size_t pos = 0; pos < s.size();) {
    const size_t start = pos;
    next_code_point(s, pos);
    out.push_back(s.substr(start, pos - start));
  }
  return out;
}

size_t code_point_count(const std::string& s) {
  size_t n = 0;
  for (size_t pos = 0; pos < s.size(); ++n) next_code_point(s, pos);
  return n;
}

bool is_space_code_point(uint32_t c) {
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

std::string strip_spaces(const std::string& s, bool left, bool right) {
  size_t begin = 0, end = s.size();
  if (left) {
    while (begin < end) {
      size_t pos = begin;
      if (!is_space_code_point(next_code_point(s, pos))) break;
      begin = pos;
    }
  }
  if (right) {
    while (end > begin) {
      size_t start = end - 1;  // back to the first byte of the last code point
      while (start > begin && (static_cast<unsigned char>(s[start]) & 0xc0) == 0x80 && end - start < 4) --start;
      size_t pos = start;
      const uint32_t c = next_code_point(s, pos);
      if (pos != end || !is_space_code_point(c)) break;
      end = start;
    }
  }
  return s.substr(begin, end - begin);
}

}  // namespace bb::jinja
