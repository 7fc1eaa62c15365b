#include "metrics/exposition.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "core/ascii.h"

namespace llmscope::metrics {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is invalid (overlong
// forms, surrogates and code points above U+10FFFF included).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const auto cont = [&](size_t k, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return k < s.size() && byte(k) >= lo && byte(k) <= hi;
  };
  const unsigned char c = byte(i);
  if (c >= 0xC2 && c <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (c == 0xE0) return cont(i + 1, 0xA0, 0xBF) && cont(i + 2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(i + 1) && cont(i + 2) ? 3 : 0;
  if (c == 0xED) return cont(i + 1, 0x80, 0x9F) && cont(i + 2) ? 3 : 0;
  if (c == 0xF0) return cont(i + 1, 0x90, 0xBF) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(i + 1) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  if (c == 0xF4) return cont(i + 1, 0x80, 0x8F) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  return 0;
}

void AppendEscaped(std::string& out, std::string_view s, bool escape_quote) {
  size_t run_start = 0;  // start of a run of bytes that are copied verbatim
  size_t i = 0;
  const auto flush = [&] { out.append(s.substr(run_start, i - run_start)); };
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      const char* esc = c == '\\'                    ? "\\\\"
                        : c == '\n'                  ? "\\n"
                        : (c == '"' && escape_quote) ? "\\\""
                                                     : nullptr;
      if (esc != nullptr) {
        flush();
        out.append(esc);
        run_start = i + 1;
      }
      ++i;
      continue;
    }
    const size_t len = Utf8SequenceLength(s, i);
    if (len == 0) {
      flush();
      out.append("\xEF\xBF\xBD");  // U+FFFD REPLACEMENT CHARACTER
      run_start = ++i;
    } else {
      i += len;
    }
  }
  flush();
}

template <typename... Args>
void AppendChars(std::string& out, double v, Args... args) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v, args...);
  out.append(buf, r.ptr);
}

void AppendDouble(std::string& out, double v) {
  if (std::isnan(v)) {
    out.append("NaN");
  } else if (std::isinf(v)) {
    out.append(v > 0 ? "+Inf" : "-Inf");
  } else {
    AppendChars(out, v);
  }
}

// Exemplar timestamps: fixed notation, because OpenMetrics asks timestamps not to use
// exponent form.
void AppendTimestamp(std::string& out, double v) { AppendChars(out, v, std::chars_format::fixed); }

// OpenMetrics canonical number for `le`: Go's rendering with ".0" when it looks integral.
void AppendCanonicalLe(std::string& out, std::string_view le) {
  AppendEscaped(out, le, /*escape_quote=*/true);
  if (le.find_first_of(".eEIN") == std::string_view::npos) out.append(".0");
}

std::string_view TypeName(MetricType t, Format f) {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
    case MetricType::kUnknown:
      break;
  }
  return f == Format::kOpenMetrics ? "unknown" : "untyped";
}

void AppendLabels(std::string& out, const Sample& s, bool canonical_le) {
  if (s.labels.empty()) return;
  out.push_back('{');
  bool first = true;
  for (const Label& l : s.labels) {
    if (!first) out.push_back(',');
    first = false;
    out.append(l.name);
    out.append("=\"");
    if (canonical_le && l.name == "le") {
      AppendCanonicalLe(out, l.value);
    } else {
      AppendEscaped(out, l.value, /*escape_quote=*/true);
    }
    out.push_back('"');
  }
  out.push_back('}');
}

void AppendExemplar(std::string& out, const Exemplar& ex) {
  out.append(" # {");
  bool first = true;
  const auto label = [&](std::string_view name, std::string_view value) {
    if (value.empty()) return;
    if (!first) out.push_back(',');
    first = false;
    out.append(name);
    out.append("=\"");
    AppendEscaped(out, value, /*escape_quote=*/true);
    out.push_back('"');
  };
  label("trace_id", ex.trace_id);
  label("span_id", ex.span_id);
  out.append("} ");
  AppendDouble(out, ex.value);
  if (ex.timestamp_seconds > 0 && std::isfinite(ex.timestamp_seconds)) {
    out.push_back(' ');
    AppendTimestamp(out, ex.timestamp_seconds);
  }
}

