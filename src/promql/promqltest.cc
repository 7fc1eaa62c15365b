#include "promql/promqltest.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>

#include "core/ascii.h"
#include "promql/parser.h"

namespace llmscope::promql {
namespace {

constexpr double kEpsilon = 0.000001;  // promqltest's defaultEpsilon

// Prometheus functions and aggregations this engine does not implement; an eval naming one
// is skipped with the name as the reason.
constexpr const char* kUnsupportedFunctions[] = {
    "histogram_avg",
    "histogram_count",
    "histogram_sum",
    "histogram_stddev",
    "histogram_stdvar",
    "histogram_fraction",
    "histogram_quantiles",
    "double_exponential_smoothing",
    "holt_winters",
    "info",
    "mad_over_time",
    "first_over_time",
    "ts_of_first_over_time",
    "ts_of_last_over_time",
    "ts_of_max_over_time",
    "ts_of_min_over_time",
    "sort_by_label",
    "sort_by_label_desc",
    "start_timestamp",
    "max_of",
    "min_of",
    "step",
    "range",
    "start",
    "end",
};
constexpr const char* kUnsupportedKeywords[] = {"limitk", "limit_ratio", "anchored",  "smoothed",
                                                "fill",   "fill_left",   "fill_right"};

bool AlmostEqual(double a, double b) {
  if (IsStaleNaN(a) || IsStaleNaN(b)) return IsStaleNaN(a) && IsStaleNaN(b);
  if (std::isnan(a) && std::isnan(b)) return true;
  if (a == b) return true;
  constexpr double kMinNormal = 2.2250738585072014e-308;
  double abs_sum = std::fabs(a) + std::fabs(b);
  double diff = std::fabs(a - b);
  if (a == 0 || b == 0 || abs_sum < kMinNormal) return diff < kEpsilon * kMinNormal;
  return diff / std::min(abs_sum, std::numeric_limits<double>::max()) < kEpsilon;
}

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

std::vector<std::string> SplitSpace(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\t') ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// A number as the series notation writes it: [+-] then digits, Inf or NaN.
bool ParseNumberPrefix(std::string_view s, size_t* len, double* v) {
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    neg = s[i] == '-';
    ++i;
  }
  const std::string low = core::AsciiLower(s.substr(i, 3));
  if (low == "inf" || low == "nan") {
    *v = low == "inf" ? HUGE_VAL : std::nan("");
    if (neg) *v = -*v;
    *len = i + 3;
    return true;
  }
  size_t start = i;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  }
  if (i == start || (i == start + 1 && s[start] == '.')) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t e = i + 1;
    if (e < s.size() && (s[e] == '+' || s[e] == '-')) ++e;
    if (e < s.size() && std::isdigit(static_cast<unsigned char>(s[e]))) {
      i = e;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    }
  }
  std::string text(s.substr(0, i));
  *v = std::strtod(text.c_str(), nullptr);
  *len = i;
  return true;
}

struct SeqValue {
  bool omitted = false;
  double v = 0;
};

// Expands one item of the series notation.
bool ExpandItem(std::string_view item, std::vector<SeqValue>* out) {
  auto parse_times = [](std::string_view s, uint64_t* n) {
    if (s.empty() || s.size() > 9) return false;
    for (char c : s) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    }
    *n = std::stoull(std::string(s));
    return true;
  };
  if (item == "_") {
    out->push_back({true, 0});
    return true;
  }
  if (item.substr(0, 2) == "_x") {
    uint64_t n;
    if (!parse_times(item.substr(2), &n)) return false;
    for (uint64_t k = 0; k < n; ++k) out->push_back({true, 0});
    return true;
  }
  if (item == "stale") {
    out->push_back({false, StaleNaN()});
    return true;
  }
  size_t len;
  double a;
  if (!ParseNumberPrefix(item, &len, &a)) return false;
  std::string_view rest = item.substr(len);
  if (rest.empty()) {
    out->push_back({false, a});
    return true;
  }
  double inc = 0;
  if (rest[0] == '+' || rest[0] == '-') {
    size_t l2;
    if (!ParseNumberPrefix(rest, &l2, &inc)) return false;
    rest = rest.substr(l2);
  }
  if (rest.empty() || rest[0] != 'x') return false;
  uint64_t n;
  if (!parse_times(rest.substr(1), &n)) return false;
  // "a+bxn" is n+1 values: a, a+b, ..., a+n*b.
  for (uint64_t k = 0; k <= n; ++k) {
    out->push_back({false, a});
    a += inc;
  }
  return true;
}

