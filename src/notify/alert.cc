#include "notify/alert.h"

#include <cctype>
#include <charconv>
#include <climits>
#include <cstdio>

namespace llmscope::notify {

namespace {

constexpr uint64_t kFnvOffset = 14695981039346656037ULL;
constexpr uint64_t kFnvPrime = 1099511628211ULL;

uint64_t FnvAdd(uint64_t h, std::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= kFnvPrime;
  }
  return h;
}

uint64_t FnvAddByte(uint64_t h, unsigned char c) {
  h ^= c;
  h *= kFnvPrime;
  return h;
}

bool ValidLabelName(std::string_view n) {
  if (n.empty()) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

void AppendQuoted(std::string& out, std::string_view v) {
  out += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  out += '"';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

bool ParseDigits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

}  // namespace

uint64_t Fingerprint(const LabelSet& labels) {
  if (labels.empty()) return kFnvOffset;
  uint64_t h = kFnvOffset;
  for (const auto& [name, value] : labels) {  // std::map: sorted by name
    h = FnvAdd(h, name);
    h = FnvAddByte(h, 0xff);
    h = FnvAdd(h, value);
    h = FnvAddByte(h, 0xff);
  }
  return h;
}

std::string FingerprintHex(uint64_t fp) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(fp));
  return buf;
}

std::string LabelSetString(const LabelSet& labels) {
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out += ", ";
    first = false;
    out += name;
    out += '=';
    AppendQuoted(out, value);
  }
  out += '}';
  return out;
}

core::Result<Matcher> Matcher::Make(Type type, std::string name, std::string value) {
  if (!ValidLabelName(name)) {
    return core::InvalidArgument("invalid label name \"" + name + "\"");
  }
  Matcher m;
  m.type_ = type;
  m.name_ = std::move(name);
  m.value_ = std::move(value);
  if (m.is_regex()) {
    try {
      m.re_ = std::make_shared<const std::regex>(m.value_, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return core::InvalidArgument("invalid regular expression \"" + m.value_ + "\": " + e.what());
    }
  }
  return m;
}

bool Matcher::MatchesValue(std::string_view v) const {
  switch (type_) {
    case Type::kEqual:
      return v == value_;
    case Type::kNotEqual:
      return v != value_;
    case Type::kRegex:
      return std::regex_match(v.begin(), v.end(), *re_);
    case Type::kNotRegex:
      return !std::regex_match(v.begin(), v.end(), *re_);
  }
  return false;
}

bool Matcher::Matches(const LabelSet& labels) const {
  auto it = labels.find(name_);
  return MatchesValue(it == labels.end() ? std::string_view() : std::string_view(it->second));
}

std::string Matcher::String() const {
  std::string out = name_;
  switch (type_) {
    case Type::kEqual:
      out += "=";
      break;
    case Type::kNotEqual:
      out += "!=";
      break;
    case Type::kRegex:
      out += "=~";
      break;
    case Type::kNotRegex:
      out += "!~";
      break;
  }
  AppendQuoted(out, value_);
  return out;
}

bool MatchesAll(const Matchers& matchers, const LabelSet& labels) {
  for (const Matcher& m : matchers) {
    if (!m.Matches(labels)) return false;
  }
  return true;
}

std::string MatchersString(const Matchers& matchers) {
  std::string out = "{";
  for (size_t i = 0; i < matchers.size(); ++i) {
    if (i > 0) out += ", ";
    out += matchers[i].String();
  }
  out += '}';
  return out;
}

core::Result<Matcher> ParseMatcher(std::string_view text) {
  const std::string_view s = Trim(text);
  size_t i = 0;
  while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_')) ++i;
  const std::string name(Trim(s.substr(0, i)));
  if (name.empty()) {
    return core::InvalidArgument("matcher \"" + std::string(text) + "\": missing label name");
  }
  std::string_view rest = Trim(s.substr(i));
  Matcher::Type type;
  if (rest.starts_with("=~")) {
    type = Matcher::Type::kRegex;
    rest.remove_prefix(2);
  } else if (rest.starts_with("!~")) {
    type = Matcher::Type::kNotRegex;
    rest.remove_prefix(2);
  } else if (rest.starts_with("!=")) {
    type = Matcher::Type::kNotEqual;
    rest.remove_prefix(2);
  } else if (rest.starts_with("=")) {
    type = Matcher::Type::kEqual;
    rest.remove_prefix(1);
  } else {
    return core::InvalidArgument("matcher \"" + std::string(text) +
                                 "\": expected one of =, !=, =~, !~ after the label name");
  }
  rest = Trim(rest);
  std::string value;
  if (!rest.empty() && rest.front() == '"') {
    size_t j = 1;
    bool closed = false;
    for (; j < rest.size(); ++j) {
      const char c = rest[j];
      if (c == '\\' && j + 1 < rest.size()) {
        const char e = rest[++j];
        value += e == 'n' ? '\n' : e;
      } else if (c == '"') {
        closed = true;
        break;
      } else {
        value += c;
      }
    }
    if (!closed) {
      return core::InvalidArgument("matcher \"" + std::string(text) + "\": unterminated quote");
    }
    if (!Trim(rest.substr(j + 1)).empty()) {
      return core::InvalidArgument("matcher \"" + std::string(text) +
                                   "\": unexpected text after the quoted value");
    }
  } else {
    if (rest.find('"') != std::string_view::npos) {
      return core::InvalidArgument("matcher \"" + std::string(text) + "\": stray quote");
    }
    value = std::string(rest);
  }
  auto m = Matcher::Make(type, name, std::move(value));
  if (!m.ok()) {
    return core::InvalidArgument("matcher \"" + std::string(text) + "\": " + m.status().message());
  }
  return m;
}

core::Result<core::Nanos> ParseDuration(std::string_view text) {
  const std::string_view s = Trim(text);
  auto bad = [&] {
    return core::InvalidArgument("invalid duration \"" + std::string(text) +
                                 "\" (expected e.g. 30s, 5m, 1h30m, 500ms)");
  };
  if (s == "0") return core::Nanos(0);
  if (s.empty()) return bad();
  struct Unit {
    std::string_view name;
    int64_t ms;
  };
  // Order: each unit may appear once, from largest to smallest (Prometheus' rule).
  static constexpr Unit kUnits[] = {{"y", 365LL * 24 * 3600 * 1000},
                                    {"w", 7LL * 24 * 3600 * 1000},
                                    {"d", 24LL * 3600 * 1000},
                                    {"h", 3600LL * 1000},
                                    {"m", 60LL * 1000},
                                    {"s", 1000},
                                    {"ms", 1}};
  int64_t total_ms = 0;
  int last_unit = -1;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
    if (j == i) return bad();
    int64_t n = 0;
    auto [p, ec] = std::from_chars(s.data() + i, s.data() + j, n);
    if (ec != std::errc() || p != s.data() + j) return bad();
    size_t k = j;
    while (k < s.size() && s[k] >= 'a' && s[k] <= 'z') ++k;
    const std::string_view unit = s.substr(j, k - j);
    int idx = -1;
    for (int u = 0; u < 7; ++u) {
      if (kUnits[u].name == unit) idx = u;
    }
    if (idx < 0 || idx <= last_unit) return bad();
    last_unit = idx;
    if (n > (INT64_MAX / 1'000'000 - total_ms) / kUnits[idx].ms) return bad();
    total_ms += n * kUnits[idx].ms;
    i = k;
  }
  return core::Nanos(total_ms * 1'000'000);
}

