// The chat-template parser: recursive descent over the lexer's tokens, one function per
// level of Jinja's precedence (conditional, or, and, not, comparison, + -, ~, * / // %, **,
// unary, postfix with filters and tests), and one per statement.
#include "data/jinja_parser.h"

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>
#include <utility>

#include "data/jinja_builtins.h"
#include "data/jinja_error.h"

namespace bb::jinja {
namespace {

ExprPtr make(ExprKind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

template <class T>
std::unique_ptr<T> make_stmt(StmtKind kind, int line) {
  return std::make_unique<T>(kind, line);
}

// Deeper nesting than any template needs is refused rather than allowed to exhaust the stack.
constexpr int kMaxDepth = 200;

bool contains(std::initializer_list<std::string_view> names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, const std::string& source) : t_(tokens), source_(source) {}

  Body parse_template() {
    Body body = parse_body({}, nullptr, 0);
    return body;
  }

 private:
  // ---- tokens ----
  const Token& peek(size_t ahead = 0) const { return t_[std::min(i_ + ahead, t_.size() - 1)]; }
  const Token& next() { return t_[std::min(i_++, t_.size() - 1)]; }
  bool is_op(const char* op, size_t ahead = 0) const {
    return peek(ahead).kind == TokenKind::kOperator && peek(ahead).text == op;
  }
  bool is_name(const char* name, size_t ahead = 0) const {
    return peek(ahead).kind == TokenKind::kName && peek(ahead).text == name;
  }
  bool accept_op(const char* op) {
    if (!is_op(op)) return false;
    ++i_;
    return true;
  }
  bool accept_name(const char* name) {
    if (!is_name(name)) return false;
    ++i_;
    return true;
  }

  static std::string describe(const Token& t) {
    switch (t.kind) {
      case TokenKind::kText: return "template text";
      case TokenKind::kExprBegin: return "'{{'";
      case TokenKind::kExprEnd: return "'}}'";
      case TokenKind::kBlockBegin: return "'{%'";
      case TokenKind::kBlockEnd: return "'%}'";
      case TokenKind::kString: return "a string";
      case TokenKind::kEnd: return "the end of the template";
      default: return "'" + t.text + "'";
    }
  }
  [[noreturn]] void unexpected(const std::string& expected) const {
    fail(source_, peek().line, fmt::format("expected {} but found {}", expected, describe(peek())));
  }
  void expect_op(const char* op) {
    if (!accept_op(op)) unexpected(fmt::format("'{}'", op));
  }
  std::string expect_name(const char* what) {
    if (peek().kind != TokenKind::kName) unexpected(what);
    return next().text;
  }
  void expect_block_end(const char* statement) {
    if (peek().kind != TokenKind::kBlockEnd) {
      fail(source_, peek().line, fmt::format("expected '%}}' to end the '{}' tag but found {}", statement, describe(peek())));
    }
    ++i_;
  }

  // ---- statements ----

  // Statements up to a tag `{% name` with name in `ends` (consumed: the name is returned and
  // pos_ stands after it). `opener` names the block being read, for the error at the end.
  Body parse_body(std::initializer_list<std::string_view> ends, const char* opener, int open_line,
                  std::string* end_found = nullptr) {
    Body body;
    while (true) {
      const Token& t = peek();
      switch (t.kind) {
        case TokenKind::kEnd:
          if (opener) {
            fail(source_, open_line, fmt::format("the '{}' block is never closed (expected '{{% end{} %}}')", opener, opener));
          }
          return body;
        case TokenKind::kText: {
          auto s = make_stmt<TextStmt>(StmtKind::kText, t.line);
          s->text = t.text;
          body.push_back(std::move(s));
          ++i_;
          break;
        }
        case TokenKind::kExprBegin: {
          ++i_;
          auto s = make_stmt<OutputStmt>(StmtKind::kOutput, t.line);
          s->expr = parse_tuple_or_expression(true);
          if (peek().kind != TokenKind::kExprEnd) unexpected("'}}'");
          ++i_;
          body.push_back(std::move(s));
          break;
        }
        case TokenKind::kBlockBegin: {
          if (peek(1).kind != TokenKind::kName) {
            fail(source_, t.line, fmt::format("expected a statement name after '{{%' but found {}", describe(peek(1))));
          }
          const std::string& name = peek(1).text;
          if (contains(ends, name)) {
            i_ += 2;
            if (end_found) *end_found = name;
            return body;
          }
          body.push_back(parse_statement(opener, open_line));
          break;
        }
        default: unexpected("template text or a tag");
      }
    }
  }

  // Counts the nesting of statements and expressions while one is parsed.
  struct DepthGuard {
    DepthGuard(Parser& p, int line) : p_(p) {
      if (++p_.depth_ > kMaxDepth) fail(p_.source_, line, fmt::format("the template nests deeper than {} levels", kMaxDepth));
    }
    ~DepthGuard() { --p_.depth_; }
    Parser& p_;
  };

  std::unique_ptr<Stmt> parse_statement(const char* inside, int inside_line) {
    const DepthGuard guard(*this, peek().line);
    const int line = next().line;  // {%
    const std::string name = next().text;
    if (name == "if") return parse_if(line);
    if (name == "for") return parse_for(line);
    if (name == "set") return parse_set(line);
    if (name == "macro") return parse_macro(line);
    if (name == "call") return parse_call_block(line);
    if (name == "filter") return parse_filter_block(line);
    if (name == "generation") {
      expect_block_end("generation");
      auto s = make_stmt<GenerationStmt>(StmtKind::kGeneration, line);
      s->body = parse_body({"endgeneration"}, "generation", line);
      expect_block_end("endgeneration");
      return s;
    }
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) fail(source_, line, fmt::format("'{}' outside a for loop", name));
      expect_block_end(name.c_str());
      return make_stmt<Stmt>(name == "break" ? StmtKind::kBreak : StmtKind::kContinue, line);
    }
    if (contains({"include", "import", "from", "extends", "block", "raw", "with", "do", "autoescape", "trans"}, name)) {
      fail(source_, line, fmt::format("unsupported statement '{}'", name));
    }
    if (contains({"elif", "else", "endif", "endfor", "endset", "endmacro", "endcall", "endfilter", "endgeneration"}, name)) {
      if (inside) {
        fail(source_, line, fmt::format("unexpected '{}' inside the '{}' block opened on line {}", name, inside, inside_line));
      }
      fail(source_, line, fmt::format("unexpected '{}' with no open block", name));
    }
    fail(source_, line, fmt::format("unknown statement '{}'", name));
  }

