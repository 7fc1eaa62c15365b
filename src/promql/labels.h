#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "promql/regex.h"

namespace llmscope::promql {

inline constexpr std::string_view kMetricName = "__name__";

struct Label {
  std::string name;
  std::string value;
  bool operator==(const Label&) const = default;
  auto operator<=>(const Label&) const = default;
};

// A label set: name/value pairs sorted by name, names unique, no empty values (Prometheus
// treats an empty value as an absent label). The pairs are immutable and shared: copying a
// Labels copies a reference (no allocation), so a set can come from storage into a query
// answer without being copied (FromShared). A Labels is a contiguous run of a shared pair
// vector, so the derived sets that keep a contiguous run of the pairs (dropping __name__,
// which sorts first in most sets, or the grouping labels of an aggregation, which are often
// adjacent) share the pairs too; other derived sets get their own copy.
// Thread-safety: a value type; const methods may be called concurrently, and copies may be
// used and destroyed on different threads.
class Labels {
 public:
  Labels() = default;
  // Sorts, drops empty values; on a repeated name the last one wins.
  Labels(std::initializer_list<std::pair<std::string_view, std::string_view>> pairs);
  static Labels FromVector(std::vector<Label> labels);
  // REQUIRES: `labels` already sorted by name, unique, without empty values.
  static Labels FromSorted(std::vector<Label> labels);
  // Shares `labels` (null: the empty set). REQUIRES: as FromSorted, and never modified after.
  static Labels FromShared(std::shared_ptr<const std::vector<Label>> labels);

  // The value of `name`, or "" when absent.
  std::string_view Get(std::string_view name) const;
  bool Has(std::string_view name) const { return !Get(name).empty(); }
  bool empty() const { return first_ == last_; }
  size_t size() const { return last_ - first_; }
  const Label& operator[](size_t i) const { return (*pairs_)[first_ + i]; }
  const Label* begin() const { return pairs_ ? pairs_->data() + first_ : nullptr; }
  const Label* end() const { return pairs_ ? pairs_->data() + last_ : nullptr; }

  // 64-bit hash of names and values; equal sets hash equally.
  uint64_t Hash() const;
  // Hash of only the labels named in `names` (sorted), or of all but those.
  uint64_t HashFor(const std::vector<std::string>& sorted_names, bool include) const;

  // Copies with one label set (empty value deletes), deleted, or only `names` kept.
  Labels With(std::string_view name, std::string_view value) const;
  Labels Without(std::string_view name) const;
  Labels WithoutNames(const std::vector<std::string>& names) const;
  Labels KeepOnly(const std::vector<std::string>& names) const;
  Labels WithoutMetricName() const { return Without(kMetricName); }

  // Prometheus' text form: {a="1", b="2"} (every label inside the braces, Go-quoted).
  std::string ToString() const;

  bool operator==(const Labels& o) const;
  // Lexicographic by (name, value) pairs, then by length, as Prometheus' labels.Compare.
  static int Compare(const Labels& a, const Labels& b);
  bool operator<(const Labels& o) const { return Compare(*this, o) < 0; }

 private:
  // Wraps `labels` (as FromSorted), keeping null for an empty set.
  static Labels Wrap(std::vector<Label> labels);
  // The pairs `keep(label)` accepts: a narrower view when they are contiguous, else a copy.
  // Defined and used in labels.cc only.
  template <typename Keep>
  Labels Filter(Keep keep) const;

  // Null for an empty set, so that a default Labels costs no allocation. The set is
  // (*pairs_)[first_, last_).
  std::shared_ptr<const std::vector<Label>> pairs_;
  uint32_t first_ = 0;
  uint32_t last_ = 0;
};

struct LabelsHash {
  size_t operator()(const Labels& l) const { return static_cast<size_t>(l.Hash()); }
};

// Quotes like Go's strconv.Quote: printable UTF-8 kept, others escaped (\n, \xHH, \u....).
std::string QuoteString(std::string_view s);
// True for a valid UTF-8 byte sequence.
bool IsValidUtf8(std::string_view s);
// Label names: any non-empty valid UTF-8 (Prometheus 3 semantics).
bool IsValidLabelName(std::string_view s);

enum class MatchType { kEqual, kNotEqual, kRegexMatch, kRegexNoMatch };

// One label matcher of a selector. Regex matchers are compiled once, anchored at both ends.
// Thread-safety: immutable after Make; Matches may be called concurrently.
class LabelMatcher {
 public:
  static core::Result<LabelMatcher> Make(MatchType type, std::string name, std::string value);

  MatchType type() const { return type_; }
  const std::string& name() const { return name_; }
  const std::string& value() const { return value_; }
  // Matches a label value ("" for an absent label).
  bool Matches(std::string_view v) const;
  // "name=\"value\"" with the operator.
  std::string ToString() const;

 private:
  MatchType type_ = MatchType::kEqual;
  std::string name_;
  std::string value_;
  std::shared_ptr<const Regex> re_;
};

// True when every matcher accepts `labels`.
bool MatchesAll(const std::vector<LabelMatcher>& matchers, const Labels& labels);

}  // namespace llmscope::promql
