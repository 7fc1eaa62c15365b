#include "promql/labels.h"

#include <algorithm>
#include <cstring>
#include <functional>

namespace llmscope::promql {
namespace {

// Each name and value is hashed on its own and folded in order, so {a="bc"} and {ab="c"}
// hash differently (the "missing separator" pitfall Prometheus guards against). Names and
// values are short (most under 16 bytes), so the bytes are hashed inline, a word at a time,
// rather than by a library call per string: grouping hashes every selected series.
constexpr uint64_t kSeed = 1469598103934665603ull;
constexpr uint64_t kMul = 0xc4ceb9fe1a85ec53ull;

inline uint64_t Load64(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}
inline uint64_t Load32(const char* p) {
  uint32_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}
inline uint64_t Fold(uint64_t h, uint64_t w) {
  h = (h ^ w) * kMul;
  return h ^ (h >> 32);
}

inline uint64_t HashBytes(std::string_view s) {
  const char* p = s.data();
  size_t n = s.size();
  uint64_t h = Fold(0x9e3779b97f4a7c15ull, n);  // the length: tails below may overlap
  for (; n > 8; n -= 8, p += 8) h = Fold(h, Load64(p));
  // The last 1..8 bytes, read as (overlapping) words so that no byte-wise loop is needed.
  if (n >= 4) {
    h = Fold(h, (Load32(p) << 32) | Load32(p + n - 4));
  } else if (n > 0) {
    const auto b = [p](size_t i) {
      return static_cast<uint64_t>(static_cast<unsigned char>(p[i]));
    };
    h = Fold(h, (b(0) << 16) | (b(n / 2) << 8) | b(n - 1));
  }
  return h;
}

inline uint64_t Mix(uint64_t h, std::string_view s) {
  h ^= HashBytes(s) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}

// Name equality and order with the first byte checked inline: label names mostly differ
// there already, which saves a call to memcmp (a good part of grouping and lookups).
inline bool SameName(std::string_view a, std::string_view b) {
  return a.size() == b.size() && (a.empty() || (a[0] == b[0] && a == b));
}
inline int CompareName(std::string_view a, std::string_view b) {
  if (!a.empty() && !b.empty() && a[0] != b[0]) {
    return static_cast<unsigned char>(a[0]) < static_cast<unsigned char>(b[0]) ? -1 : 1;
  }
  return a.compare(b);
}
inline bool Listed(const std::vector<std::string>& names, std::string_view name) {
  for (const auto& n : names) {
    if (SameName(n, name)) return true;
  }
  return false;
}

void Normalize(std::vector<Label>* v) {
  std::stable_sort(v->begin(), v->end(),
                   [](const Label& a, const Label& b) { return a.name < b.name; });
  // Keep the last of equal names, then drop empty values.
  std::vector<Label> out;
  out.reserve(v->size());
  for (auto& l : *v) {
    if (!out.empty() && out.back().name == l.name) {
      out.back() = std::move(l);
    } else {
      out.push_back(std::move(l));
    }
  }
  std::erase_if(out, [](const Label& l) { return l.value.empty(); });
  *v = std::move(out);
}

}  // namespace

Labels Labels::Wrap(std::vector<Label> labels) {
  Labels l;
  if (labels.empty()) return l;
  l.last_ = static_cast<uint32_t>(labels.size());
  l.pairs_ = std::make_shared<const std::vector<Label>>(std::move(labels));
  return l;
}

Labels::Labels(std::initializer_list<std::pair<std::string_view, std::string_view>> pairs) {
  std::vector<Label> v;
  v.reserve(pairs.size());
  for (const auto& [n, val] : pairs) v.push_back({std::string(n), std::string(val)});
  Normalize(&v);
  *this = Wrap(std::move(v));
}

Labels Labels::FromVector(std::vector<Label> labels) {
  Normalize(&labels);
  return Wrap(std::move(labels));
}

Labels Labels::FromSorted(std::vector<Label> labels) { return Wrap(std::move(labels)); }

Labels Labels::FromShared(std::shared_ptr<const std::vector<Label>> labels) {
  Labels l;
  if (labels == nullptr || labels->empty()) return l;
  l.last_ = static_cast<uint32_t>(labels->size());
  l.pairs_ = std::move(labels);
  return l;
}

std::string_view Labels::Get(std::string_view name) const {
  for (const auto& l : *this) {
    if (SameName(l.name, name)) return l.value;
  }
  return {};
}

uint64_t Labels::Hash() const {
  uint64_t h = kSeed;
  for (const auto& l : *this) {
    h = Mix(h, l.name);
    h = Mix(h, l.value);
  }
  return h;
}

uint64_t Labels::HashFor(const std::vector<std::string>& sorted_names, bool include) const {
  uint64_t h = kSeed;
  size_t j = 0;
  for (const auto& l : *this) {
    // One three-way comparison per step: names are compared by memcmp, the cost here.
    bool listed = false;
    while (j < sorted_names.size()) {
      const int c = CompareName(sorted_names[j], l.name);
      if (c >= 0) {
        listed = c == 0;
        break;
      }
      ++j;
    }
    if (listed == include) {
      h = Mix(h, l.name);
      h = Mix(h, l.value);
    }
  }
  return h;
}

template <typename Keep>
Labels Labels::Filter(Keep keep) const {
  const size_t n = size();
  size_t lo = 0;
  while (lo < n && !keep((*this)[lo])) ++lo;
  if (lo == n) return Labels();
  size_t hi = lo + 1;
  while (hi < n && keep((*this)[hi])) ++hi;
  size_t next = hi;
  while (next < n && !keep((*this)[next])) ++next;
  if (next == n) {
    // One contiguous run: a narrower view of the same pairs.
    Labels out = *this;
    out.first_ = first_ + static_cast<uint32_t>(lo);
    out.last_ = first_ + static_cast<uint32_t>(hi);
    return out;
  }
  std::vector<Label> out;
  out.reserve(n - lo);
  for (size_t i = lo; i < n; ++i) {
    if (keep((*this)[i])) out.push_back((*this)[i]);
  }
  return Wrap(std::move(out));
}

Labels Labels::With(std::string_view name, std::string_view value) const {
  if (Get(name) == value) return *this;  // already so (an empty value: already absent)
  std::vector<Label> out;
  out.reserve(size() + 1);
  bool done = false;
  for (const auto& l : *this) {
    if (!done && l.name >= name) {
      done = true;
      if (!value.empty()) out.push_back({std::string(name), std::string(value)});
      if (l.name == name) continue;
    }
    out.push_back(l);
  }
  if (!done && !value.empty()) out.push_back({std::string(name), std::string(value)});
  return Wrap(std::move(out));
}

Labels Labels::Without(std::string_view name) const {
  return Filter([name](const Label& l) { return !SameName(l.name, name); });
}

Labels Labels::WithoutNames(const std::vector<std::string>& names) const {
  return Filter([&names](const Label& l) { return !Listed(names, l.name); });
}

Labels Labels::KeepOnly(const std::vector<std::string>& names) const {
  return Filter([&names](const Label& l) { return Listed(names, l.name); });
}

bool Labels::operator==(const Labels& o) const {
  if (size() != o.size()) return false;
  if (pairs_ == o.pairs_ && first_ == o.first_) return true;
  return std::equal(begin(), end(), o.begin());
}

std::string Labels::ToString() const {
  std::string s = "{";
  for (size_t i = 0; i < size(); ++i) {
    if (i > 0) s += ", ";
    s += (*this)[i].name;
    s += '=';
    s += QuoteString((*this)[i].value);
  }
  s += '}';
  return s;
}

int Labels::Compare(const Labels& a, const Labels& b) {
  size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (int c = a[i].name.compare(b[i].name); c != 0) return c < 0 ? -1 : 1;
    if (int c = a[i].value.compare(b[i].value); c != 0) return c < 0 ? -1 : 1;
  }
  if (a.size() == b.size()) return 0;
  return a.size() < b.size() ? -1 : 1;
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80             ? 0
            : (c & 0xE0) == 0xC0 ? 1
            : (c & 0xF0) == 0xE0 ? 2
            : (c & 0xF8) == 0xF0 ? 3
                                 : -1;
    if (n < 0 || (n == 1 && c < 0xC2)) return false;
    if (i + n >= s.size() && n > 0) return false;
    for (int k = 1; k <= n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n + 1;
  }
  return true;
}