struct SeriesDesc {
  Labels labels;
  std::vector<SeqValue> values;
  bool histogram = false;
};

// Parses `metric{a="b"} 1 2+3x4 _ stale`.
core::Result<SeriesDesc> ParseSeriesLine(std::string_view line) {
  SeriesDesc d;
  size_t i = 0;
  while (i < line.size() &&
         (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_' || line[i] == ':')) {
    ++i;
  }
  std::string name(line.substr(0, i));
  std::vector<Label> labels;
  if (!name.empty()) labels.push_back({std::string(kMetricName), name});
  if (i < line.size() && line[i] == '{') {
    size_t j = i + 1;
    char quote = 0;
    while (j < line.size()) {
      char c = line[j];
      if (quote) {
        if (c == '\\') {
          ++j;
        } else if (c == quote) {
          quote = 0;
        }
      } else if (c == '"' || c == '\'' || c == '`') {
        quote = c;
      } else if (c == '}') {
        break;
      }
      ++j;
    }
    if (j >= line.size())
      return core::InvalidArgument("unterminated label set: " + std::string(line));
    std::string_view body = line.substr(i + 1, j - i - 1);
    if (!Trim(body).empty()) {
      auto e = ParseExpr("{" + std::string(body) + "}");
      if (!e.ok()) {
        return core::InvalidArgument("bad series " + std::string(line) + ": " +
                                     e.status().message());
      }
      for (const auto& m : (*e)->matchers) labels.push_back({m.name(), m.value()});
    }
    i = j + 1;
  }
  d.labels = Labels::FromVector(std::move(labels));
  std::string_view rest = line.substr(i);
  if (rest.find("{{") != std::string_view::npos) {
    d.histogram = true;
    return d;
  }
  for (const auto& item : SplitSpace(rest)) {
    if (!ExpandItem(item, &d.values)) {
      return core::InvalidArgument("bad series value " + QuoteString(item) +
                                   " in: " + std::string(line));
    }
  }
  return d;
}

struct Expect {
  std::string kind;  // fail, ordered, warn, info, no_warn, no_info
  std::string msg;
  std::string regex;
};

struct EvalCmd {
  int line = 0;
  std::string query;
  bool range = false;
  int64_t at = 0, start = 0, end = 0, step = 0;
  bool fail = false, ordered = false, annotations = false;
  std::string fail_msg, fail_regex;
  bool expect_scalar = false;
  double scalar = 0;
  bool expect_string = false;
  std::string string_value;
  bool expect_range_vector = false;
  int64_t rv_start = 0, rv_step = 0;
  bool histogram_expected = false;
  struct Exp {
    Labels labels;
    std::vector<SeqValue> values;
    int pos;
  };
  std::vector<Exp> expected;
};

bool RegexSearch(const std::string& pattern, const std::string& text) {
  auto re = Regex::Compile("(?s:.*)(?:" + pattern + ")(?s:.*)");
  return re.ok() && (*re)->FullMatch(text);
}

std::string SeriesString(const Labels& l, const std::vector<Point>& pts) {
  std::string s = l.ToString() + " =>";
  for (const auto& p : pts) s += " " + FormatFloat(p.v) + " @" + std::to_string(p.t);
  return s;
}

// Why `query` cannot be run here, or "" when it can.
std::string UnsupportedReason(const std::string& query, const MemoryStorage& histograms,
                              bool has_histograms) {
  // Identifiers outside string literals.
  std::vector<std::pair<std::string, bool>> idents;  // name, followed by '('
  size_t i = 0;
  while (i < query.size()) {
    char c = query[i];
    if (c == '"' || c == '\'' || c == '`') {
      char q = c;
      ++i;
      while (i < query.size() && query[i] != q) {
        if (query[i] == '\\' && q != '`') ++i;
        ++i;
      }
      ++i;
      continue;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < query.size() && (std::isalnum(static_cast<unsigned char>(query[j])) ||
                                  query[j] == '_' || query[j] == ':')) {
        ++j;
      }
      size_t k = j;
      while (k < query.size() && (query[k] == ' ' || query[k] == '\t')) ++k;
      idents.emplace_back(query.substr(i, j - i), k < query.size() && query[k] == '(');
      i = j;
      continue;
    }
    ++i;
  }
  for (const auto& [name, call] : idents) {
    const std::string low = core::AsciiLower(name);
    for (const char* kw : kUnsupportedKeywords) {
      if (low == kw) return std::string("unsupported modifier or aggregation: ") + kw;
    }
    if (!call) continue;
    for (const char* f : kUnsupportedFunctions) {
      if (name == f) return std::string("unsupported function: ") + f;
    }
  }
  if (query.find("</") != std::string::npos || query.find(">/") != std::string::npos) {
    return "unsupported operator: trim";
  }
  if (!has_histograms) return "";
  auto parsed = ParseExpr(query);
  if (!parsed.ok()) return "";
  std::string reason;
  std::function<void(const Expr&)> walk = [&](const Expr& e) {
    if (e.kind == Expr::Kind::kVectorSelector || e.kind == Expr::Kind::kMatrixSelector) {
      auto r = histograms.Select(e.matchers, INT64_MIN, INT64_MAX);
      if (r.ok() && !r->empty()) reason = "native histograms";
    }
    for (const auto& a : e.args) walk(*a);
    if (e.param) walk(*e.param);
  };
  walk(**parsed);
  return reason;
}

