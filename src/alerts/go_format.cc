#include "alerts/go_format.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "promql/labels.h"

namespace llmscope::alerts {
namespace {

// A decimal digit string without trailing zeros and the position of the decimal point:
// value = 0.d1d2d3... * 10^dp, as Go's strconv decimalSlice.
struct Digits {
  std::string d;
  int dp = 0;
};

// The digits of |v|, shortest (sig < 0) or rounded to `sig` significant digits.
Digits Decompose(double v, int sig) {
  Digits out;
  v = std::fabs(v);
  if (v == 0) return out;
  char buf[64];
  auto r = sig < 0
               ? std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific)
               : std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific, sig - 1);
  std::string_view s(buf, r.ptr - buf);
  size_t e = s.find('e');
  for (size_t i = 0; i < e; ++i) {
    if (s[i] != '.') out.d.push_back(s[i]);
  }
  int exp = 0;
  std::from_chars(s.data() + e + (s[e + 1] == '+' ? 2 : 1), s.data() + s.size(), exp);
  while (!out.d.empty() && out.d.back() == '0') out.d.pop_back();
  out.dp = exp + 1;
  return out;
}

std::string FmtE(bool neg, const Digits& g, int prec, char e) {
  std::string out = neg ? "-" : "";
  const int nd = static_cast<int>(g.d.size());
  out.push_back(nd == 0 ? '0' : g.d[0]);
  if (prec > 0) {
    out.push_back('.');
    for (int i = 1; i <= prec; ++i) out.push_back(i < nd ? g.d[i] : '0');
  }
  out.push_back(e);
  int exp = nd == 0 ? 0 : g.dp - 1;
  out.push_back(exp < 0 ? '-' : '+');
  exp = std::abs(exp);
  if (exp < 10) out.push_back('0');
  out += std::to_string(exp);
  return out;
}

std::string FmtF(bool neg, const Digits& g, int prec) {
  std::string out = neg ? "-" : "";
  const int nd = static_cast<int>(g.d.size());
  if (g.dp > 0) {
    for (int i = 0; i < g.dp; ++i) out.push_back(i < nd ? g.d[i] : '0');
  } else {
    out.push_back('0');
  }
  if (prec > 0) {
    out.push_back('.');
    for (int i = 0; i < prec; ++i) {
      int j = g.dp + i;
      out.push_back(j >= 0 && j < nd ? g.d[j] : '0');
    }
  }
  return out;
}

std::string Pad(std::string s, int width, bool minus, char fill = ' ') {
  // Width counts runes, as Go does.
  int runes = 0;
  for (unsigned char c : s) runes += (c & 0xC0) != 0x80;
  if (width <= runes) return s;
  std::string pad(width - runes, fill);
  return minus ? s + std::string(width - runes, ' ') : pad + s;
}

struct Spec {
  bool plus = false, minus = false, space = false, zero = false, sharp = false;
  bool has_width = false, has_prec = false;
  int width = 0, prec = 0;
};

std::string FormatFloatVerb(double v, char verb, const Spec& sp) {
  int prec = sp.has_prec ? sp.prec : -1;
  char f = verb;
  if (verb == 'v') f = 'g';
  if (verb == 'F') f = 'f';
  if ((f == 'e' || f == 'E' || f == 'f') && !sp.has_prec) prec = 6;
  std::string num = GoFormatFloat(v, f, prec);
  if (num[0] != '-' && num[0] != '+') num.insert(num.begin(), '+');
  if (sp.space && num[0] == '+' && !sp.plus) num[0] = ' ';
  if (num[1] == 'I' || num[1] == 'N') {
    if (num[1] == 'N' && !sp.space && !sp.plus) num.erase(0, 1);
    return Pad(num, sp.has_width ? sp.width : 0, sp.minus);
  }
  if (sp.plus || num[0] != '+') {
    if (sp.zero && !sp.minus && sp.has_width && sp.width > static_cast<int>(num.size())) {
      return num.substr(0, 1) + std::string(sp.width - num.size(), '0') + num.substr(1);
    }
    return Pad(num, sp.has_width ? sp.width : 0, sp.minus);
  }
  num.erase(0, 1);
  if (sp.zero && !sp.minus && sp.has_width) return Pad(num, sp.width, false, '0');
  return Pad(num, sp.has_width ? sp.width : 0, sp.minus);
}

