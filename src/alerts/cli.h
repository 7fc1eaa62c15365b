#pragma once

#include <string>
#include <vector>

namespace llmscope::alerts {

// What a CLI subcommand prints and its exit status; main.cc writes `output` to stdout
// (exit 0) or stderr (otherwise).
struct CliOutput {
  std::string output;
  int exit_code = 0;
};

// `llmscope rules check FILE...`, shaped like `promtool check rules`:
//   Checking FILE
//     SUCCESS: N rules found
// or "  FAILED:" followed by every error of the file, one per line; a blank line after
// each file. Exit 1 when any file fails, 2 when no file is given (with a usage line).
CliOutput RulesCheck(const std::vector<std::string>& files);

// `llmscope rules export [--format prometheus|prometheusrule]` (also `--format=X`):
// the built-in pack as a Prometheus rule file (default) or a PrometheusRule manifest.
// Exit 2 with a usage message on a bad argument.
CliOutput RulesExport(const std::vector<std::string>& args);

// `llmscope rules SUBCOMMAND ...`: dispatches "check" and "export" (args start after
// "rules"); exit 2 with usage otherwise.
CliOutput RulesCommand(const std::vector<std::string>& args);

}  // namespace llmscope::alerts