  // The body of a macro, call, set or filter block: rendered on its own, so a loop around the
  // block is not one that `break` inside it could leave.
  Body parse_captured_body(const char* end, const char* opener, int line) {
    const int loop_depth = std::exchange(loop_depth_, 0);
    Body body = parse_body({end}, opener, line);
    loop_depth_ = loop_depth;
    return body;
  }

  std::unique_ptr<Stmt> parse_if(int line) {
    auto s = make_stmt<IfStmt>(StmtKind::kIf, line);
    std::string end;
    ExprPtr condition = parse_expression(true);
    expect_block_end("if");
    while (true) {
      Body body = parse_body({"elif", "else", "endif"}, "if", line, &end);
      s->branches.emplace_back(std::move(condition), std::move(body));
      if (end != "elif") break;
      condition = parse_expression(true);
      expect_block_end("elif");
    }
    if (end == "else") {
      expect_block_end("else");
      s->otherwise = parse_body({"endif"}, "if", line);
    }
    expect_block_end("endif");
    return s;
  }

  Targets parse_targets(const char* statement) {
    Targets t;
    const bool paren = accept_op("(");
    do {
      if (paren && is_op(")")) break;
      t.names.push_back(expect_name(fmt::format("a variable name in the '{}' statement", statement).c_str()));
    } while (accept_op(","));
    t.unpack = t.names.size() > 1 || paren;
    if (paren) expect_op(")");
    return t;
  }

  std::unique_ptr<Stmt> parse_for(int line) {
    auto s = make_stmt<ForStmt>(StmtKind::kFor, line);
    s->targets = parse_targets("for");
    if (!accept_name("in")) unexpected("'in'");
    s->iterable = parse_tuple_or_expression(false);
    if (accept_name("if")) s->condition = parse_expression(true);
    if (is_name("recursive")) fail(source_, peek().line, "unsupported loop modifier 'recursive'");
    expect_block_end("for");
    std::string end;
    ++loop_depth_;
    s->body = parse_body({"else", "endfor"}, "for", line, &end);
    --loop_depth_;
    if (end == "else") {
      expect_block_end("else");
      s->otherwise = parse_body({"endfor"}, "for", line);
    }
    expect_block_end("endfor");
    return s;
  }