void AppendUtf8(std::string& out, uint32_t c) {
  if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) c = 0xFFFD;
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string FormatIntVerb(int64_t v, char verb, const Spec& sp) {
  if (verb == 'c') {
    std::string s;
    AppendUtf8(s, static_cast<uint32_t>(v));
    return Pad(s, sp.has_width ? sp.width : 0, sp.minus);
  }
  const bool neg = v < 0;
  uint64_t u = neg ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  int base = 10;
  if (verb == 'x' || verb == 'X') base = 16;
  if (verb == 'o') base = 8;
  if (verb == 'b') base = 2;
  char buf[80];
  auto r = std::to_chars(buf, buf + sizeof buf, u, base);
  std::string digits(buf, r.ptr);
  if (verb == 'X') {
    for (char& c : digits) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (sp.has_prec) {
    if (sp.prec == 0 && u == 0) digits.clear();
    if (static_cast<int>(digits.size()) < sp.prec) {
      digits.insert(0, sp.prec - digits.size(), '0');
    }
  }
  std::string prefix;
  if (sp.sharp) {
    if (verb == 'x') prefix = "0x";
    if (verb == 'X') prefix = "0X";
    if (verb == 'o' && (digits.empty() || digits[0] != '0')) prefix = "0";
    if (verb == 'b') prefix = "0b";
  }
  std::string sign = neg ? "-" : sp.plus ? "+" : sp.space ? " " : "";
  if (sp.zero && !sp.minus && sp.has_width && !sp.has_prec) {
    int used = static_cast<int>(sign.size() + prefix.size() + digits.size());
    if (sp.width > used) digits.insert(0, sp.width - used, '0');
  }
  return Pad(sign + prefix + digits, sp.has_width ? sp.width : 0, sp.minus);
}

std::string Hex(std::string_view s, bool upper) {
  static constexpr char kLower[] = "0123456789abcdef";
  static constexpr char kUpper[] = "0123456789ABCDEF";
  const char* h = upper ? kUpper : kLower;
  std::string out;
  for (unsigned char c : s) {
    out.push_back(h[c >> 4]);
    out.push_back(h[c & 15]);
  }
  return out;
}

std::string DefaultString(const GoArg& a) {
  if (auto* i = std::get_if<int64_t>(&a)) return std::to_string(*i);
  if (auto* d = std::get_if<double>(&a)) return GoFloatString(*d);
  if (auto* s = std::get_if<std::string>(&a)) return *s;
  return std::get<bool>(a) ? "true" : "false";
}

std::string BadVerb(char verb, const GoArg& a) {
  return std::string("%!") + verb + "(" + GoTypeName(a) + "=" + DefaultString(a) + ")";
}

std::string FormatArg(const GoArg& a, char verb, const Spec& sp) {
  const int width = sp.has_width ? sp.width : 0;
  if (auto* i = std::get_if<int64_t>(&a)) {
    switch (verb) {
      case 'v':
      case 'd':
      case 'x':
      case 'X':
      case 'o':
      case 'b':
      case 'c':
        return FormatIntVerb(*i, verb == 'v' ? 'd' : verb, sp);
      case 'q': {
        std::string s;
        AppendUtf8(s, static_cast<uint32_t>(*i));
        return Pad("'" + s + "'", width, sp.minus);
      }
      default:
        return BadVerb(verb, a);
    }
  }
  if (auto* d = std::get_if<double>(&a)) {
    switch (verb) {
      case 'v':
      case 'e':
      case 'E':
      case 'f':
      case 'F':
      case 'g':
      case 'G':
        return FormatFloatVerb(*d, verb, sp);
      default:
        return BadVerb(verb, a);
    }
  }
  if (auto* s = std::get_if<std::string>(&a)) {
    std::string v = *s;
    if (sp.has_prec && (verb == 's' || verb == 'v' || verb == 'q')) {
      // Precision truncates to that many runes.
      size_t i = 0;
      int n = 0;
      while (i < v.size() && n < sp.prec) {
        ++i;
        while (i < v.size() && (static_cast<unsigned char>(v[i]) & 0xC0) == 0x80) ++i;
        ++n;
      }
      v.resize(i);
    }
    switch (verb) {
      case 'v':
      case 's':
        return Pad(v, width, sp.minus, sp.zero && !sp.minus ? '0' : ' ');
      case 'q':
        return Pad(promql::QuoteString(v), width, sp.minus);
      case 'x':
      case 'X':
        return Pad(Hex(v, verb == 'X'), width, sp.minus);
      default:
        return BadVerb(verb, a);
    }
  }
  if (verb == 't' || verb == 'v') return Pad(DefaultString(a), width, sp.minus);
  return BadVerb(verb, a);
}

}  // namespace

const char* GoTypeName(const GoArg& a) {
  switch (a.index()) {
    case 0:
      return "int";
    case 1:
      return "float64";
    case 2:
      return "string";
    default:
      return "bool";
  }
}