void RenderFamily(std::string& out, const FamilySnapshot& f, Format format) {
  const bool om = format == Format::kOpenMetrics;
  const bool counter = f.type == MetricType::kCounter;
  // Prometheus text names the family by its exposed name; OpenMetrics by the bare name.
  std::string meta_name = f.name;
  if (counter && !om) meta_name.append("_total");

  const auto help = [&] {
    if (f.help.empty()) return;
    out.append("# HELP ");
    out.append(meta_name);
    out.push_back(' ');
    AppendEscaped(out, f.help, /*escape_quote=*/om);
    out.push_back('\n');
  };
  const auto type = [&] {
    out.append("# TYPE ");
    out.append(meta_name);
    out.push_back(' ');
    out.append(TypeName(f.type, format));
    out.push_back('\n');
  };
  if (om) {
    type();  // OpenMetrics orders metadata TYPE, UNIT, HELP
    help();
  } else {
    help();
    type();
  }

  const bool histogram = f.type == MetricType::kHistogram;
  for (const Sample& s : f.samples) {
    out.append(f.name);
    out.append(counter && s.suffix.empty() ? std::string_view("_total") : s.suffix);
    const bool bucket = histogram && s.suffix == "_bucket";
    AppendLabels(out, s, /*canonical_le=*/om && bucket);
    out.push_back(' ');
    AppendDouble(out, s.value);
    if (om && bucket && s.exemplar.has_value()) AppendExemplar(out, *s.exemplar);
    out.push_back('\n');
  }
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string_view ContentType(Format format) {
  return format == Format::kOpenMetrics
             ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
             : "text/plain; version=0.0.4; charset=utf-8";
}

Format NegotiateFormat(std::string_view accept) {
  double om_q = 0;
  double text_q = 0;
  while (!accept.empty()) {
    const size_t comma = accept.find(',');
    std::string_view range = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);

    const size_t semi = range.find(';');
    const std::string_view media = Trim(range.substr(0, semi));
    std::string_view params =
        semi == std::string_view::npos ? std::string_view() : range.substr(semi + 1);
    double q = 1;
    bool version_ok = true;
    while (!params.empty()) {
      const size_t next = params.find(';');
      const std::string_view param = Trim(params.substr(0, next));
      params = next == std::string_view::npos ? std::string_view() : params.substr(next + 1);
      const size_t eq = param.find('=');
      if (eq == std::string_view::npos) continue;
      const std::string_view key = Trim(param.substr(0, eq));
      const std::string_view value = Trim(param.substr(eq + 1));
      if (core::AsciiEqualsIgnoreCase(key, "q")) {
        double parsed = 0;
        const auto r = std::from_chars(value.data(), value.data() + value.size(), parsed);
        q = (r.ec == std::errc() && parsed >= 0 && parsed <= 1) ? parsed : 0;
      } else if (core::AsciiEqualsIgnoreCase(key, "version")) {
        version_ok = value == "1.0.0" || value == "0.0.1";
      }
    }
    if (core::AsciiEqualsIgnoreCase(media, "application/openmetrics-text")) {
      if (version_ok) om_q = std::max(om_q, q);
    } else if (core::AsciiEqualsIgnoreCase(media, "text/plain") ||
               core::AsciiEqualsIgnoreCase(media, "text/*") ||
               core::AsciiEqualsIgnoreCase(media, "*/*")) {
      text_q = std::max(text_q, q);
    }
  }
  return om_q > 0 && om_q >= text_q ? Format::kOpenMetrics : Format::kPrometheusText;
}

std::string Render(std::span<const FamilySnapshot> families, Format format) {
  std::string out;
  size_t samples = 0;
  for (const FamilySnapshot& f : families) samples += f.samples.size();
  out.reserve(families.size() * 96 + samples * 64);
  for (const FamilySnapshot& f : families) RenderFamily(out, f, format);
  if (format == Format::kOpenMetrics) out.append("# EOF\n");
  return out;
}

std::string FormatDouble(double v) {
  std::string out;
  AppendDouble(out, v);
  return out;
}

std::string FormatBucketBound(double v) {
  if (!std::isfinite(v)) return FormatDouble(v);
  char buf[64];
  // Go's strconv.FormatFloat(v, 'g', -1, 64): shortest digits; exponent form when the
  // decimal exponent is < -4 or >= 6 (Go uses precision 6 for that decision when shortest).
  const auto sci = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  const std::string_view s(buf, sci.ptr);
  std::string_view exp_text = s.substr(s.find('e') + 1);
  if (!exp_text.empty() && exp_text.front() == '+') exp_text.remove_prefix(1);
  int exp = 0;
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exp);
  if (exp < -4 || exp >= 6) return std::string(s);
  const auto fixed = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed);
  return std::string(buf, fixed.ptr);
}

}  // namespace llmscope::metrics