class Run {
 public:
  Run(const Engine& engine, ScriptReport* report) : engine_(engine), report_(report) {}

  void Execute(std::string_view script) {
    std::vector<std::string> lines;
    std::stringstream ss{std::string(script)};
    std::string l;
    while (std::getline(ss, l)) {
      std::string t = Trim(l);
      if (!t.empty() && t[0] == '#') t.clear();
      lines.push_back(t);
    }
    for (size_t i = 0; i < lines.size(); ++i) {
      const std::string& line = lines[i];
      if (line.empty()) continue;
      const std::string cmd = core::AsciiLower(SplitSpace(line)[0]);
      core::Status st;
      if (cmd == "clear") {
        storage_.Clear();
        histograms_.Clear();
        has_histograms_ = false;
      } else if (cmd.rfind("load", 0) == 0) {
        st = Load(lines, &i);
      } else if (cmd.rfind("eval", 0) == 0) {
        EvalCmd ev;
        st = ParseEval(lines, &i, &ev);
        if (st.ok()) RunEval(ev);
      } else {
        st = core::InvalidArgument("invalid command " + QuoteString(line));
      }
      if (!st.ok()) {
        report_->script_error =
            core::InvalidArgument("line " + std::to_string(i + 1) + ": " + st.message());
        return;
      }
    }
  }

 private:
  core::Status Load(const std::vector<std::string>& lines, size_t* i) {
    auto parts = SplitSpace(lines[*i]);
    if (parts.size() != 2 || (parts[0] != "load" && parts[0] != "load_with_nhcb")) {
      return core::InvalidArgument("invalid load command. (load[_with_nhcb] <step:duration>)");
    }
    bool nhcb = parts[0] == "load_with_nhcb";
    auto step = ParseDuration(parts[1]);
    if (!step.ok()) return step.status();
    while (*i + 1 < lines.size() && !lines[*i + 1].empty()) {
      ++*i;
      auto d = ParseSeriesLine(lines[*i]);
      if (!d.ok()) return d.status();
      if (d->histogram) {
        histograms_.Add(d->labels, 0, 0);
        has_histograms_ = true;
        continue;
      }
      for (size_t k = 0; k < d->values.size(); ++k) {
        if (d->values[k].omitted) continue;
        storage_.Add(d->labels, static_cast<int64_t>(k) * *step, d->values[k].v);
      }
      if (nhcb) {
        // The converted native histogram series: the name without _bucket, no `le`.
        std::string name(d->labels.Get(kMetricName));
        if (name.size() > 7 && name.substr(name.size() - 7) == "_bucket") {
          Labels h = d->labels.With(kMetricName, name.substr(0, name.size() - 7)).Without("le");
          histograms_.Add(h, 0, 0);
          has_histograms_ = true;
        }
      }
    }
    return core::Status::Ok();
  }

