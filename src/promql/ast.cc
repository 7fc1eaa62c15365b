#include "promql/ast.h"

#include <string>

#include "promql/parser.h"
#include "promql/value.h"

namespace llmscope::promql {
namespace {

using VT = ValueType;

// The supported functions with Prometheus' signatures (promql/parser/functions.go).
const FunctionInfo kFunctions[] = {
    {"abs", {VT::kVector}, 0, VT::kVector},
    {"absent", {VT::kVector}, 0, VT::kVector},
    {"absent_over_time", {VT::kMatrix}, 0, VT::kVector},
    {"acos", {VT::kVector}, 0, VT::kVector},
    {"acosh", {VT::kVector}, 0, VT::kVector},
    {"asin", {VT::kVector}, 0, VT::kVector},
    {"asinh", {VT::kVector}, 0, VT::kVector},
    {"atan", {VT::kVector}, 0, VT::kVector},
    {"atanh", {VT::kVector}, 0, VT::kVector},
    {"avg_over_time", {VT::kMatrix}, 0, VT::kVector},
    {"ceil", {VT::kVector}, 0, VT::kVector},
    {"changes", {VT::kMatrix}, 0, VT::kVector},
    {"clamp", {VT::kVector, VT::kScalar, VT::kScalar}, 0, VT::kVector},
    {"clamp_max", {VT::kVector, VT::kScalar}, 0, VT::kVector},
    {"clamp_min", {VT::kVector, VT::kScalar}, 0, VT::kVector},
    {"cos", {VT::kVector}, 0, VT::kVector},
    {"cosh", {VT::kVector}, 0, VT::kVector},
    {"count_over_time", {VT::kMatrix}, 0, VT::kVector},
    {"days_in_month", {VT::kVector}, 1, VT::kVector},
    {"day_of_month", {VT::kVector}, 1, VT::kVector},
    {"day_of_week", {VT::kVector}, 1, VT::kVector},
    {"day_of_year", {VT::kVector}, 1, VT::kVector},
    {"deg", {VT::kVector}, 0, VT::kVector},
    {"delta", {VT::kMatrix}, 0, VT::kVector},
    {"deriv", {VT::kMatrix}, 0, VT::kVector},
    {"exp", {VT::kVector}, 0, VT::kVector},
    {"floor", {VT::kVector}, 0, VT::kVector},
    {"histogram_quantile", {VT::kScalar, VT::kVector}, 0, VT::kVector},
    {"hour", {VT::kVector}, 1, VT::kVector},
    {"idelta", {VT::kMatrix}, 0, VT::kVector},
    {"increase", {VT::kMatrix}, 0, VT::kVector},
    {"irate", {VT::kMatrix}, 0, VT::kVector},
    {"label_join", {VT::kVector, VT::kString, VT::kString, VT::kString}, -1, VT::kVector},
    {"label_replace",
     {VT::kVector, VT::kString, VT::kString, VT::kString, VT::kString},
     0,
     VT::kVector},
    {"last_over_time", {VT::kMatrix}, 0, VT::kVector},
    {"ln", {VT::kVector}, 0, VT::kVector},
    {"log10", {VT::kVector}, 0, VT::kVector},
    {"log2", {VT::kVector}, 0, VT::kVector},
    {"max_over_time", {VT::kMatrix}, 0, VT::kVector},
    {"min_over_time", {VT::kMatrix}, 0, VT::kVector},
    {"minute", {VT::kVector}, 1, VT::kVector},
    {"month", {VT::kVector}, 1, VT::kVector},
    {"pi", {}, 0, VT::kScalar},
    {"predict_linear", {VT::kMatrix, VT::kScalar}, 0, VT::kVector},
    {"present_over_time", {VT::kMatrix}, 0, VT::kVector},
    {"quantile_over_time", {VT::kScalar, VT::kMatrix}, 0, VT::kVector},
    {"rad", {VT::kVector}, 0, VT::kVector},
    {"rate", {VT::kMatrix}, 0, VT::kVector},
    {"resets", {VT::kMatrix}, 0, VT::kVector},
    {"round", {VT::kVector, VT::kScalar}, 1, VT::kVector},
    {"scalar", {VT::kVector}, 0, VT::kScalar},
    {"sgn", {VT::kVector}, 0, VT::kVector},
    {"sin", {VT::kVector}, 0, VT::kVector},
    {"sinh", {VT::kVector}, 0, VT::kVector},
    {"sort", {VT::kVector}, 0, VT::kVector},
    {"sort_desc", {VT::kVector}, 0, VT::kVector},
    {"sqrt", {VT::kVector}, 0, VT::kVector},
    {"stddev_over_time", {VT::kMatrix}, 0, VT::kVector},
    {"stdvar_over_time", {VT::kMatrix}, 0, VT::kVector},
    {"sum_over_time", {VT::kMatrix}, 0, VT::kVector},
    {"tan", {VT::kVector}, 0, VT::kVector},
    {"tanh", {VT::kVector}, 0, VT::kVector},
    {"time", {}, 0, VT::kScalar},
    {"timestamp", {VT::kVector}, 0, VT::kVector},
    {"vector", {VT::kScalar}, 0, VT::kVector},
    {"year", {VT::kVector}, 1, VT::kVector},
};

const char* AggName(AggOp op) {
  static constexpr const char* kNames[] = {"sum",  "avg",     "count",        "min",
                                           "max",  "group",   "stddev",       "stdvar",
                                           "topk", "bottomk", "count_values", "quantile"};
  return kNames[static_cast<int>(op)];
}

void JoinLabels(const std::vector<std::string>& l, std::string* out) {
  *out += "(";
  for (size_t i = 0; i < l.size(); ++i) {
    if (i > 0) *out += ", ";
    *out += l[i];
  }
  *out += ")";
}

std::string Modifiers(const Expr& e) {
  std::string s;
  if (e.offset_ms != 0)
    s += " offset " +
         (e.offset_ms < 0 ? "-" + FormatDuration(-e.offset_ms) : FormatDuration(e.offset_ms));
  if (e.at == AtKind::kStart) s += " @ start()";
  if (e.at == AtKind::kEnd) s += " @ end()";
  if (e.at == AtKind::kTime) s += " @ " + FormatFloat(static_cast<double>(e.at_ms) / 1000);
  return s;
}

}  // namespace

const FunctionInfo* LookupFunction(std::string_view name) {
  for (const auto& f : kFunctions) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

const char* ValueTypeDocName(ValueType t) {
  switch (t) {
    case ValueType::kNone:
      return "none";
    case ValueType::kScalar:
      return "scalar";
    case ValueType::kVector:
      return "instant vector";
    case ValueType::kMatrix:
      return "range vector";
    case ValueType::kString:
      return "string";
  }
  return "none";
}

const char* BinOpName(BinOp op) {
  static constexpr const char* kNames[] = {"+",  "-", "*", "/",  "%",  "^",   "atan2", "==",
                                           "!=", ">", "<", ">=", "<=", "and", "or",    "unless"};
  return kNames[static_cast<int>(op)];
}

ValueType Expr::type() const {
  switch (kind) {
    case Kind::kNumber:
      return ValueType::kScalar;
    case Kind::kString:
      return ValueType::kString;
    case Kind::kVectorSelector:
      return ValueType::kVector;
    case Kind::kMatrixSelector:
    case Kind::kSubquery:
      return ValueType::kMatrix;
    case Kind::kCall:
      return func->return_type;
    case Kind::kAggregate:
      return ValueType::kVector;
    case Kind::kBinary:
      return args[0]->type() == ValueType::kScalar && args[1]->type() == ValueType::kScalar
                 ? ValueType::kScalar
                 : ValueType::kVector;
    case Kind::kUnary:
    case Kind::kParen:
      return args[0]->type();
  }
  return ValueType::kNone;
}

std::string Expr::ToString() const {
  switch (kind) {
    case Kind::kNumber:
      return FormatFloat(number);
    case Kind::kString:
      return QuoteString(str);
    case Kind::kVectorSelector:
    case Kind::kMatrixSelector: {
      std::string s = name;
      std::string inner;
      for (const auto& m : matchers) {
        if (!name.empty() && m.name() == kMetricName && m.type() == MatchType::kEqual &&
            m.value() == name) {
          continue;
        }
        if (!inner.empty()) inner += ", ";
        inner += m.ToString();
      }
      if (!inner.empty() || name.empty()) s += "{" + inner + "}";
      if (kind == Kind::kMatrixSelector) s += "[" + FormatDuration(range_ms) + "]";
      return s + Modifiers(*this);
    }
    case Kind::kSubquery:
      return args[0]->ToString() + "[" + FormatDuration(range_ms) + ":" +
             (step_ms ? FormatDuration(step_ms) : "") + "]" + Modifiers(*this);
    case Kind::kCall: {
      std::string s = std::string(func->name) + "(";
      for (size_t i = 0; i < args.size(); ++i) {
        if (i > 0) s += ", ";
        s += args[i]->ToString();
      }
      return s + ")";
    }
    case Kind::kAggregate: {
      std::string s = AggName(agg);
      if (without || !grouping.empty()) {
        s += without ? " without " : " by ";
        JoinLabels(grouping, &s);
        s += " ";
      }
      s += "(";
      if (param) s += param->ToString() + ", ";
      return s + args[0]->ToString() + ")";
    }
    case Kind::kBinary: {
      std::string s = args[0]->ToString() + " " + BinOpName(bin);
      if (return_bool) s += " bool";
      if (matching && (matching->on || !matching->labels.empty())) {
        s += matching->on ? " on" : " ignoring";
        JoinLabels(matching->labels, &s);
        if (matching->card == Cardinality::kManyToOne) s += " group_left";
        if (matching->card == Cardinality::kOneToMany) s += " group_right";
        if (!matching->include.empty()) JoinLabels(matching->include, &s);
      }
      return s + " " + args[1]->ToString();
    }
    case Kind::kUnary:
      return "-" + args[0]->ToString();
    case Kind::kParen:
      return "(" + args[0]->ToString() + ")";
  }
  return "";
}

}  // namespace llmscope::promql
