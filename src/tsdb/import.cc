#include "tsdb/import.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>

namespace llmscope::tsdb {
namespace {

bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

core::Status LineError(size_t line, std::string_view problem) {
  return core::InvalidArgument("line " + std::to_string(line) + ": " + std::string(problem));
}

// A float as the text formats write them.
bool ParseFloat(std::string_view s, double& out) {
  if (s == "NaN") {
    out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (s == "+Inf" || s == "Inf") {
    out = std::numeric_limits<double>::infinity();
    return true;
  }
  if (s == "-Inf") {
    out = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

core::Result<std::vector<LabeledSample>> ParseOpenMetricsSamples(std::string_view text) {
  std::vector<LabeledSample> out;
  size_t line_no = 0;
  bool eof = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (eof) {
      if (!line.empty()) return LineError(line_no, "content after # EOF");
      continue;
    }
    if (line.empty()) continue;
    if (line.front() == '#') {
      if (line == "# EOF") eof = true;
      continue;
    }
    // Metric name.
    size_t i = 0;
    if (!IsNameStart(line[0])) return LineError(line_no, "expected a metric name");
    while (i < line.size() && IsNameChar(line[i])) ++i;
    std::vector<Label> labels;
    labels.push_back({std::string(kMetricNameLabel), std::string(line.substr(0, i))});
    // Labels.
    if (i < line.size() && line[i] == '{') {
      ++i;
      for (;;) {
        if (i < line.size() && line[i] == '}') {
          ++i;
          break;
        }
        size_t ns = i;
        if (i >= line.size() || !IsNameStart(line[i])) {
          return LineError(line_no, "expected a label name at column " + std::to_string(i + 1));
        }
        while (i < line.size() && IsNameChar(line[i])) ++i;
        std::string name(line.substr(ns, i - ns));
        if (i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') {
          return LineError(line_no, "expected =\" after label " + name);
        }
        i += 2;
        std::string value;
        bool closed = false;
        while (i < line.size()) {
          char c = line[i++];
          if (c == '"') {
            closed = true;
            break;
          }
          if (c == '\\') {
            if (i >= line.size()) break;
            char e = line[i++];
            if (e == 'n') {
              value.push_back('\n');
            } else if (e == '\\' || e == '"') {
              value.push_back(e);
            } else {
              return LineError(line_no,
                               "invalid escape \\" + std::string(1, e) + " in label " + name);
            }
          } else {
            value.push_back(c);
          }
        }
        if (!closed) return LineError(line_no, "unterminated value of label " + name);
        if (name == kMetricNameLabel) return LineError(line_no, "__name__ given as a label");
        for (const auto& l : labels) {
          if (l.name == name) return LineError(line_no, "label " + name + " given twice");
        }
        labels.push_back({std::move(name), std::move(value)});
        if (i < line.size() && line[i] == ',') {
          ++i;
        } else if (i >= line.size() || line[i] != '}') {
          return LineError(line_no, "expected , or } after label value");
        }
      }
    }
    // Value and timestamp.
    if (i >= line.size() || line[i] != ' ') return LineError(line_no, "expected a space");
    std::string_view rest = line.substr(i + 1);
    size_t sp = rest.find(' ');
    double v = 0;
    if (!ParseFloat(rest.substr(0, sp), v)) {
      return LineError(line_no, "invalid value \"" + std::string(rest.substr(0, sp)) + "\"");
    }
    if (sp == std::string_view::npos) {
      return LineError(line_no, "a sample without a timestamp (a backfill needs times)");
    }
    std::string_view ts = rest.substr(sp + 1);
    if (size_t ex = ts.find(" # "); ex != std::string_view::npos) ts = ts.substr(0, ex);
    double seconds = 0;
    if (!ParseFloat(ts, seconds) || !std::isfinite(seconds) || std::fabs(seconds) > 9.2e15) {
      return LineError(line_no, "invalid timestamp \"" + std::string(ts) + "\"");
    }
    out.push_back(
        {MakeLabels(std::move(labels)), static_cast<int64_t>(std::llround(seconds * 1000.0)), v});
  }
  return out;
}

core::Result<ImportStats> ImportSamples(Db& db, std::vector<LabeledSample> samples) {
  // Group by series, then time: the store appends in order per series.
  std::stable_sort(samples.begin(), samples.end(),
                   [](const LabeledSample& a, const LabeledSample& b) {
                     if (a.labels != b.labels) return a.labels < b.labels;
                     return a.t_ms < b.t_ms;
                   });
  ImportStats stats;
  for (size_t i = 0; i < samples.size(); ++i) {
    if (i == 0 || samples[i].labels != samples[i - 1].labels) ++stats.series;
  }
  stats.append = db.AppendBatch(samples);
  if (auto st = db.Persist(); !st.ok()) return st;
  return stats;
}

}  // namespace llmscope::tsdb