  core::Status ParseEval(const std::vector<std::string>& lines, size_t* i, EvalCmd* ev) {
    const std::string& line = lines[*i];
    ev->line = static_cast<int>(*i) + 1;
    auto parts = SplitSpace(line);
    std::string mod;
    if (parts[0].size() > 4) {
      if (parts[0][4] != '_') return core::InvalidArgument("invalid evaluation command");
      mod = parts[0].substr(5);
    }
    if (mod == "fail") ev->fail = true;
    if (mod == "ordered") ev->ordered = true;
    if (mod == "warn" || mod == "info") ev->annotations = true;
    // The query is the rest of the line after the time tokens, spacing kept.
    auto rest_after = [&](size_t tokens) {
      size_t pos = 0;
      for (size_t k = 0; k < tokens; ++k) {
        pos = line.find_first_not_of(" \t", pos);
        pos = line.find_first_of(" \t", pos);
      }
      return Trim(line.substr(pos));
    };
    if (parts.size() >= 4 && parts[1] == "instant" && parts[2] == "at") {
      auto at = ParseDuration(parts[3]);
      if (!at.ok()) return at.status();
      ev->at = *at;
      ev->query = rest_after(4);
    } else if (parts.size() >= 8 && parts[1] == "range" && parts[2] == "from" && parts[4] == "to" &&
               parts[6] == "step") {
      auto s = ParseDuration(parts[3]);
      auto e = ParseDuration(parts[5]);
      auto st = ParseDuration(parts[7]);
      if (!s.ok()) return s.status();
      if (!e.ok()) return e.status();
      if (!st.ok()) return st.status();
      ev->range = true;
      ev->start = *s;
      ev->end = *e;
      ev->step = *st;
      ev->query = rest_after(8);
    } else {
      return core::InvalidArgument("invalid evaluation command: " + line);
    }
    if (ev->query.empty()) return core::InvalidArgument("eval without a query");
    int pos = 0;
    while (*i + 1 < lines.size() && !lines[*i + 1].empty()) {
      ++*i;
      const std::string& d = lines[*i];
      if (ev->fail && d.rfind("expected_fail_message", 0) == 0) {
        ev->fail_msg = Trim(d.substr(21));
        continue;
      }
      if (ev->fail && d.rfind("expected_fail_regexp", 0) == 0) {
        ev->fail_regex = Trim(d.substr(20));
        continue;
      }
      if (d.rfind("expect range vector", 0) == 0) {
        auto p = SplitSpace(d);
        if (p.size() != 9 || p[3] != "from" || p[5] != "to" || p[7] != "step") {
          return core::InvalidArgument("invalid expect range vector: " + d);
        }
        auto s = ParseDuration(p[4]);
        auto st = ParseDuration(p[8]);
        if (!s.ok()) return s.status();
        if (!st.ok()) return st.status();
        ev->expect_range_vector = true;
        ev->rv_start = *s;
        ev->rv_step = *st;
        continue;
      }
      if (d.rfind("expect string", 0) == 0) {
        std::string lit = Trim(d.substr(13));
        auto e = ParseExpr(lit);
        if (!e.ok() || (*e)->kind != Expr::Kind::kString) {
          return core::InvalidArgument("expected string literal not valid: " + d);
        }
        ev->expect_string = true;
        ev->string_value = (*e)->str;
        continue;
      }
      if (SplitSpace(d)[0] == "expect") {
        auto p = SplitSpace(d);
        if (p.size() < 2) return core::InvalidArgument("invalid expect statement: " + d);
        const std::string& kind = p[1];
        std::string payload;
        size_t colon = d.find(':');
        std::string match_type = p.size() > 2 ? p[2].substr(0, p[2].find(':')) : "";
        if (colon != std::string::npos) payload = Trim(d.substr(colon + 1));
        if (kind == "fail") {
          ev->fail = true;
          if (match_type == "msg") ev->fail_msg = payload;
          if (match_type == "regex") ev->fail_regex = payload;
        } else if (kind == "ordered") {
          ev->ordered = true;
        } else if (kind == "warn" || kind == "info") {
          ev->annotations = true;
        } else if (kind != "no_warn" && kind != "no_info") {
          return core::InvalidArgument("invalid expected error/annotation type " + kind);
        }
        continue;
      }
      size_t len;
      double v;
      if (ParseNumberPrefix(d, &len, &v) && len == d.size()) {
        ev->expect_scalar = true;
        ev->scalar = v;
        continue;
      }
      if (d.find("{{") != std::string::npos) ev->histogram_expected = true;
      auto s = ParseSeriesLine(d);
      if (!s.ok()) return s.status();
      if (s->histogram) continue;
      ev->expected.push_back({s->labels, s->values, ++pos});
    }
    return core::Status::Ok();
  }

