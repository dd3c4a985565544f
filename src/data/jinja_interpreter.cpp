// The chat-template interpreter: walks the syntax tree, writing text. Errors from values and
// builtins (EvalError) get the line of the expression or statement that raised them here.
#include "data/jinja_interpreter.h"

#include <fmt/format.h>

#include <cmath>
#include <unordered_map>

#include "data/jinja_builtins.h"
#include "data/jinja_error.h"

namespace bb::jinja {
namespace {

class Scope {
 public:
  explicit Scope(std::shared_ptr<const Scope> parent) : parent_(std::move(parent)) {}
  const Value* find(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent_.get()) {
      const auto it = s->vars_.find(name);
      if (it != s->vars_.end()) return &it->second;
    }
    return nullptr;
  }
  void set(const std::string& name, Value v) { vars_[name] = std::move(v); }

 private:
  std::shared_ptr<const Scope> parent_;
  std::unordered_map<std::string, Value> vars_;
};
using ScopePtr = std::shared_ptr<Scope>;

enum class Flow { kNormal, kBreak, kContinue };

constexpr int kMaxMacroDepth = 100;

// a + b, a - b or a * b on int64, refusing to wrap around.
int64_t checked(char op, int64_t a, int64_t b, const char* name = nullptr) {
  int64_t r = 0;
  const bool overflow = op == '+'   ? __builtin_add_overflow(a, b, &r)
                        : op == '-' ? __builtin_sub_overflow(a, b, &r)
                                    : __builtin_mul_overflow(a, b, &r);
  if (overflow) throw EvalError(fmt::format("the integer result of '{}' is too large", name ? name : std::string(1, op)));
  return r;
}

Value binary_op(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined() || b.is_undefined()) throw EvalError(fmt::format("'{}' cannot use an undefined value", op));
  const bool nums = a.is_number() && b.is_number();
  const bool ints = nums && !a.is_float() && !b.is_float();
  const auto mismatch = [&] { return EvalError(fmt::format("'{}' cannot combine {} and {}", op, describe(a), describe(b))); };
  if (op == "+") {
    if (ints) return checked('+', a.as_int(), b.as_int());
    if (nums) return a.as_float() + b.as_float();
    if (a.is_string() && b.is_string()) return a.as_string() + b.as_string();
    if (a.is_list() && b.is_list()) {
      List l = a.as_list();
      l.insert(l.end(), b.as_list().begin(), b.as_list().end());
      return l;
    }
    throw mismatch();
  }
  if (op == "*" && (a.is_string() || a.is_list() || b.is_string() || b.is_list())) {
    const Value& seq = a.is_string() || a.is_list() ? a : b;
    const Value& n = &seq == &a ? b : a;
    if (n.is_float() || !n.is_number()) throw mismatch();
    const int64_t times = n.as_int();
    const auto size = static_cast<int64_t>(seq.is_string() ? seq.as_string().size() : seq.as_list().size());
    if (times > 0 && size > 0 && times > (int64_t{1} << 26) / size) {
      throw EvalError("'*' would make a value of more than 2^26 characters or items");
    }
    if (seq.is_string()) {
      std::string s;
      for (int64_t i = 0; i < times; ++i) s += seq.as_string();
      return s;
    }
    List l;
    for (int64_t i = 0; i < times; ++i) l.insert(l.end(), seq.as_list().begin(), seq.as_list().end());
    return l;
  }
  if (op == "%" && a.is_string()) throw EvalError("string formatting with '%' is not supported; use '~' or format()");
  if (!nums) throw mismatch();
  const double x = a.as_float(), y = b.as_float();
  if (op == "-") return ints ? Value(checked('-', a.as_int(), b.as_int())) : Value(x - y);
  if (op == "*") return ints ? Value(checked('*', a.as_int(), b.as_int())) : Value(x * y);
  if ((op == "/" || op == "//" || op == "%") && y == 0) throw EvalError(fmt::format("'{}' divides by zero", op));
  if (op == "/") return x / y;
  if (op == "//" || op == "%") {  // Python floors the quotient; the remainder takes the divisor's sign
    if (ints) {
      const int64_t i = a.as_int(), j = b.as_int();
      if (i == INT64_MIN && j == -1) throw EvalError(fmt::format("the integer result of '{}' is too large", op));
      int64_t q = i / j, m = i % j;
      if (m != 0 && ((m < 0) != (j < 0))) {
        --q;
        m += j;
      }
      return op == "//" ? q : m;
    }
    if (op == "//") return std::floor(x / y);
    double m = std::fmod(x, y);
    if (m != 0 && ((m < 0) != (y < 0))) m += y;
    return m;
  }
  if (op == "**") {
    if (ints && b.as_int() >= 0) {  // by squaring; a square is taken only when a later bit needs it
      int64_t result = 1, base = a.as_int();
      for (int64_t e = b.as_int(); e > 0; e >>= 1) {
        if (e & 1) result = checked('*', result, base, "**");
        if (e > 1) base = checked('*', base, base, "**");
      }
      return result;
    }
    if (x == 0 && y < 0) throw EvalError("'**' raises zero to a negative power");
    return std::pow(x, y);
  }
  throw EvalError(fmt::format("unknown operator '{}'", op));
}

