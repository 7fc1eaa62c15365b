// promqltest: runs promqltest scripts against the llmscope PromQL engine.
//
// Usage: promqltest [--require-all] [--verbose] FILE_OR_DIR...
// A directory contributes its *.test files in name order. Prints, per file, the evals that
// passed, failed and were skipped (with reasons); exits non-zero when an eval failed, a
// script was malformed, or (with --require-all) an eval was skipped.

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "promql/promqltest.h"

namespace {

using llmscope::promql::EvalOutcome;

int Main(int argc, char** argv) {
  bool require_all = false, verbose = false;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--require-all") {
      require_all = true;
    } else if (a == "--verbose" || a == "-v") {
      verbose = true;
    } else if (std::filesystem::is_directory(a)) {
      std::vector<std::string> found;
      for (const auto& e : std::filesystem::directory_iterator(a)) {
        if (e.path().extension() == ".test") found.push_back(e.path().string());
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(a);
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: promqltest [--require-all] [--verbose] FILE_OR_DIR...\n");
    return 2;
  }
  llmscope::promql::ScriptRunner runner;
  int total_pass = 0, total_fail = 0, total_skip = 0;
  bool bad = false;
  for (const auto& f : files) {
    auto r = llmscope::promql::RunScriptFile(runner, f);
    if (!r.ok()) {
      std::printf("%s: %s\n", f.c_str(), r.status().message().c_str());
      bad = true;
      continue;
    }
    std::printf("%-28s %4d passed %4d failed %4d skipped\n", r->name.c_str(), r->passed, r->failed,
                r->skipped);
    std::map<std::string, int> reasons;
    for (const auto& o : r->outcomes) {
      if (o.kind == EvalOutcome::Kind::kFailed) {
        std::printf("  FAIL line %d: %s\n    %s\n", o.line, o.query.c_str(), o.detail.c_str());
      } else if (o.kind == EvalOutcome::Kind::kSkipped) {
        ++reasons[o.detail];
        if (verbose)
          std::printf("  skip line %d: %s (%s)\n", o.line, o.query.c_str(), o.detail.c_str());
      } else if (verbose) {
        std::printf("  ok   line %d: %s\n", o.line, o.query.c_str());
      }
    }
    for (const auto& [reason, n] : reasons) std::printf("  skipped %3d: %s\n", n, reason.c_str());
    if (!r->script_error.ok()) {
      std::printf("  SCRIPT ERROR: %s\n", r->script_error.message().c_str());
      bad = true;
    }
    total_pass += r->passed;
    total_fail += r->failed;
    total_skip += r->skipped;
  }
  std::printf("total: %d passed, %d failed, %d skipped\n", total_pass, total_fail, total_skip);
  if (bad || total_fail > 0 || (require_all && total_skip > 0)) return 1;
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