std::string GoFormatFloat(double v, char fmt, int prec) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  const bool neg = std::signbit(v);
  const bool shortest = prec < 0;
  char buf[512];
  switch (fmt) {
    case 'e':
    case 'E': {
      Digits g = Decompose(v, shortest ? -1 : prec + 1);
      int p = shortest ? std::max(static_cast<int>(g.d.size()) - 1, 0) : prec;
      return FmtE(neg, g, p, fmt);
    }
    case 'f': {
      auto r = shortest ? std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed)
                        : std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed,
                                        std::min(prec, 300));
      if (r.ec != std::errc()) return "NaN";
      return std::string(buf, r.ptr);
    }
    default: {  // 'g', 'G'
      const char e = fmt == 'G' ? 'E' : 'e';
      int p = prec == 0 ? 1 : prec;
      Digits g = Decompose(v, shortest ? -1 : p);
      const int nd = static_cast<int>(g.d.size());
      int eprec = p;
      if (shortest) {
        p = nd;
        eprec = 6;
      } else if (eprec > nd && nd >= g.dp) {
        eprec = nd;
      }
      const int exp = g.dp - 1;
      if (exp < -4 || exp >= eprec) {
        if (p > nd) p = nd;
        return FmtE(neg, g, std::max(p - 1, 0), e);
      }
      if (p > g.dp) p = nd;
      return FmtF(neg, g, std::max(p - g.dp, 0));
    }
  }
}

std::string GoJsonFloat(double v) {
  const double a = std::fabs(v);
  if (a != 0 && (a < 1e-6 || a >= 1e21)) {
    std::string s = GoFormatFloat(v, 'e', -1);
    size_t n = s.size();
    if (n >= 4 && s[n - 4] == 'e' && s[n - 3] == '-' && s[n - 2] == '0') {
      s.erase(n - 2, 1);
    }
    return s;
  }
  return GoFormatFloat(v, 'f', -1);
}

std::string GoSprintf(std::string_view format, const std::vector<GoArg>& args) {
  std::string out;
  size_t argi = 0;
  size_t i = 0;
  while (i < format.size()) {
    char c = format[i];
    if (c != '%') {
      out.push_back(c);
      ++i;
      continue;
    }
    ++i;
    Spec sp;
    for (; i < format.size(); ++i) {
      char f = format[i];
      if (f == '+') {
        sp.plus = true;
      } else if (f == '-') {
        sp.minus = true;
      } else if (f == ' ') {
        sp.space = true;
      } else if (f == '0') {
        sp.zero = true;
      } else if (f == '#') {
        sp.sharp = true;
      } else {
        break;
      }
    }
    auto number = [&](int& target, bool& present) {
      if (i < format.size() && format[i] == '*') {
        ++i;
        present = true;
        if (argi < args.size() && std::holds_alternative<int64_t>(args[argi])) {
          target = static_cast<int>(std::get<int64_t>(args[argi++]));
        } else {
          ++argi;
          out += "%!(BADWIDTH)";
          present = false;
        }
        return;
      }
      while (i < format.size() && format[i] >= '0' && format[i] <= '9') {
        present = true;
        target = std::min(target * 10 + (format[i] - '0'), 1000000);
        ++i;
      }
    };
    number(sp.width, sp.has_width);
    if (sp.has_width && sp.width < 0) {
      sp.minus = true;
      sp.width = -sp.width;
    }
    if (i < format.size() && format[i] == '.') {
      ++i;
      sp.has_prec = true;
      bool dummy = false;
      number(sp.prec, dummy);
      if (sp.prec < 0) sp.has_prec = false;
    }
    if (i >= format.size()) {
      out += "%!(NOVERB)";
      break;
    }
    char verb = format[i++];
    if (verb == '%') {
      out.push_back('%');
      continue;
    }
    if (argi >= args.size()) {
      out += std::string("%!") + verb + "(MISSING)";
      continue;
    }
    out += FormatArg(args[argi++], verb, sp);
  }
  if (argi < args.size()) {
    out += "%!(EXTRA ";
    for (size_t k = argi; k < args.size(); ++k) {
      if (k > argi) out += ", ";
      out += GoTypeName(args[k]);
      out += "=";
      out += DefaultString(args[k]);
    }
    out += ")";
  }
  return out;
}

namespace {
std::string Fraction(int64_t unix_ms) {
  int ms = static_cast<int>(((unix_ms % 1000) + 1000) % 1000);
  if (ms == 0) return "";
  char buf[8];
  std::snprintf(buf, sizeof buf, ".%03d", ms);
  std::string s(buf);
  while (s.back() == '0') s.pop_back();
  return s;
}

std::tm UtcTm(int64_t unix_ms) {
  std::time_t secs =
      static_cast<std::time_t>(unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return tm;
}
}  // namespace

std::string FormatRfc3339Millis(int64_t unix_ms) {
  std::tm tm = UtcTm(unix_ms);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf + Fraction(unix_ms) + "Z";
}

std::string FormatGoTimeString(int64_t unix_ms) {
  std::tm tm = UtcTm(unix_ms);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf + Fraction(unix_ms) + " +0000 UTC";
}

}  // namespace llmscope::alerts