bool compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return equals(a, b);
  if (op == "!=") return !equals(a, b);
  if (op == "<") return less(a, b);
  if (op == ">") return less(b, a);
  if (op == "<=") return !less(b, a);
  if (op == ">=") return !less(a, b);
  if (op == "in") return contains(b, a);
  return !contains(b, a);  // not in
}

class Interpreter {
 public:
  explicit Interpreter(const std::string& source) : source_(source) {}

  RenderOutput run(const Body& body, const Value& context) {
    auto builtin = std::make_shared<Scope>(nullptr);
    for (const auto& [k, v] : globals().items()) builtin->set(k, v);
    auto top = std::make_shared<Scope>(builtin);
    for (const auto& [k, v] : context.as_dict().items()) top->set(k, v);
    exec(body, top, result_.text);
    return std::move(result_);
  }

 private:
  // ---- errors ----
  [[noreturn]] void rethrow(const EvalError& e, int line) const {
    if (dynamic_cast<const RaisedByTemplate*>(&e)) {
      throw ChatTemplateRaised(fmt::format("chat template {}: line {}: the template raised an exception: {}", source_, line, e.what()));
    }
    fail(source_, line, e.what());
  }

  // ---- statements ----
  Flow exec(const Body& body, const ScopePtr& scope, std::string& out) {
    for (const auto& stmt : body) {
      Flow f = Flow::kNormal;
      try {
        f = exec_stmt(*stmt, scope, out);
      } catch (const EvalError& e) {
        rethrow(e, stmt->line);
      }
      if (f != Flow::kNormal) return f;
    }
    return Flow::kNormal;
  }

