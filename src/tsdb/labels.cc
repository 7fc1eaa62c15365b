#include "tsdb/labels.h"

#include <algorithm>
#include <utility>

namespace llmscope::tsdb {

Labels MakeLabels(std::vector<Label> labels) {
  // Stable, so that among equal names the later pair stays later and wins below.
  std::stable_sort(labels.begin(), labels.end(),
                   [](const Label& a, const Label& b) { return a.name < b.name; });
  Labels out;
  out.reserve(labels.size());
  for (Label& l : labels) {
    if (!out.empty() && out.back().name == l.name) {
      out.back() = std::move(l);
    } else {
      out.push_back(std::move(l));
    }
  }
  std::erase_if(out, [](const Label& l) { return l.value.empty() || l.name.empty(); });
  return out;
}

bool IsValidLabels(const Labels& labels) {
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i].name.empty() || labels[i].value.empty()) return false;
    if (i > 0 && !(labels[i - 1].name < labels[i].name)) return false;
  }
  return true;
}

std::string_view GetLabel(const Labels& labels, std::string_view name) {
  auto it = std::lower_bound(labels.begin(), labels.end(), name,
                             [](const Label& l, std::string_view n) { return l.name < n; });
  if (it != labels.end() && it->name == name) return it->value;
  return {};
}

uint64_t HashLabels(const Labels& labels) {
  uint64_t h = 14695981039346656037ull;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
    // 0xff never occurs in valid UTF-8, so ("ab","c") and ("a","bc") differ.
    h ^= 0xff;
    h *= 1099511628211ull;
  };
  for (const Label& l : labels) {
    mix(l.name);
    mix(l.value);
  }
  return h;
}

std::string LabelsToString(const Labels& labels) {
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ", ";
    out += labels[i].name;
    out += "=\"";
    for (char c : labels[i].value) {
      if (c == '"' || c == '\\') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

}  // namespace llmscope::tsdb