bool IsValidLabelName(std::string_view s) { return !s.empty() && IsValidUtf8(s); }

std::string QuoteString(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      // Copy a valid multi-byte sequence; escape a stray byte as \xHH.
      int n = (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
      if (n > 0 && i + n < s.size() && IsValidUtf8(s.substr(i, n + 1))) {
        out.append(s.substr(i, n + 1));
        i += n + 1;
        continue;
      }
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
      ++i;
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
  return out;
}

core::Result<LabelMatcher> LabelMatcher::Make(MatchType type, std::string name, std::string value) {
  LabelMatcher m;
  m.type_ = type;
  m.name_ = std::move(name);
  m.value_ = std::move(value);
  if (type == MatchType::kRegexMatch || type == MatchType::kRegexNoMatch) {
    auto re = Regex::Compile(m.value_);
    if (!re.ok()) return re.status();
    m.re_ = std::move(*re);
  }
  return m;
}

bool LabelMatcher::Matches(std::string_view v) const {
  switch (type_) {
    case MatchType::kEqual:
      return v == value_;
    case MatchType::kNotEqual:
      return v != value_;
    case MatchType::kRegexMatch:
      return re_->FullMatch(v);
    case MatchType::kRegexNoMatch:
      return !re_->FullMatch(v);
  }
  return false;
}

std::string LabelMatcher::ToString() const {
  static constexpr const char* kOps[] = {"=", "!=", "=~", "!~"};
  return name_ + kOps[static_cast<int>(type_)] + QuoteString(value_);
}

bool MatchesAll(const std::vector<LabelMatcher>& matchers, const Labels& labels) {
  for (const auto& m : matchers) {
    if (!m.Matches(labels.Get(m.name()))) return false;
  }
  return true;
}

}  // namespace llmscope::promql
