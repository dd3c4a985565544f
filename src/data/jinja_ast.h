// The syntax tree of a chat template: expressions (Expr) and statements (Stmt), each with
// the line it starts on, so that errors at render time can name it.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/jinja_value.h"

namespace bb::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Arg {
  std::string keyword;  // empty for a positional argument
  ExprPtr value;
};

enum class ExprKind {
  kLiteral,  // literal
  kName,     // name
  kList,     // items: the elements
  kTuple,    // items: the elements
  kDict,     // items: key0, value0, key1, value1, ...
  kUnary,    // name: "-" or "+"; items: {operand}
  kNot,      // items: {operand}
  kBinary,   // name: + - * / // % ** ~; items: {left, right}
  kAnd,      // items: {left, right}
  kOr,       // items: {left, right}
  kCompare,  // items: operands; ops: == != < > <= >= in "not in" between them (chained as Python)
  kAttr,     // items: {object}; name: the attribute (a.b, a.0)
  kItem,     // items: {object, key}
  kSlice,    // items: {object, start, stop, step}, each of the last three null when omitted
  kCall,     // items: {callee}; args
  kFilter,   // items: {operand} (null inside {% filter %}: the block's text); name; args
  kTest,     // items: {operand}; name; args; negated for `is not`
  kCond,     // items: {then, condition, otherwise (null: undefined)}
};

struct Expr {
  ExprKind kind;
  int line = 0;
  Value literal;
  std::string name;
  std::vector<ExprPtr> items;
  std::vector<std::string> ops;
  std::vector<Arg> args;
  bool negated = false;
};

enum class StmtKind { kText, kOutput, kIf, kFor, kSet, kSetBlock, kMacro, kCallBlock, kFilterBlock, kGeneration, kBreak, kContinue };

struct Stmt {
  explicit Stmt(StmtKind k, int l) : kind(k), line(l) {}
  virtual ~Stmt() = default;
  StmtKind kind;
  int line;
};
using Body = std::vector<std::unique_ptr<Stmt>>;

struct TextStmt : Stmt {
  using Stmt::Stmt;
  std::string text;
};
struct OutputStmt : Stmt {  // {{ expr }}
  using Stmt::Stmt;
  ExprPtr expr;
};
struct IfStmt : Stmt {  // if / elif ... / else
  using Stmt::Stmt;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body otherwise;
};
// The names a for loop or a set binds: one name, or several unpacked from each item.
struct Targets {
  std::vector<std::string> names;
  bool unpack = false;
};
struct ForStmt : Stmt {
  using Stmt::Stmt;
  Targets targets;
  ExprPtr iterable;
  ExprPtr condition;  // `for x in xs if condition`; may be null
  Body body;
  Body otherwise;  // {% else %}: when no item passed
};
struct SetStmt : Stmt {  // {% set a = v %}, {% set a, b = v %}, {% set ns.attr = v %}
  using Stmt::Stmt;
  Targets targets;
  std::string attribute;  // set: the namespace is targets.names[0]
  ExprPtr value;
};
struct SetBlockStmt : Stmt {  // {% set a %}...{% endset %}, optionally {% set a | filter %}
  using Stmt::Stmt;
  std::string name;
  ExprPtr filter;  // a kFilter chain whose innermost operand is null; may be null
  Body body;
};
struct Param {
  std::string name;
  ExprPtr default_value;  // may be null
};
struct MacroStmt : Stmt {
  using Stmt::Stmt;
  std::string name;
  std::vector<Param> params;
  Body body;
};
struct CallBlockStmt : Stmt {  // {% call(params) macro(args) %}body{% endcall %}
  using Stmt::Stmt;
  std::vector<Param> caller_params;
  ExprPtr call;
  Body body;
};
struct FilterBlockStmt : Stmt {  // {% filter upper %}...{% endfilter %}
  using Stmt::Stmt;
  ExprPtr filter;  // a kFilter chain whose innermost operand is null
  Body body;
};
struct GenerationStmt : Stmt {  // {% generation %}...{% endgeneration %}: the assistant's tokens
  using Stmt::Stmt;
  Body body;
};

}  // namespace bb::jinja