  std::unique_ptr<Stmt> parse_set(int line) {
    if (peek().kind == TokenKind::kName && !is_op(".", 1) && !is_op(",", 1) && !is_op("=", 1)) {
      auto s = make_stmt<SetBlockStmt>(StmtKind::kSetBlock, line);
      s->name = next().text;
      if (accept_op("|")) s->filter = parse_filter_chain(nullptr);
      expect_block_end("set");
      s->body = parse_captured_body("endset", "set", line);
      expect_block_end("endset");
      return s;
    }
    auto s = make_stmt<SetStmt>(StmtKind::kSet, line);
    if (peek().kind == TokenKind::kName && is_op(".", 1)) {
      s->targets.names.push_back(next().text);
      ++i_;
      s->attribute = expect_name("an attribute name after '.'");
    } else {
      s->targets = parse_targets("set");
    }
    expect_op("=");
    s->value = parse_tuple_or_expression(true);
    expect_block_end("set");
    return s;
  }

  std::vector<Param> parse_params(const char* statement) {
    std::vector<Param> params;
    expect_op("(");
    while (!accept_op(")")) {
      Param p;
      p.name = expect_name(fmt::format("a parameter name in the '{}' statement", statement).c_str());
      if (accept_op("=")) p.default_value = parse_expression(true);
      params.push_back(std::move(p));
      if (!is_op(")")) expect_op(",");
    }
    return params;
  }

  std::unique_ptr<Stmt> parse_macro(int line) {
    auto s = make_stmt<MacroStmt>(StmtKind::kMacro, line);
    s->name = expect_name("a macro name");
    s->params = parse_params("macro");
    expect_block_end("macro");
    s->body = parse_captured_body("endmacro", "macro", line);
    if (peek().kind == TokenKind::kName) ++i_;  // {% endmacro name %}
    expect_block_end("endmacro");
    return s;
  }

  std::unique_ptr<Stmt> parse_call_block(int line) {
    auto s = make_stmt<CallBlockStmt>(StmtKind::kCallBlock, line);
    if (is_op("(")) s->caller_params = parse_params("call");
    s->call = parse_expression(true);
    if (s->call->kind != ExprKind::kCall) fail(source_, line, "the 'call' statement needs a macro call, as in {% call m() %}");
    expect_block_end("call");
    s->body = parse_captured_body("endcall", "call", line);
    expect_block_end("endcall");
    return s;
  }

  std::unique_ptr<Stmt> parse_filter_block(int line) {
    auto s = make_stmt<FilterBlockStmt>(StmtKind::kFilterBlock, line);
    s->filter = parse_filter_chain(nullptr);
    expect_block_end("filter");
    s->body = parse_captured_body("endfilter", "filter", line);
    expect_block_end("endfilter");
    return s;
  }

  // ---- expressions ----

  // An expression, or several separated by commas (a tuple), as after `{{`, `in` or `=`.
  ExprPtr parse_tuple_or_expression(bool with_condition) {
    const int line = peek().line;
    ExprPtr first = parse_expression(with_condition);
    if (!is_op(",")) return first;
    ExprPtr tuple = make(ExprKind::kTuple, line);
    tuple->items.push_back(std::move(first));
    while (accept_op(",")) {
      if (peek().kind == TokenKind::kBlockEnd || peek().kind == TokenKind::kExprEnd) break;
      tuple->items.push_back(parse_expression(with_condition));
    }
    return tuple;
  }

  ExprPtr parse_expression(bool with_condition) { return with_condition ? parse_conditional() : parse_or(); }

  ExprPtr parse_conditional() {
    ExprPtr then = parse_or();
    while (is_name("if")) {
      const int line = next().line;
      ExprPtr e = make(ExprKind::kCond, line);
      ExprPtr condition = parse_or();
      ExprPtr otherwise = accept_name("else") ? parse_conditional() : nullptr;
      e->items.push_back(std::move(then));
      e->items.push_back(std::move(condition));
      e->items.push_back(std::move(otherwise));
      then = std::move(e);
    }
    return then;
  }

