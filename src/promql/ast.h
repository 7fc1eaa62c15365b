#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "promql/labels.h"

namespace llmscope::promql {

enum class ValueType { kNone, kScalar, kVector, kMatrix, kString };
// "scalar", "instant vector", "range vector", "string" (Prometheus' wording in errors).
const char* ValueTypeDocName(ValueType t);

enum class BinOp {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kPow,
  kAtan2,
  kEql,
  kNeq,
  kGtr,
  kLss,
  kGte,
  kLte,
  kAnd,
  kOr,
  kUnless,
};
const char* BinOpName(BinOp op);
inline bool IsComparison(BinOp op) { return op >= BinOp::kEql && op <= BinOp::kLte; }
inline bool IsSetOp(BinOp op) { return op >= BinOp::kAnd; }

enum class AggOp {
  kSum,
  kAvg,
  kCount,
  kMin,
  kMax,
  kGroup,
  kStddev,
  kStdvar,
  kTopk,
  kBottomk,
  kCountValues,
  kQuantile,
};

enum class Cardinality { kOneToOne, kManyToOne, kOneToMany, kManyToMany };

struct VectorMatching {
  Cardinality card = Cardinality::kOneToOne;
  bool on = false;                   // on(...) rather than ignoring(...)
  std::vector<std::string> labels;   // the on/ignoring list
  std::vector<std::string> include;  // group_left/group_right extra labels
};

struct FunctionInfo;

// @ modifier: a fixed time, or the query's start()/end().
enum class AtKind { kNone, kTime, kStart, kEnd };

// A node of a parsed expression. One struct for every kind keeps the tree simple; only the
// fields listed for a kind are meaningful.
// Thread-safety: immutable after parsing; shared freely between evaluations.
struct Expr {
  enum class Kind {
    kNumber,          // number
    kString,          // str
    kVectorSelector,  // name, matchers, offset_ms, at
    kMatrixSelector,  // as kVectorSelector plus range_ms
    kSubquery,        // args[0], range_ms, step_ms (0: default), offset_ms, at
    kCall,            // func, args
    kAggregate,       // agg, grouping, without, param (may be null), args[0]
    kBinary,          // bin, args[0..1], return_bool, matching (vector/vector only)
    kUnary,           // negate, args[0]
    kParen,           // args[0]
  };
  Kind kind = Kind::kNumber;
  int pos = 0;  // byte offset of the node's first character in the query
  int end = 0;  // byte offset just past it

  double number = 0;
  std::string str;

  std::string name;  // metric name of a selector, "" when absent
  std::vector<LabelMatcher> matchers;
  int64_t offset_ms = 0;
  AtKind at = AtKind::kNone;
  int64_t at_ms = 0;
  int64_t range_ms = 0;
  int64_t step_ms = 0;

  const FunctionInfo* func = nullptr;
  std::vector<std::unique_ptr<Expr>> args;

  AggOp agg = AggOp::kSum;
  std::vector<std::string> grouping;
  bool without = false;
  std::unique_ptr<Expr> param;

  BinOp bin = BinOp::kAdd;
  bool return_bool = false;
  std::optional<VectorMatching> matching;

  bool negate = false;

  ValueType type() const;
  // A readable rendering of the expression (Prometheus-like, normalised spacing).
  std::string ToString() const;
};

struct FunctionInfo {
  const char* name;
  std::vector<ValueType> arg_types;
  int variadic;  // 0: exact; n > 0: up to n optional trailing args; -1: unbounded
  ValueType return_type;
};

// The function table, or nullptr for an unknown name.
const FunctionInfo* LookupFunction(std::string_view name);

}  // namespace llmscope::promql
