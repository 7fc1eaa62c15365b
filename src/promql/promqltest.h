#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "promql/engine.h"

namespace llmscope::promql {

// Runs scripts in Prometheus' promqltest language (promql/promqltest/README.md upstream):
// `load <step>` blocks with expanding series notation (`0+10x5`, `1x3`, `10-2x3`, `_`,
// `_x3`, `stale`), `clear`, `eval instant at <t> <expr>` and
// `eval range from <t0> to <t1> step <s> <expr>` with expected series or a scalar, and the
// modifiers `eval_fail`, `eval_ordered`, `eval_warn`, `eval_info`, `expect fail|ordered|
// warn|info|no_warn|no_info [msg|regex: ...]`, `expect range vector from .. to .. step ..`,
// `expect string "..."`, `expected_fail_message`, `expected_fail_regexp`. Floats compare
// with Prometheus' relative tolerance (1e-6).
//
// An eval that needs something this engine does not do is skipped with the reason, never
// passed: native histograms (`{{...}}` samples or expected values, `load_with_nhcb`
// histogram series), functions and aggregations outside the supported set, and expected
// info/warn annotations (the engine produces none).
//
// Thread-safety: a ScriptRunner is single-threaded; distinct runners are independent.
struct EvalOutcome {
  enum class Kind { kPassed, kFailed, kSkipped };
  Kind kind = Kind::kPassed;
  int line = 0;  // 1-based line of the eval command
  std::string query;
  std::string detail;  // why it failed, or the skip reason
};

struct ScriptReport {
  std::string name;
  int passed = 0;
  int failed = 0;
  int skipped = 0;
  std::vector<EvalOutcome> outcomes;
  // Non-OK when the script itself is malformed (the run stops at that line).
  core::Status script_error;
};

class ScriptRunner {
 public:
  explicit ScriptRunner(EngineOptions options = {}) : engine_(options) {}

  ScriptReport Run(std::string_view name, std::string_view script) const;

 private:
  Engine engine_;
};

// Reads and runs one file; NotFound when it cannot be read.
core::Result<ScriptReport> RunScriptFile(const ScriptRunner& runner, const std::string& path);

}  // namespace llmscope::promql