  void Outcome(const EvalCmd& ev, EvalOutcome::Kind kind, std::string detail) {
    report_->outcomes.push_back({kind, ev.line, ev.query, std::move(detail)});
    switch (kind) {
      case EvalOutcome::Kind::kPassed:
        ++report_->passed;
        break;
      case EvalOutcome::Kind::kFailed:
        ++report_->failed;
        break;
      case EvalOutcome::Kind::kSkipped:
        ++report_->skipped;
        break;
    }
  }

  void RunEval(const EvalCmd& ev) {
    std::string reason = UnsupportedReason(ev.query, histograms_, has_histograms_);
    if (reason.empty() && ev.histogram_expected) reason = "native histograms";
    if (reason.empty() && ev.annotations) reason = "expected info/warn annotations";
    if (!reason.empty()) return Outcome(ev, EvalOutcome::Kind::kSkipped, reason);

    core::Result<Value> res =
        ev.range ? engine_.RangeQuery(storage_, ev.query, ev.start, ev.end, ev.step)
                 : engine_.InstantQuery(storage_, ev.query, ev.at);
    if (ev.fail) {
      if (res.ok()) {
        return Outcome(ev, EvalOutcome::Kind::kFailed, "expected an error, got a result");
      }
      const std::string msg = res.status().message();
      if (!ev.fail_msg.empty() && msg != ev.fail_msg) {
        return Outcome(ev, EvalOutcome::Kind::kFailed,
                       "expected error " + QuoteString(ev.fail_msg) + ", got " + QuoteString(msg));
      }
      if (!ev.fail_regex.empty() && !RegexSearch(ev.fail_regex, msg)) {
        return Outcome(ev, EvalOutcome::Kind::kFailed,
                       "error " + QuoteString(msg) + " does not match " + ev.fail_regex);
      }
      return Outcome(ev, EvalOutcome::Kind::kPassed, "");
    }
    if (!res.ok()) {
      return Outcome(ev, EvalOutcome::Kind::kFailed, "unexpected error: " + res.status().message());
    }
    std::string err = Compare(ev, *res);
    Outcome(ev, err.empty() ? EvalOutcome::Kind::kPassed : EvalOutcome::Kind::kFailed, err);
  }

  const EvalCmd::Exp* Find(const EvalCmd& ev, const Labels& l) const {
    for (const auto& e : ev.expected) {
      if (e.labels == l) return &e;
    }
    return nullptr;
  }

