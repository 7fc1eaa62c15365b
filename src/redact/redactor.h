#pragma once

#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace llmscope::redact {

// What to redact. The built-in detectors, each replaced by "[REDACTED:<kind>]":
//   email        local@domain.tld
//   api_key      OpenAI/Anthropic keys (sk-..., sk-proj-..., sk-ant-...), AWS access key ids
//                (AKIA + 16), GitHub tokens (ghp_/gho_/ghu_/ghs_/ghr_ + 36), Slack tokens
//                (xoxb-/xoxp-/xoxa-/xoxr-/xoxs-), Google API keys (AIza + 35)
//   bearer       the token after "Bearer " (20 or more token characters)
//   card_number  13 to 19 digits, optionally grouped by single spaces or dashes, that pass
//                the Luhn check (so order numbers and timestamps mostly survive)
//   us_ssn       ddd-dd-dddd
// plus user patterns (ECMAScript regular expressions), replaced by "[REDACTED:<name>]".
struct RedactOptions {
  bool builtin = true;
  std::vector<std::pair<std::string, std::string>> patterns;  // {name, regex}
};

// Replaces secrets and personal data in text. Runs off the request path (the pipeline's
// worker, the OTLP decode threads); the built-in detectors are hand-written scanners, one
// pass each, so their cost is linear in the text.
// Thread-safety: immutable after Create; Redact may be called from any number of threads.
class Redactor {
 public:
  // INVALID_ARGUMENT naming the pattern when a regex does not compile or a name is empty or
  // not [a-z0-9_]+.
  static core::Result<std::unique_ptr<Redactor>> Create(RedactOptions options);

  // Rewrites `text` in place; returns how many values were replaced. When `kinds` is given,
  // the kind of each replacement is appended to it.
  int Redact(std::string& text, std::vector<std::string_view>* kinds = nullptr) const;

 private:
  struct Pattern {
    std::string name;
    std::regex regex;
  };
  explicit Redactor(bool builtin) : builtin_(builtin) {}
  bool builtin_;
  std::vector<Pattern> patterns_;
};

}  // namespace llmscope::redact
