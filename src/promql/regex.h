#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace llmscope::promql {

// A regular expression in the RE2 syntax that Prometheus label matchers use, always matched
// against the whole input (Prometheus anchors every matcher as ^(?s:re)$).
//
// Why not std::regex: it lacks RE2's inline flags ((?i), (?i:...)) that real selectors use,
// and its backtracking recursion can exhaust the stack on long label values. This is a
// Thompson-NFA (Pike VM) matcher: time linear in pattern size times input length, no
// recursion on the input, bounded memory.
//
// Supported: literals (UTF-8), `.`, classes `[a-z]`, `[^...]`, `[[:alpha:]]`, escapes
// \d \D \s \S \w \W \n \t \r \f \v \xHH \x{H...} and escaped punctuation, groups `(...)`,
// `(?:...)`, `(?P<name>...)`, `(?<name>...)`, flags `(?i)`, `(?s)`, `(?m)`, `(?U)` (and
// `(?flags:...)`, `(?-i)`), alternation, `* + ? {n} {n,} {n,m}` with lazy variants (laziness
// is irrelevant to a yes/no full match), assertions `^ $ \A \z \b \B`. Case folding is
// ASCII plus the simple one-to-one folds of std::towlower/towupper. Not supported (a
// compile error naming the construct): Unicode classes \p{..}, backreferences.
//
// Thread-safety: immutable after Compile; Match may be called from any number of threads.
class Regex {
 public:
  // Compiles `pattern`; InvalidArgument names the problem, like RE2's "error parsing regexp".
  static core::Result<std::shared_ptr<const Regex>> Compile(std::string_view pattern);

  // True when the whole of `input` matches.
  bool FullMatch(std::string_view input) const;
  // Like FullMatch, also reporting submatch offsets as RE2/Go do: (*caps)[2k], (*caps)[2k+1]
  // are the byte range of group k (group 0: the whole input), -1 when the group did not
  // take part. Submatches follow leftmost-first (Perl) priority, lazy quantifiers honoured.
  bool FullMatchCaptures(std::string_view input, std::vector<int>* caps) const;
  // Expands a replacement template as Go's Regexp.ExpandString: $1, ${1}, $name, ${name},
  // $$ for a literal dollar; an unknown group expands to "".
  std::string Expand(std::string_view tmpl, std::string_view input,
                     const std::vector<int>& caps) const;
  int num_groups() const { return num_groups_; }

  const std::string& pattern() const { return pattern_; }

  enum class Op : uint8_t { kChar, kAny, kAnyNotNl, kClass, kSplit, kJmp, kMatch, kAssert, kSave };
  struct Inst {
    Op op;
    bool fold = false;    // kChar/kClass: case-insensitive
    bool negate = false;  // kClass
    uint8_t assert_kind = 0;
    uint32_t c = 0;    // kChar: code point
    int x = 0, y = 0;  // kSplit/kJmp targets
    int cls = -1;      // kClass: index into classes_
  };
  struct Range {
    uint32_t lo, hi;
  };

 private:
  friend class RegexCompiler;
  Regex() = default;
  bool ClassHas(const Inst& in, uint32_t c) const;

  std::string pattern_;
  // Fast paths: a pattern without metacharacters is compared as a string.
  bool is_literal_ = false;
  std::string literal_;
  std::vector<Inst> prog_;
  int num_groups_ = 0;  // capturing groups, not counting group 0
  std::vector<std::pair<std::string, int>> group_names_;
  std::vector<std::vector<Range>> classes_;
};

}  // namespace llmscope::promql