  ExprPtr binary(ExprKind kind, const std::string& op, int line, ExprPtr a, ExprPtr b) {
    ExprPtr e = make(kind, line);
    e->name = op;
    e->items.push_back(std::move(a));
    e->items.push_back(std::move(b));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      const int line = next().line;
      left = binary(ExprKind::kOr, "or", line, std::move(left), parse_and());
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      const int line = next().line;
      left = binary(ExprKind::kAnd, "and", line, std::move(left), parse_not());
    }
    return left;
  }

  ExprPtr parse_not() {
    const DepthGuard guard(*this, peek().line);
    if (is_name("not")) {
      ExprPtr e = make(ExprKind::kNot, next().line);
      e->items.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const int line = peek().line;
    ExprPtr first = parse_math1();
    ExprPtr e;
    while (true) {
      std::string op;
      if (peek().kind == TokenKind::kOperator && contains({"==", "!=", "<", ">", "<=", ">="}, peek().text)) {
        op = next().text;
      } else if (is_name("in")) {
        ++i_;
        op = "in";
      } else if (is_name("not") && is_name("in", 1)) {
        i_ += 2;
        op = "not in";
      } else {
        break;
      }
      if (!e) {
        e = make(ExprKind::kCompare, line);
        e->items.push_back(std::move(first));
      }
      e->ops.push_back(op);
      e->items.push_back(parse_math1());
    }
    return e ? std::move(e) : std::move(first);
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& op = next();
      left = binary(ExprKind::kBinary, op.text, op.line, std::move(left), parse_concat());
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (is_op("~")) {
      const int line = next().line;
      left = binary(ExprKind::kBinary, "~", line, std::move(left), parse_math2());
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& op = next();
      left = binary(ExprKind::kBinary, op.text, op.line, std::move(left), parse_pow());
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      const int line = next().line;
      left = binary(ExprKind::kBinary, "**", line, std::move(left), parse_unary(true));
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    const DepthGuard guard(*this, peek().line);
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      const Token& op = next();
      node = make(ExprKind::kUnary, op.line);
      node->name = op.text;
      node->items.push_back(parse_unary(false));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filters_and_tests(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& t = next();
    switch (t.kind) {
      case TokenKind::kName: {
        static const std::pair<const char*, Value> kLiterals[] = {{"true", Value(true)},   {"True", Value(true)},
                                                                  {"false", Value(false)}, {"False", Value(false)},
                                                                  {"none", Value(None{})}, {"None", Value(None{})}};
        for (const auto& [name, value] : kLiterals) {
          if (t.text == name) {
            ExprPtr e = make(ExprKind::kLiteral, t.line);
            e->literal = value;
            return e;
          }
        }
        ExprPtr e = make(ExprKind::kName, t.line);
        e->name = t.text;
        return e;
      }
      case TokenKind::kString: {
        std::string s = t.text;
        while (peek().kind == TokenKind::kString) s += next().text;  // 'a' 'b' is 'ab', as in Python
        ExprPtr e = make(ExprKind::kLiteral, t.line);
        e->literal = Value(std::move(s));
        return e;
      }
      case TokenKind::kInt:
      case TokenKind::kFloat: {
        ExprPtr e = make(ExprKind::kLiteral, t.line);
        e->literal = t.kind == TokenKind::kInt ? Value(t.int_value) : Value(t.float_value);
        return e;
      }
      case TokenKind::kOperator:
        if (t.text == "(") {
          if (accept_op(")")) return make(ExprKind::kTuple, t.line);
          ExprPtr e = parse_expression(true);
          if (is_op(",")) {
            ExprPtr tuple = make(ExprKind::kTuple, t.line);
            tuple->items.push_back(std::move(e));
            while (accept_op(",") && !is_op(")")) tuple->items.push_back(parse_expression(true));
            e = std::move(tuple);
          }
          expect_op(")");
          return e;
        }
        if (t.text == "[") {
          ExprPtr e = make(ExprKind::kList, t.line);
          while (!accept_op("]")) {
            e->items.push_back(parse_expression(true));
            if (!is_op("]")) expect_op(",");
          }
          return e;
        }
        if (t.text == "{") {
          ExprPtr e = make(ExprKind::kDict, t.line);
          while (!accept_op("}")) {
            e->items.push_back(parse_expression(true));
            expect_op(":");
            e->items.push_back(parse_expression(true));
            if (!is_op("}")) expect_op(",");
          }
          return e;
        }
        break;
      default: break;
    }
    --i_;
    unexpected("an expression");
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".")) {
        const int line = next().line;
        ExprPtr e = make(ExprKind::kAttr, line);
        if (peek().kind == TokenKind::kInt) {  // a.0 is a[0]
          e->kind = ExprKind::kItem;
          e->items.push_back(std::move(node));
          ExprPtr index = make(ExprKind::kLiteral, line);
          index->literal = Value(next().int_value);
          e->items.push_back(std::move(index));
        } else {
          e->name = expect_name("an attribute name after '.'");
          e->items.push_back(std::move(node));
        }
        node = std::move(e);
      } else if (is_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr object) {
    const int line = next().line;  // [
    ExprPtr start;
    if (!is_op(":")) {
      start = parse_expression(true);
      if (accept_op("]")) {
        ExprPtr e = make(ExprKind::kItem, line);
        e->items.push_back(std::move(object));
        e->items.push_back(std::move(start));
        return e;
      }
    }
    ExprPtr e = make(ExprKind::kSlice, line);
    expect_op(":");
    ExprPtr stop = is_op("]") || is_op(":") ? nullptr : parse_expression(true);
    ExprPtr step;
    if (accept_op(":") && !is_op("]")) step = parse_expression(true);
    expect_op("]");
    e->items.push_back(std::move(object));
    e->items.push_back(std::move(start));
    e->items.push_back(std::move(stop));
    e->items.push_back(std::move(step));
    return e;
  }

  std::vector<Arg> parse_args() {
    std::vector<Arg> args;
    expect_op("(");
    while (!accept_op(")")) {
      if (is_op("*") || is_op("**")) fail(source_, peek().line, "unsupported argument unpacking with '*' or '**'");
      Arg a;
      if (peek().kind == TokenKind::kName && is_op("=", 1)) {
        a.keyword = next().text;
        ++i_;
      } else if (!args.empty() && !args.back().keyword.empty()) {
        fail(source_, peek().line, "a positional argument follows a keyword argument");
      }
      a.value = parse_expression(true);
      args.push_back(std::move(a));
      if (!is_op(")")) expect_op(",");
    }
    return args;
  }

  ExprPtr parse_call(ExprPtr callee) {
    ExprPtr e = make(ExprKind::kCall, peek().line);
    e->items.push_back(std::move(callee));
    e->args = parse_args();
    return e;
  }

  ExprPtr parse_filters_and_tests(ExprPtr node) {
    while (true) {
      if (accept_op("|")) {
        node = parse_filter_chain(std::move(node), false);
      } else if (is_name("is")) {
        node = parse_test(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  // One filter after '|' (`chain`: and those after it, for {% filter %} and {% set x | f %}).
  ExprPtr parse_filter_chain(ExprPtr operand, bool chain = true) {
    const int line = peek().line;
    ExprPtr e = make(ExprKind::kFilter, line);
    e->name = expect_name("a filter name after '|'");
    while (accept_op(".")) e->name += "." + expect_name("a filter name after '.'");
    if (!has_filter(e->name)) fail(source_, line, fmt::format("unknown filter '{}'", e->name));
    if (is_op("(")) e->args = parse_args();
    e->items.push_back(std::move(operand));
    if (chain && accept_op("|")) return parse_filter_chain(std::move(e));
    return e;
  }

  ExprPtr parse_test(ExprPtr operand) {
    const int line = next().line;  // is
    ExprPtr e = make(ExprKind::kTest, line);
    e->negated = accept_name("not");
    if (peek().kind == TokenKind::kName) {
      e->name = next().text;
    } else if (peek().kind == TokenKind::kOperator && contains({"==", "!=", "<", ">", "<=", ">="}, peek().text)) {
      e->name = next().text;
    } else {
      unexpected("a test name after 'is'");
    }
    if (!has_test(e->name)) fail(source_, line, fmt::format("unknown test '{}'", e->name));
    e->items.push_back(std::move(operand));
    const Token& t = peek();
    if (is_op("(")) {
      e->args = parse_args();
    } else if ((t.kind == TokenKind::kName && !contains({"else", "or", "and", "if", "is", "in", "not"}, t.text)) ||
               t.kind == TokenKind::kString || t.kind == TokenKind::kInt || t.kind == TokenKind::kFloat ||
               is_op("[") || is_op("{")) {
      Arg a;  // `x is divisibleby 3`, `x is sameas none`: one argument without parentheses
      a.value = parse_postfix(parse_primary());
      e->args.push_back(std::move(a));
    }
    return e;
  }

  const std::vector<Token>& t_;
  const std::string& source_;
  size_t i_ = 0;
  int loop_depth_ = 0;  // for loops around the statement being parsed
  int depth_ = 0;       // statements and expressions being parsed, one inside the other
};

}  // namespace

Body parse(const std::vector<Token>& tokens, const std::string& source_name) {
  return Parser(tokens, source_name).parse_template();
}

}  // namespace bb::jinja