  Flow exec_stmt(const Stmt& stmt, const ScopePtr& scope, std::string& out) {
    switch (stmt.kind) {
      case StmtKind::kText: out += static_cast<const TextStmt&>(stmt).text; return Flow::kNormal;
      case StmtKind::kOutput: out += to_output(eval(*static_cast<const OutputStmt&>(stmt).expr, scope)); return Flow::kNormal;
      case StmtKind::kIf: {
        const auto& s = static_cast<const IfStmt&>(stmt);
        for (const auto& [condition, body] : s.branches) {
          if (eval(*condition, scope).truthy()) return exec(body, scope, out);
        }
        return exec(s.otherwise, scope, out);
      }
      case StmtKind::kFor: return exec_for(static_cast<const ForStmt&>(stmt), scope, out);
      case StmtKind::kSet: {
        const auto& s = static_cast<const SetStmt&>(stmt);
        Value v = eval(*s.value, scope);
        if (s.attribute.empty()) {
          bind(s.targets, v, *scope);
          return Flow::kNormal;
        }
        const std::string& name = s.targets.names[0];
        const Value* ns = scope->find(name);
        if (!ns || !ns->is_namespace()) {
          throw EvalError(fmt::format("cannot set '{}.{}': '{}' is {}, not a namespace()", name, s.attribute, name,
                                      ns ? describe(*ns) : "undefined"));
        }
        ns->namespace_dict().set(s.attribute, std::move(v));
        return Flow::kNormal;
      }
      case StmtKind::kSetBlock: {
        const auto& s = static_cast<const SetBlockStmt&>(stmt);
        Value v = capture(s.body, scope);
        if (s.filter) v = apply_block_filter(*s.filter, scope, v);
        scope->set(s.name, std::move(v));
        return Flow::kNormal;
      }
      case StmtKind::kMacro: {
        const auto& s = static_cast<const MacroStmt&>(stmt);
        // The macro's scope holds the macro, so it holds its scope weakly (no cycle).
        std::weak_ptr<Scope> home = scope;
        scope->set(s.name, Value(Function([this, &s, home](CallArgs& a) -> Value {
                     const ScopePtr parent = home.lock();
                     if (!parent) throw EvalError(fmt::format("macro '{}' was called after its block ended", s.name));
                     if (macro_depth_ >= kMaxMacroDepth) throw EvalError(fmt::format("macro calls nest deeper than {}", kMaxMacroDepth));
                     ++macro_depth_;
                     auto local = std::make_shared<Scope>(parent);
                     bind_params(s.params, a, local, fmt::format("macro '{}'", s.name));
                     if (a.caller) local->set("caller", *a.caller);
                     std::string text;
                     try {
                       text = capture(s.body, local);
                     } catch (...) {
                       --macro_depth_;
                       throw;
                     }
                     --macro_depth_;
                     return text;
                   })));
        return Flow::kNormal;
      }
      case StmtKind::kCallBlock: {
        const auto& s = static_cast<const CallBlockStmt&>(stmt);
        const Value callee = eval(*s.call->items[0], scope);
        CallArgs args = eval_args(s.call->args, scope);
        args.caller = std::make_shared<const Value>(Function([this, &s, scope](CallArgs& a) -> Value {
          auto local = std::make_shared<Scope>(scope);
          bind_params(s.caller_params, a, local, "caller()");
          return capture(s.body, local);
        }));
        if (!callee.is_function()) throw EvalError(fmt::format("the 'call' statement calls {}, not a macro", describe(callee)));
        out += to_output(callee.as_function()(args));
        return Flow::kNormal;
      }
      case StmtKind::kFilterBlock: {
        const auto& s = static_cast<const FilterBlockStmt&>(stmt);
        out += to_output(apply_block_filter(*s.filter, scope, Value(capture(s.body, scope))));
        return Flow::kNormal;
      }
      case StmtKind::kGeneration: {
        if (capture_depth_ > 0) {
          throw EvalError("a 'generation' block inside a macro, call, set or filter block cannot mark where its text lands");
        }
        const size_t begin = out.size();
        const Flow f = exec(static_cast<const GenerationStmt&>(stmt).body, scope, out);
        result_.generation_spans.emplace_back(begin, out.size());
        return f;
      }
      case StmtKind::kBreak: return Flow::kBreak;
      case StmtKind::kContinue: return Flow::kContinue;
    }
    return Flow::kNormal;
  }

