#pragma once

#include <string>
#include <string_view>

// ASCII case folding for protocol tokens: header values, keywords, enum-like names. Only
// 'A'-'Z' change, whatever the process locale (std::tolower follows it), so UTF-8 bytes
// pass through untouched.
namespace llmscope::core {

constexpr char AsciiLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

inline std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

constexpr bool AsciiEqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

}  // namespace llmscope::core
