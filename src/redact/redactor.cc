#include "redact/redactor.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <functional>

namespace llmscope::redact {
namespace {

// A found secret: [begin, end) of the text and its kind.
struct Span {
  size_t begin = 0;
  size_t end = 0;
  std::string_view kind;
};

bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsTokenChar(char c) { return IsAlnum(c) || c == '-' || c == '_'; }
bool IsEmailLocal(char c) {
  return IsAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}
bool IsDomainChar(char c) { return IsAlnum(c) || c == '.' || c == '-'; }
// Whether text[i] starts a word (the previous character does not continue a token).
bool WordStart(std::string_view t, size_t i) { return i == 0 || !IsTokenChar(t[i - 1]); }

void FindEmails(std::string_view t, std::vector<Span>& out) {
  for (size_t at = t.find('@'); at != std::string_view::npos; at = t.find('@', at + 1)) {
    size_t b = at;
    while (b > 0 && IsEmailLocal(t[b - 1])) --b;
    size_t e = at + 1;
    while (e < t.size() && IsDomainChar(t[e])) ++e;
    while (e > at + 1 && (t[e - 1] == '.' || t[e - 1] == '-')) --e;  // trailing punctuation
    if (b == at || e == at + 1) continue;
    const std::string_view domain = t.substr(at + 1, e - at - 1);
    const size_t dot = domain.rfind('.');
    if (dot == std::string_view::npos || dot == 0 || domain.size() - dot - 1 < 2) continue;
    bool alpha_tld = true;
    for (char c : domain.substr(dot + 1)) alpha_tld = alpha_tld && std::isalpha(c);
    if (!alpha_tld) continue;
    out.push_back({b, e, "email"});
  }
}

// A token made of `prefix` then at least `min_len` (at most `max_len`) characters of
// `is_body`, starting a word.
void FindPrefixed(std::string_view t, std::string_view prefix, size_t min_len, size_t max_len,
                  const std::function<bool(char)>& is_body, std::string_view kind,
                  std::vector<Span>& out) {
  for (size_t p = t.find(prefix); p != std::string_view::npos; p = t.find(prefix, p + 1)) {
    if (!WordStart(t, p)) continue;
    size_t e = p + prefix.size();
    while (e < t.size() && is_body(t[e]) && e - p - prefix.size() < max_len) ++e;
    const size_t n = e - p - prefix.size();
    if (n < min_len || (e < t.size() && is_body(t[e]))) continue;
    out.push_back({p, e, kind});
  }
}

void FindApiKeys(std::string_view t, std::vector<Span>& out) {
  auto upper_digit = [](char c) { return IsDigit(c) || (c >= 'A' && c <= 'Z'); };
  FindPrefixed(t, "sk-", 20, 256, IsTokenChar, "api_key", out);
  FindPrefixed(t, "AKIA", 16, 16, upper_digit, "api_key", out);
  for (std::string_view p : {"ghp_", "gho_", "ghu_", "ghs_", "ghr_"}) {
    FindPrefixed(t, p, 36, 255, IsAlnum, "api_key", out);
  }
  for (std::string_view p : {"xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-"}) {
    FindPrefixed(t, p, 10, 255, IsTokenChar, "api_key", out);
  }
  FindPrefixed(t, "AIza", 35, 35, IsTokenChar, "api_key", out);
}

void FindBearer(std::string_view t, std::vector<Span>& out) {
  auto is_tok = [](char c) {
    return IsTokenChar(c) || c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
  };
  for (size_t p = t.find("Bearer "); p != std::string_view::npos; p = t.find("Bearer ", p + 1)) {
    size_t b = p + 7;
    size_t e = b;
    while (e < t.size() && is_tok(t[e])) ++e;
    if (e - b >= 20) out.push_back({b, e, "bearer"});
  }
}

bool Luhn(const std::string& digits) {
  int sum = 0;
  bool dbl = false;
  for (size_t i = digits.size(); i-- > 0;) {
    int d = digits[i] - '0';
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return sum % 10 == 0;
}

void FindCardsAndSsn(std::string_view t, std::vector<Span>& out) {
  size_t i = 0;
  while (i < t.size()) {
    if (!IsDigit(t[i]) || (i > 0 && (IsAlnum(t[i - 1])))) {
      ++i;
      continue;
    }
    // A run of digits with single space/dash separators.
    std::string digits;
    size_t e = i;
    size_t last_digit = i;
    while (e < t.size()) {
      if (IsDigit(t[e])) {
        digits.push_back(t[e]);
        last_digit = e;
        ++e;
      } else if ((t[e] == ' ' || t[e] == '-') && e + 1 < t.size() && IsDigit(t[e + 1]) &&
                 IsDigit(t[e - 1])) {
        ++e;
      } else {
        break;
      }
    }
    const size_t end = last_digit + 1;
    const bool word_end = end >= t.size() || !IsAlnum(t[end]);
    const std::string_view run = t.substr(i, end - i);
    if (word_end && run.size() == 11 && run[3] == '-' && run[6] == '-' && digits.size() == 9) {
      out.push_back({i, end, "us_ssn"});
    } else if (word_end && digits.size() >= 13 && digits.size() <= 19 && Luhn(digits)) {
      out.push_back({i, end, "card_number"});
    }
    i = end + 1;
  }
}

}  // namespace

core::Result<std::unique_ptr<Redactor>> Redactor::Create(RedactOptions options) {
  std::unique_ptr<Redactor> r(new Redactor(options.builtin));
  for (auto& [name, re] : options.patterns) {
    bool ok_name = !name.empty();
    for (char c : name) ok_name = ok_name && (std::islower(c) || IsDigit(c) || c == '_');
    if (!ok_name) {
      return core::InvalidArgument("redaction pattern name '" + name +
                                   "' must be lowercase letters, digits and _");
    }
    try {
      r->patterns_.push_back({name, std::regex(re, std::regex::ECMAScript)});
    } catch (const std::regex_error& e) {
      return core::InvalidArgument("redaction pattern " + name + ": '" + re +
                                   "' is not a valid regular expression: " + e.what());
    }
  }
  return r;
}

int Redactor::Redact(std::string& text, std::vector<std::string_view>* kinds) const {
  if (text.empty()) return 0;
  std::vector<Span> found;
  if (builtin_) {
    FindEmails(text, found);
    FindApiKeys(text, found);
    FindBearer(text, found);
    FindCardsAndSsn(text, found);
  }
  for (const Pattern& p : patterns_) {
    for (auto it = std::sregex_iterator(text.begin(), text.end(), p.regex);
         it != std::sregex_iterator(); ++it) {
      if (it->length(0) == 0) continue;
      const size_t b = static_cast<size_t>(it->position(0));
      found.push_back({b, b + static_cast<size_t>(it->length(0)), p.name});
    }
  }
  if (found.empty()) return 0;
  // Earliest first; of overlapping finds the first (then the longest) wins.
  std::sort(found.begin(), found.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end > b.end;
  });
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  int n = 0;
  for (const Span& s : found) {
    if (s.begin < pos) continue;  // inside one already replaced
    out.append(text, pos, s.begin - pos);
    out += "[REDACTED:";
    out += s.kind;
    out += ']';
    pos = s.end;
    ++n;
    if (kinds != nullptr) kinds->push_back(s.kind);
  }
  out.append(text, pos, std::string::npos);
  text = std::move(out);
  return n;
}

}  // namespace llmscope::redact
