#include "promql/labels.h"

#include <algorithm>
#include <functional>

namespace llmscope::promql {
namespace {

// Each name and value is hashed on its own (libstdc++'s 64-bit murmur over the bytes, fast
// on long strings) and folded in order, so {a="bc"} and {ab="c"} hash differently (the
// "missing separator" pitfall Prometheus guards against).
constexpr uint64_t kSeed = 1469598103934665603ull;

inline uint64_t Mix(uint64_t h, std::string_view s) {
  h ^= std::hash<std::string_view>{}(s) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
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

Labels::Labels(std::initializer_list<std::pair<std::string_view, std::string_view>> pairs) {
  labels_.reserve(pairs.size());
  for (const auto& [n, v] : pairs) labels_.push_back({std::string(n), std::string(v)});
  Normalize(&labels_);
}

Labels Labels::FromVector(std::vector<Label> labels) {
  Labels l;
  l.labels_ = std::move(labels);
  Normalize(&l.labels_);
  return l;
}

Labels Labels::FromSorted(std::vector<Label> labels) {
  Labels l;
  l.labels_ = std::move(labels);
  return l;
}

std::string_view Labels::Get(std::string_view name) const {
  for (const auto& l : labels_) {
    if (l.name == name) return l.value;
  }
  return {};
}

uint64_t Labels::Hash() const {
  uint64_t h = kSeed;
  for (const auto& l : labels_) {
    h = Mix(h, l.name);
    h = Mix(h, l.value);
  }
  return h;
}

uint64_t Labels::HashFor(const std::vector<std::string>& sorted_names, bool include) const {
  uint64_t h = kSeed;
  size_t j = 0;
  for (const auto& l : labels_) {
    while (j < sorted_names.size() && sorted_names[j] < l.name) ++j;
    bool listed = j < sorted_names.size() && sorted_names[j] == l.name;
    if (listed == include) {
      h = Mix(h, l.name);
      h = Mix(h, l.value);
    }
  }
  return h;
}

Labels Labels::With(std::string_view name, std::string_view value) const {
  Labels out;
  out.labels_.reserve(labels_.size() + 1);
  bool done = false;
  for (const auto& l : labels_) {
    if (!done && l.name >= name) {
      done = true;
      if (!value.empty()) out.labels_.push_back({std::string(name), std::string(value)});
      if (l.name == name) continue;
    }
    out.labels_.push_back(l);
  }
  if (!done && !value.empty()) out.labels_.push_back({std::string(name), std::string(value)});
  return out;
}

Labels Labels::Without(std::string_view name) const {
  Labels out;
  out.labels_.reserve(labels_.size());
  for (const auto& l : labels_) {
    if (l.name != name) out.labels_.push_back(l);
  }
  return out;
}

Labels Labels::WithoutNames(const std::vector<std::string>& names) const {
  Labels out;
  out.labels_.reserve(labels_.size());
  for (const auto& l : labels_) {
    if (std::find(names.begin(), names.end(), l.name) == names.end()) out.labels_.push_back(l);
  }
  return out;
}

Labels Labels::KeepOnly(const std::vector<std::string>& names) const {
  Labels out;
  for (const auto& l : labels_) {
    if (std::find(names.begin(), names.end(), l.name) != names.end()) out.labels_.push_back(l);
  }
  return out;
}

std::string Labels::ToString() const {
  std::string s = "{";
  for (size_t i = 0; i < labels_.size(); ++i) {
    if (i > 0) s += ", ";
    s += labels_[i].name;
    s += '=';
    s += QuoteString(labels_[i].value);
  }
  s += '}';
  return s;
}

int Labels::Compare(const Labels& a, const Labels& b) {
  size_t n = std::min(a.labels_.size(), b.labels_.size());
  for (size_t i = 0; i < n; ++i) {
    if (int c = a.labels_[i].name.compare(b.labels_[i].name); c != 0) return c < 0 ? -1 : 1;
    if (int c = a.labels_[i].value.compare(b.labels_[i].value); c != 0) return c < 0 ? -1 : 1;
  }
  if (a.labels_.size() == b.labels_.size()) return 0;
  return a.labels_.size() < b.labels_.size() ? -1 : 1;
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
