#include "metrics/names.h"

namespace llmscope::metrics {
namespace {

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsValidName(std::string_view name, bool allow_colon) {
  if (name.empty() || name.starts_with("__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = IsAlpha(c) || c == '_' || (allow_colon && c == ':') || (i > 0 && IsDigit(c));
    if (!ok) return false;
  }
  return true;
}

}  // namespace

bool IsValidMetricName(std::string_view name) { return IsValidName(name, /*allow_colon=*/true); }
bool IsValidLabelName(std::string_view name) { return IsValidName(name, /*allow_colon=*/false); }

}  // namespace llmscope::metrics
