#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"

// The vocabulary of the notify module: alerts, label sets, matchers, fingerprints, and the
// time and duration formats Alertmanager and Prometheus use on the wire.
// Thread-safety: value types and pure functions; distinct instances may be used from distinct
// threads, a const instance from many.
namespace llmscope::notify {

using LabelSet = std::map<std::string, std::string>;

// One alert as Prometheus sends it to Alertmanager.
struct Alert {
  LabelSet labels;  // includes alertname
  LabelSet annotations;
  int64_t starts_at_unix_nanos = 0;
  // 0: unknown (firing until told otherwise; the dispatcher applies resolve_timeout);
  // in the future: firing; at or before now: resolved.
  int64_t ends_at_unix_nanos = 0;
  std::string generator_url;

  bool operator==(const Alert&) const = default;
};

// True when `a` is resolved at `now_unix_nanos` (ends_at set and not after now).
inline bool IsResolved(const Alert& a, int64_t now_unix_nanos) {
  return a.ends_at_unix_nanos != 0 && a.ends_at_unix_nanos <= now_unix_nanos;
}

// The 64-bit fingerprint of a label set, as Prometheus' model.LabelSet.Fingerprint computes
// it (FNV-1a over sorted name, 0xff, value, 0xff), so fingerprints agree with Alertmanager's.
uint64_t Fingerprint(const LabelSet& labels);
// The fingerprint as 16 lowercase hex digits ("%016x"), as Alertmanager renders it.
std::string FingerprintHex(uint64_t fp);

// `{a="1", b="2"}`: Prometheus' LabelSet.String(), the form group keys use.
std::string LabelSetString(const LabelSet& labels);

// One label matcher: name, operator, value. Regex matchers are anchored (the whole value
// must match), as in Alertmanager and Prometheus.
class Matcher {
 public:
  enum class Type { kEqual, kNotEqual, kRegex, kNotRegex };

  // INVALID_ARGUMENT for a regex that does not compile or an invalid label name.
  static core::Result<Matcher> Make(Type type, std::string name, std::string value);

  Type type() const { return type_; }
  const std::string& name() const { return name_; }
  const std::string& value() const { return value_; }
  bool is_regex() const { return type_ == Type::kRegex || type_ == Type::kNotRegex; }
  bool is_equal() const { return type_ == Type::kEqual || type_ == Type::kRegex; }

  // Matches the value of label `name` in `labels` (an absent label has the value "").
  bool Matches(const LabelSet& labels) const;
  bool MatchesValue(std::string_view v) const;
  // `name="value"`, `name=~"value"`, ...: the form ParseMatcher reads back.
  std::string String() const;

  bool operator==(const Matcher& o) const {
    return type_ == o.type_ && name_ == o.name_ && value_ == o.value_;
  }

 private:
  Matcher() = default;
  Type type_ = Type::kEqual;
  std::string name_;
  std::string value_;
  std::shared_ptr<const std::regex> re_;  // immutable once made; shared between copies
};

using Matchers = std::vector<Matcher>;

// True when every matcher matches (an empty list matches everything).
bool MatchesAll(const Matchers& matchers, const LabelSet& labels);
// `{a="1", b=~"x|y"}`.
std::string MatchersString(const Matchers& matchers);

// Parses one matcher as Alertmanager's config accepts it: `severity="critical"`,
// `team=~"a|b"`, `x!=y`, `x!~"y.*"`. The value may be double-quoted (with \" \\ \n escapes)
// or bare (the rest of the text, trimmed). INVALID_ARGUMENT names the problem.
core::Result<Matcher> ParseMatcher(std::string_view text);

// Prometheus duration syntax: one or more number+unit pairs from largest to smallest unit
// ("1h30m", "90s", "500ms"; units y w d h m s ms). "0" is zero. INVALID_ARGUMENT otherwise.
core::Result<core::Nanos> ParseDuration(std::string_view text);
// The inverse: "1h30m", "500ms", "0s".
std::string FormatDuration(core::Nanos d);

// RFC 3339 in UTC with the fraction trimmed of trailing zeros (Go's time.RFC3339Nano, as
// Alertmanager's JSON renders times): "2023-11-14T22:13:20Z", "2023-11-14T22:13:20.5Z".
// 0 renders as Go's zero time, "0001-01-01T00:00:00Z".
std::string FormatRfc3339(int64_t unix_nanos);
// Parses RFC 3339 with an optional fraction and a "Z" or "+hh:mm"/"-hh:mm" offset;
// "0001-01-01T00:00:00Z" parses as 0. INVALID_ARGUMENT otherwise.
core::Result<int64_t> ParseRfc3339(std::string_view text);

}  // namespace llmscope::notify