std::string FormatDuration(core::Nanos d) {
  int64_t ms = d.count() / 1'000'000;
  if (ms == 0) return "0s";
  std::string out;
  struct Unit {
    const char* name;
    int64_t ms;
  };
  static constexpr Unit kUnits[] = {{"y", 365LL * 24 * 3600 * 1000},
                                    {"w", 7LL * 24 * 3600 * 1000},
                                    {"d", 24LL * 3600 * 1000},
                                    {"h", 3600LL * 1000},
                                    {"m", 60LL * 1000},
                                    {"s", 1000},
                                    {"ms", 1}};
  for (const Unit& u : kUnits) {
    if (ms >= u.ms) {
      out += std::to_string(ms / u.ms) + u.name;
      ms %= u.ms;
    }
  }
  return out;
}

std::string FormatRfc3339(int64_t unix_nanos) {
  if (unix_nanos == 0) return "0001-01-01T00:00:00Z";
  int64_t secs = unix_nanos / 1'000'000'000;
  int64_t frac = unix_nanos % 1'000'000'000;
  if (frac < 0) {
    frac += 1'000'000'000;
    --secs;
  }
  int64_t days = secs / 86400;
  int64_t sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    --days;
  }
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, y, m, d);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04lld-%02u-%02uT%02d:%02d:%02d", static_cast<long long>(y), m,
                d, static_cast<int>(sod / 3600), static_cast<int>(sod / 60 % 60),
                static_cast<int>(sod % 60));
  std::string out = buf;
  if (frac != 0) {
    char f[16];
    std::snprintf(f, sizeof(f), ".%09lld", static_cast<long long>(frac));
    std::string fs = f;
    while (fs.back() == '0') fs.pop_back();
    out += fs;
  }
  out += 'Z';
  return out;
}

core::Result<int64_t> ParseRfc3339(std::string_view s) {
  auto bad = [&] {
    return core::InvalidArgument("invalid RFC 3339 time \"" + std::string(s) +
                                 "\" (expected e.g. 2024-01-02T15:04:05Z)");
  };
  int y, mo, d, h, mi, sec;
  if (s.size() < 20 || !ParseDigits(s, 0, 4, y) || s[4] != '-' || !ParseDigits(s, 5, 2, mo) ||
      s[7] != '-' || !ParseDigits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't') ||
      !ParseDigits(s, 11, 2, h) || s[13] != ':' || !ParseDigits(s, 14, 2, mi) || s[16] != ':' ||
      !ParseDigits(s, 17, 2, sec)) {
    return bad();
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return bad();
  size_t i = 19;
  int64_t frac = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (digits < 9) {
        frac = frac * 10 + (s[i] - '0');
        ++digits;
      }
      ++i;
    }
    if (digits == 0) return bad();
    while (digits++ < 9) frac *= 10;
  }
  int64_t offset_secs = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (!ParseDigits(s, i + 1, 2, oh) || i + 3 >= s.size() || s[i + 3] != ':' ||
        !ParseDigits(s, i + 4, 2, om)) {
      return bad();
    }
    offset_secs = (oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
    i += 6;
  } else {
    return bad();
  }
  if (i != s.size()) return bad();
  if (y == 1 && mo == 1 && d == 1 && h == 0 && mi == 0 && sec == 0 && frac == 0 &&
      offset_secs == 0) {
    return int64_t{0};
  }
  const int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  const int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_secs;
  return secs * 1'000'000'000 + frac;
}

}  // namespace llmscope::notify