  Flow exec_for(const ForStmt& s, const ScopePtr& scope, std::string& out) {
    List candidates = iterate(eval(*s.iterable, scope));
    auto local = std::make_shared<Scope>(scope);
    List items;
    if (s.condition) {  // Jinja filters first, so loop.index and loop.length count what passed
      for (Value& c : candidates) {
        auto test = std::make_shared<Scope>(local);
        bind(s.targets, c, *test);
        if (eval(*s.condition, test).truthy()) items.push_back(std::move(c));
      }
    } else {
      items = std::move(candidates);
    }
    const auto n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      Dict loop;
      loop.set("index", i + 1);
      loop.set("index0", i);
      loop.set("revindex", n - i);
      loop.set("revindex0", n - i - 1);
      loop.set("first", i == 0);
      loop.set("last", i == n - 1);
      loop.set("length", n);
      loop.set("depth", int64_t{1});
      loop.set("depth0", int64_t{0});
      loop.set("previtem", i > 0 ? items[i - 1] : Value());
      loop.set("nextitem", i + 1 < n ? items[i + 1] : Value());
      loop.set("cycle", Value(Function([i](CallArgs& a) {
                 if (a.args.empty()) throw EvalError("loop.cycle needs at least one value");
                 return a.args[static_cast<size_t>(i) % a.args.size()];
               })));
      // Each pass has its own scope: what the body sets is gone at the next one, as in Jinja.
      auto pass = std::make_shared<Scope>(local);
      pass->set("loop", Value(std::move(loop)));
      bind(s.targets, items[i], *pass);
      if (exec(s.body, pass, out) == Flow::kBreak) break;
    }
    if (items.empty()) return exec(s.otherwise, local, out);
    return Flow::kNormal;
  }

  void bind(const Targets& t, const Value& v, Scope& scope) {
    if (!t.unpack) {
      scope.set(t.names[0], v);
      return;
    }
    const List parts = iterate(v);
    if (parts.size() != t.names.size()) {
      throw EvalError(fmt::format("cannot unpack {} value{} into {} names", parts.size(), parts.size() == 1 ? "" : "s",
                                  t.names.size()));
    }
    for (size_t i = 0; i < parts.size(); ++i) scope.set(t.names[i], parts[i]);
  }

  // Defaults are evaluated last, in the macro's scope, so they see the parameters before them.
  void bind_params(const std::vector<Param>& params, const CallArgs& a, const ScopePtr& scope, const std::string& what) {
    if (a.args.size() > params.size()) {
      throw EvalError(fmt::format("{} takes at most {} argument{}, got {}", what, params.size(), params.size() == 1 ? "" : "s",
                                  a.args.size()));
    }
    std::vector<bool> given(params.size(), false);
    for (size_t i = 0; i < a.args.size(); ++i) {
      scope->set(params[i].name, a.args[i]);
      given[i] = true;
    }
    for (const auto& [name, value] : a.kwargs) {
      size_t i = 0;
      while (i < params.size() && params[i].name != name) ++i;
      if (i == params.size()) throw EvalError(fmt::format("{} has no parameter '{}'", what, name));
      if (given[i]) throw EvalError(fmt::format("{} got two values for '{}'", what, name));
      scope->set(name, value);
      given[i] = true;
    }
    for (size_t i = 0; i < params.size(); ++i) {
      if (!given[i]) scope->set(params[i].name, params[i].default_value ? eval(*params[i].default_value, scope) : Value());
    }
  }

  std::string capture(const Body& body, const ScopePtr& scope) {
    ++capture_depth_;
    std::string text;
    try {
      exec(body, scope, text);
    } catch (...) {
      --capture_depth_;
      throw;
    }
    --capture_depth_;
    return text;
  }

  Value apply_block_filter(const Expr& filter, const ScopePtr& scope, const Value& text) {
    const Value* saved = block_text_;
    block_text_ = &text;
    Value v = eval(filter, scope);
    block_text_ = saved;
    return v;
  }

  // ---- expressions ----
  Value eval(const Expr& e, const ScopePtr& scope) {
    try {
      return eval_expr(e, scope);
    } catch (const EvalError& err) {
      rethrow(err, e.line);
    }
  }

  CallArgs eval_args(const std::vector<Arg>& args, const ScopePtr& scope) {
    CallArgs a;
    for (const Arg& arg : args) {
      if (arg.keyword.empty()) {
        a.args.push_back(eval(*arg.value, scope));
      } else {
        a.kwargs.emplace_back(arg.keyword, eval(*arg.value, scope));
      }
    }
    return a;
  }

  Value eval_expr(const Expr& e, const ScopePtr& scope) {
    switch (e.kind) {
      case ExprKind::kLiteral: return e.literal;
      case ExprKind::kName: {
        const Value* v = scope->find(e.name);
        return v ? *v : Value();
      }
      case ExprKind::kList:
      case ExprKind::kTuple: {
        List l;
        for (const auto& item : e.items) l.push_back(eval(*item, scope));
        return l;
      }
      case ExprKind::kDict: {
        Dict d;
        for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
          const Value key = eval(*e.items[i], scope);
          if (!key.is_string()) throw EvalError(fmt::format("a dict key must be a string, not {}", describe(key)));
          d.set(key.as_string(), eval(*e.items[i + 1], scope));
        }
        return d;
      }
      case ExprKind::kUnary: {
        const Value v = eval(*e.items[0], scope);
        if (!v.is_number()) throw EvalError(fmt::format("unary '{}' takes a number, not {}", e.name, describe(v)));
        if (e.name == "+") return v.is_float() ? v : Value(v.as_int());
        if (v.is_float()) return -v.as_float();
        if (v.as_int() == INT64_MIN) throw EvalError("the integer result of unary '-' is too large");
        return -v.as_int();
      }
      case ExprKind::kNot: return !eval(*e.items[0], scope).truthy();
      case ExprKind::kAnd: {
        Value a = eval(*e.items[0], scope);
        return a.truthy() ? eval(*e.items[1], scope) : a;
      }
      case ExprKind::kOr: {
        Value a = eval(*e.items[0], scope);
        return a.truthy() ? a : eval(*e.items[1], scope);
      }
      case ExprKind::kBinary: {
        const Value a = eval(*e.items[0], scope), b = eval(*e.items[1], scope);
        if (e.name == "~") return to_output(a) + to_output(b);
        return binary_op(e.name, a, b);
      }
      case ExprKind::kCompare: {
        Value left = eval(*e.items[0], scope);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value right = eval(*e.items[i + 1], scope);
          if (!compare(e.ops[i], left, right)) return false;
          left = std::move(right);
        }
        return true;
      }
      case ExprKind::kAttr: return get_attribute(eval(*e.items[0], scope), e.name);
      case ExprKind::kItem: return get_item(eval(*e.items[0], scope), eval(*e.items[1], scope));
      case ExprKind::kSlice: {
        const auto part = [&](size_t i) { return e.items[i] ? eval(*e.items[i], scope) : Value(); };
        return get_slice(eval(*e.items[0], scope), part(1), part(2), part(3));
      }
      case ExprKind::kCall: {
        const Expr& callee_expr = *e.items[0];
        const Value callee = eval(callee_expr, scope);
        CallArgs args = eval_args(e.args, scope);
        if (!callee.is_function()) {
          const std::string name = callee_expr.kind == ExprKind::kName ? callee_expr.name
                                   : callee_expr.kind == ExprKind::kAttr ? "." + callee_expr.name
                                                                        : "";
          throw EvalError(name.empty() ? fmt::format("cannot call {}", describe(callee))
                                       : fmt::format("cannot call '{}': it is {}", name, describe(callee)));
        }
        return callee.as_function()(args);
      }
      case ExprKind::kFilter: {
        Value operand = e.items[0] ? eval(*e.items[0], scope) : block_text_ ? *block_text_ : Value();
        return apply_filter(e.name, operand, eval_args(e.args, scope));
      }
      case ExprKind::kTest: {
        const Value operand = eval(*e.items[0], scope);
        return apply_test(e.name, operand, eval_args(e.args, scope)) != e.negated;
      }
      case ExprKind::kCond: {
        if (eval(*e.items[1], scope).truthy()) return eval(*e.items[0], scope);
        return e.items[2] ? eval(*e.items[2], scope) : Value();
      }
    }
    return Value();
  }

  const std::string& source_;
  RenderOutput result_;
  int capture_depth_ = 0;  // > 0 while rendering into a buffer that is not the output
  int macro_depth_ = 0;
  const Value* block_text_ = nullptr;  // the text a {% filter %} or {% set x | f %} block filters
};

}  // namespace

RenderOutput render(const Body& body, const Value& context, const std::string& source_name) {
  if (!context.is_dict()) {
    throw FormatError(fmt::format("chat template {}: the context must be a JSON object of variables, not {}", source_name,
                                  describe(context)));
  }
  return Interpreter(source_name).run(body, context);
}

}  // namespace bb::jinja
