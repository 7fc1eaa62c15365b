#pragma once

#include <string>
#include <string_view>

namespace llmscope::core {

// Appends `s` to `out` as a JSON string literal, quotes included: `"` and `\` escaped,
// control characters as \n, \t, ... or \u00XX, and invalid UTF-8 replaced by U+FFFD (one
// per maximal ill-formed subpart, as browsers decode), so the output is always valid JSON
// whatever bytes a client or provider sent. Valid UTF-8 is copied unchanged.
void AppendJsonString(std::string& out, std::string_view s);

// The same, returned as a new string.
std::string JsonString(std::string_view s);

}  // namespace llmscope::core