  std::string Compare(const EvalCmd& ev, const Value& v) {
    if (const auto* s = std::get_if<String>(&v)) {
      if (!ev.expect_string) return "unexpected string result \"" + s->v + "\"";
      if (s->v != ev.string_value) {
        return "expected string " + QuoteString(ev.string_value) + " but got " + QuoteString(s->v);
      }
      return "";
    }
    if (const auto* sc = std::get_if<Scalar>(&v)) {
      if (!ev.expect_scalar)
        return "expected vector or matrix result, but got scalar " + FormatFloat(sc->v);
      if (!AlmostEqual(ev.scalar, sc->v)) {
        return "expected scalar " + FormatFloat(ev.scalar) + " but got " + FormatFloat(sc->v);
      }
      return "";
    }
    if (ev.expect_scalar) return std::string("expected scalar result, but got ") + ValueTypeName(v);
    if (const auto* vec = std::get_if<Vector>(&v)) {
      for (size_t pos = 0; pos < vec->size(); ++pos) {
        const Sample& s = (*vec)[pos];
        const EvalCmd::Exp* e = Find(ev, s.labels);
        if (e == nullptr) {
          return "unexpected metric " + s.labels.ToString() + " in result, has value " +
                 FormatFloat(s.v);
        }
        if (ev.ordered && e->pos != static_cast<int>(pos) + 1) {
          return "expected metric " + s.labels.ToString() + " at position " +
                 std::to_string(e->pos) + " but was at " + std::to_string(pos + 1);
        }
        if (e->values.size() != 1 || e->values[0].omitted) {
          return "expected one value for " + s.labels.ToString();
        }
        if (!AlmostEqual(e->values[0].v, s.v)) {
          return "expected " + FormatFloat(e->values[0].v) + " for " + s.labels.ToString() +
                 " but got " + FormatFloat(s.v);
        }
      }
      for (const auto& e : ev.expected) {
        bool seen = false;
        for (const auto& s : *vec) seen = seen || s.labels == e.labels;
        if (!seen) return "expected metric " + e.labels.ToString() + " not found";
      }
      return "";
    }
    const Matrix& m = std::get<Matrix>(v);
    if (ev.ordered) return "expected ordered result, but query returned a matrix";
    for (size_t k = 1; k < m.size(); ++k) {
      if (Labels::Compare(m[k - 1].labels, m[k].labels) > 0) return "matrix result is not sorted";
    }
    int64_t start = ev.range ? ev.start : ev.rv_start;
    int64_t step = ev.range ? ev.step : ev.rv_step;
    int64_t end = ev.range ? ev.end : ev.at;
    if (!ev.range && !ev.expect_range_vector && !m.empty()) {
      return "unexpected range vector result for an instant query";
    }
    for (const auto& s : m) {
      const EvalCmd::Exp* e = Find(ev, s.labels);
      if (e == nullptr) {
        return "unexpected metric " + s.labels.ToString() + " in result, has " +
               SeriesString(s.labels, s.points);
      }
      std::vector<Point> want;
      for (size_t k = 0; k < e->values.size(); ++k) {
        int64_t t = start + static_cast<int64_t>(k) * step;
        if (t > end) {
          return "expected " + std::to_string(e->values.size()) + " points for " +
                 e->labels.ToString() + ", but query time range cannot return this many points";
        }
        if (!e->values[k].omitted) want.push_back({t, e->values[k].v});
      }
      if (want.size() != s.points.size()) {
        return "expected " + std::to_string(want.size()) + " float points for " +
               s.labels.ToString() + ", but got " + SeriesString(s.labels, s.points);
      }
      for (size_t k = 0; k < want.size(); ++k) {
        if (want[k].t != s.points[k].t) {
          return "expected float value at index " + std::to_string(k) + " for " +
                 s.labels.ToString() + " to have timestamp " + std::to_string(want[k].t) +
                 ", but it had timestamp " + std::to_string(s.points[k].t);
        }
        if (!AlmostEqual(want[k].v, s.points[k].v)) {
          return "expected float value at index " + std::to_string(k) +
                 " (t=" + std::to_string(want[k].t) + ") for " + s.labels.ToString() + " to be " +
                 FormatFloat(want[k].v) + ", but got " + FormatFloat(s.points[k].v);
        }
      }
    }
    for (const auto& e : ev.expected) {
      bool seen = false;
      for (const auto& s : m) seen = seen || s.labels == e.labels;
      if (!seen) return "expected metric " + e.labels.ToString() + " not found";
    }
    return "";
  }

  const Engine& engine_;
  ScriptReport* report_;
  MemoryStorage storage_;
  MemoryStorage histograms_;  // native-histogram series (not loaded), to skip evals on them
  bool has_histograms_ = false;
};

}  // namespace

ScriptReport ScriptRunner::Run(std::string_view name, std::string_view script) const {
  ScriptReport report;
  report.name = std::string(name);
  class Run run(engine_, &report);
  run.Execute(script);
  return report;
}

core::Result<ScriptReport> RunScriptFile(const ScriptRunner& runner, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::NotFound("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string name = path.substr(path.find_last_of('/') + 1);
  return runner.Run(name, ss.str());
}

}  // namespace llmscope::promql
