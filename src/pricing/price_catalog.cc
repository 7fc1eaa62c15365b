#include "pricing/price_catalog.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <climits>
#include <cmath>
#include <exception>
#include <set>
#include <utility>

namespace llmscope::pricing {
namespace internal {
// Defined in the .cc that CMake generates from default_prices.yaml (cmake/embed_text.cmake).
std::string_view DefaultPricesYaml();
}  // namespace internal

namespace {

// A file with hundreds of problems is one systematic mistake; list enough to find it.
constexpr size_t kMaxListedErrors = 100;

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// ---------------------------------------------------------------------------------------
// Name normalisation for Lookup.

// Bedrock model ids carry an optional cross-region inference prefix and a vendor prefix,
// separated by dots ("us.anthropic.claude-..."). Only these exact words are stripped, so
// dots inside names ("gpt-3.5-turbo", "qwen2.5-72b") are never mistaken for prefixes.
constexpr std::array<std::string_view, 17> kDotPrefixes = {
    // Cross-region inference profiles.
    "us", "eu", "apac", "jp", "au", "us-gov", "global",
    // Model vendors.
    "anthropic", "meta", "mistral", "amazon", "cohere", "ai21", "deepseek", "openai", "google",
    "qwen"};

// The name with its first route prefix removed, or nullopt when there is none.
std::optional<std::string> StripRoutePrefix(const std::string& s) {
  if (size_t slash = s.find('/'); slash != std::string::npos) {
    if (slash + 1 < s.size()) return s.substr(slash + 1);
    return std::nullopt;
  }
  size_t dot = s.find('.');
  if (dot == std::string::npos || dot + 1 >= s.size()) return std::nullopt;
  std::string_view first(s.data(), dot);
  for (std::string_view p : kDotPrefixes) {
    if (first == p) return s.substr(dot + 1);
  }
  return std::nullopt;
}

// True when `s` ends with `pattern`, where 'D' in the pattern matches one ASCII digit and
// every other character matches itself.
bool EndsWithPattern(std::string_view s, std::string_view pattern) {
  if (s.size() <= pattern.size()) return false;  // something must remain before it
  std::string_view tail = s.substr(s.size() - pattern.size());
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == 'D' ? !IsDigit(tail[i]) : tail[i] != pattern[i]) return false;
  }
  return true;
}

// Bedrock version suffix "-v<digits>:<digits>" ("-v2:0"). Returns its length, or 0.
size_t BedrockVersionSuffixLength(std::string_view s) {
  size_t i = s.size();
  size_t digits_end = i;
  while (i > 0 && IsDigit(s[i - 1])) --i;
  if (i == digits_end || i == 0 || s[i - 1] != ':') return 0;
  --i;
  digits_end = i;
  while (i > 0 && IsDigit(s[i - 1])) --i;
  if (i == digits_end || i < 3 || s[i - 1] != 'v' || s[i - 2] != '-') return 0;
  return s.size() - (i - 2);
}

// Removes one dated or versioned suffix from `s`. Returns false when none is found. Each
// call shortens `s`, so repeated calls terminate. Longer patterns come first so that
// "-2024-08-06" goes in one step rather than as "-06", "-08" ...
bool StripVersionSuffix(std::string& s) {
  if (size_t at = s.rfind('@'); at != std::string::npos && at > 0) {
    s.resize(at);  // Vertex AI: "claude-3-5-sonnet@20240620", "gemini-1.5-pro@002"
    return true;
  }
  if (size_t n = BedrockVersionSuffixLength(s); n > 0) {
    s.resize(s.size() - n);
    return true;
  }
  static constexpr std::array<std::string_view, 8> kPatterns = {
      "-DDDD-DD-DD",  // OpenAI snapshots: gpt-4o-2024-08-06
      "-DDDDDDDD",    // Anthropic snapshots: claude-3-5-sonnet-20241022
      "-DD-DDDD",     // Google month-year: gemini-2.5-flash-preview-09-2025
      "-DD-DD",       // Google month-day: gemini-2.5-pro-preview-06-05
      "-DDDD",        // MMDD / YYMM: gpt-3.5-turbo-0125, mistral-large-2411
      "-DDD",         // Google versions: gemini-1.5-flash-002
      "-latest",      // moving aliases: claude-3-7-sonnet-latest
      "-preview",     // o1-preview, gemini-3-pro-preview
  };
  for (std::string_view p : kPatterns) {
    if (EndsWithPattern(s, p)) {
      s.resize(s.size() - p.size());
      return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// YAML parsing. yaml-cpp throws; every call into it stays inside FromYaml's try block.

class Parser {
 public:
  explicit Parser(std::string_view source) : source_(source) {}

  void Error(const YAML::Mark& mark, std::string_view where, std::string_view message) {
    std::string e(source_);
    // Sort key: document order; problems with no position go last.
    std::pair<int, int> position =
        mark.is_null() ? std::pair{INT32_MAX, 0} : std::pair{mark.line, mark.column};
    if (!mark.is_null()) {
      e += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
    }
    e += ": ";
    if (!where.empty()) {
      e += where;
      e += ": ";
    }
    e += message;
    errors_.push_back({position, std::move(e)});
  }

  // Every problem reported, in document order.
  std::vector<std::string> errors() const {
    std::vector<std::pair<std::pair<int, int>, std::string>> sorted = errors_;
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> out;
    for (auto& [position, text] : sorted) out.push_back(std::move(text));
    return out;
  }
  bool has_errors() const { return !errors_.empty(); }
  const std::string& source() const { return source_; }

  // Calls `visit(key, value)` for each entry of the mapping `node`, reporting keys that
  // are not in `allowed`, repeated, or not scalars. Returns false if `node` is no mapping.
  template <typename Visit>
  bool ForEachField(const YAML::Node& node, std::string_view where,
                    std::initializer_list<std::string_view> allowed, Visit visit) {
    if (!node.IsMap()) {
      Error(node.Mark(), where, "expected a mapping of fields");
      return false;
    }
    std::set<std::string> seen;
    for (const auto& kv : node) {
      const YAML::Node& key = kv.first;
      if (!key.IsScalar()) {
        Error(key.Mark(), where, "field names must be plain strings");
        continue;
      }
      const std::string& k = key.Scalar();
      if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
        std::string msg = "unknown field '" + k + "' (expected one of:";
        for (std::string_view a : allowed) {
          msg += " ";
          msg += a;
        }
        msg += ")";
        Error(key.Mark(), where, msg);
        continue;
      }
      if (!seen.insert(k).second) {
        Error(key.Mark(), where, "field '" + k + "' appears twice");
        continue;
      }
      visit(k, kv.second);
    }
    return true;
  }

  // A finite, non-negative USD rate.
  std::optional<double> Rate(const YAML::Node& node, std::string_view where,
                             std::string_view field) {
    std::string text = node.IsScalar() ? node.Scalar() : std::string();
    double v = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, v);
    if (!node.IsScalar() || text.empty() || ec != std::errc() || ptr != end || !std::isfinite(v)) {
      Error(node.Mark(), where,
            std::string(field) + " must be a number (USD per million tokens), got '" + text + "'");
      return std::nullopt;
    }
    if (v < 0) {
      Error(node.Mark(), where, std::string(field) + " must not be negative, got " + text);
      return std::nullopt;
    }
    return v;
  }

  std::optional<std::string> String(const YAML::Node& node, std::string_view where,
                                    std::string_view field) {
    if (!node.IsScalar()) {
      Error(node.Mark(), where, std::string(field) + " must be a string");
      return std::nullopt;
    }
    return node.Scalar();
  }

  // A model name or alias: non-empty, no whitespace or control characters.
  std::optional<std::string> Name(const YAML::Node& node, std::string_view where,
                                  std::string_view field) {
    std::optional<std::string> s = String(node, where, field);
    if (!s) return std::nullopt;
    if (s->empty()) {
      Error(node.Mark(), where, std::string(field) + " must not be empty");
      return std::nullopt;
    }
    for (char c : *s) {
      if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
        Error(node.Mark(), where,
              std::string(field) + " '" + *s + "' must not contain whitespace or control chars");
        return std::nullopt;
      }
    }
    return s;
  }

  // "YYYY-MM-DD" (a UTC day) -> Unix nanoseconds of its midnight.
  std::optional<int64_t> Date(const YAML::Node& node, std::string_view where) {
    std::string text = node.IsScalar() ? node.Scalar() : std::string();
    bool shape = text.size() == 10 && text[4] == '-' && text[7] == '-';
    for (size_t i = 0; shape && i < text.size(); ++i) {
      if (i != 4 && i != 7 && !IsDigit(text[i])) shape = false;
    }
    if (shape) {
      int y = std::stoi(text.substr(0, 4));
      unsigned m = static_cast<unsigned>(std::stoi(text.substr(5, 2)));
      unsigned d = static_cast<unsigned>(std::stoi(text.substr(8, 2)));
      std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{m},
                                      std::chrono::day{d}};
      // Years past 2200 would overflow int64 nanoseconds soon after; none is plausible.
      if (ymd.ok() && y >= 1970 && y <= 2200) {
        auto days = std::chrono::sys_days(ymd).time_since_epoch();
        return std::chrono::duration_cast<std::chrono::nanoseconds>(days).count();
      }
    }
    Error(node.Mark(), where, "from must be a UTC day YYYY-MM-DD, got '" + text + "'");
    return std::nullopt;
  }

  // The rate fields shared by a price entry and its long_context block.
  // Returns false when one of them is malformed.
  bool RateField(const std::string& key, const YAML::Node& value, std::string_view where,
                 Rates& rates, bool& has_input, bool& has_output) {
    // A present but malformed input/output is reported once, not also as missing.
    if (key == "input") has_input = true;
    if (key == "output") has_output = true;
    std::optional<double> v = Rate(value, where, key);
    if (!v) return false;
    if (key == "input") {
      rates.input = *v;
    } else if (key == "output") {
      rates.output = *v;
    } else if (key == "cached_input") {
      rates.cached_input = *v;
    } else if (key == "cache_write") {
      rates.cache_write = *v;
    } else if (key == "reasoning") {
      rates.reasoning = *v;
    }
    return true;
  }

  void RequireInputOutput(const YAML::Node& node, std::string_view where, bool has_input,
                          bool has_output) {
    if (!has_input) Error(node.Mark(), where, "missing required field 'input'");
    if (!has_output) Error(node.Mark(), where, "missing required field 'output'");
  }

  std::optional<LongContextRates> LongContext(const YAML::Node& node, std::string where) {
    LongContextRates lc;
    bool ok = true, has_input = false, has_output = false, has_threshold = false;
    bool is_map = ForEachField(
        node, where,
        {"above_input_tokens", "input", "output", "cached_input", "cache_write", "reasoning"},
        [&](const std::string& key, const YAML::Node& value) {
          if (key == "above_input_tokens") {
            std::string text = value.IsScalar() ? value.Scalar() : std::string();
            const char* end = text.data() + text.size();
            auto [ptr, ec] = std::from_chars(text.data(), end, lc.above_input_tokens);
            if (text.empty() || ec != std::errc() || ptr != end || lc.above_input_tokens <= 0) {
              Error(value.Mark(), where,
                    "above_input_tokens must be a positive integer, got '" + text + "'");
              ok = false;
            }
            has_threshold = true;
            return;
          }
          ok &= RateField(key, value, where, lc.rates, has_input, has_output);
        });
    if (!is_map) return std::nullopt;
    if (!has_threshold) Error(node.Mark(), where, "missing required field 'above_input_tokens'");
    RequireInputOutput(node, where, has_input, has_output);
    if (!ok || !has_threshold || !has_input || !has_output) return std::nullopt;
    return lc;
  }

  std::optional<PriceEntry> Entry(const YAML::Node& node, const std::string& where) {
    PriceEntry entry;
    entry.from_unix_nanos = PriceEntry::kAlways;
    bool ok = true, has_input = false, has_output = false;
    auto visit = [&](const std::string& key, const YAML::Node& value) {
      if (key == "from") {
        std::optional<int64_t> t = Date(value, where);
        if (t) {
          entry.from_unix_nanos = *t;
          entry.from = value.Scalar();
        }
        ok &= t.has_value();
      } else if (key == "long_context") {
        entry.price.long_context = LongContext(value, where + ".long_context");
        ok &= entry.price.long_context.has_value();
      } else if (key == "notes") {
        ok &= String(value, where, key).has_value();
      } else {
        ok &= RateField(key, value, where, entry.price, has_input, has_output);
      }
    };
    if (!ForEachField(node, where,
                      {"from", "input", "output", "cached_input", "cache_write", "reasoning",
                       "long_context", "notes"},
                      visit)) {
      return std::nullopt;
    }
    RequireInputOutput(node, where, has_input, has_output);
    if (!ok || !has_input || !has_output) return std::nullopt;
    return entry;
  }

  // Parses the `models` list. Returns the valid models whose names and aliases are unique.
  std::vector<ModelPrices> Models(const YAML::Node& list) {
    std::vector<ModelPrices> models;
    if (!list.IsSequence()) {
      Error(list.Mark(), "", "models must be a list");
      return models;
    }
    // Every name and alias, lower-cased, with the model that claimed it first.
    std::unordered_map<std::string, std::string> claimed;
    for (size_t i = 0; i < list.size(); ++i) {
      std::optional<ParsedModel> m = Model(list[i], i);
      if (!m) continue;
      std::string where = "model '" + m->model.name + "'";
      auto claim = [&](const std::string& name, const YAML::Mark& at) {
        auto [it, inserted] = claimed.emplace(ToLower(name), m->model.name);
        if (!inserted) {
          Error(at, where,
                it->second == m->model.name
                    ? "'" + name + "' is listed twice"
                    : "'" + name + "' is already a name or alias of model '" + it->second +
                          "' (names are case-insensitive)");
        }
        return inserted;
      };
      bool unique = claim(m->model.name, m->name_mark);
      for (size_t a = 0; a < m->model.aliases.size(); ++a) {
        unique &= claim(m->model.aliases[a], m->alias_marks[a]);
      }
      if (m->valid && unique) models.push_back(std::move(m->model));
    }
    return models;
  }

  struct ParsedModel {
    ModelPrices model;
    YAML::Mark name_mark;
    std::vector<YAML::Mark> alias_marks;  // parallel to model.aliases
    bool valid = false;                   // false: a problem was reported; do not use it
  };

  // Parses models[index]. Returns nullopt when it has no usable name. A model with other
  // problems comes back with valid == false so that it still claims its names and
  // duplicates of them are reported in the same pass.
  std::optional<ParsedModel> Model(const YAML::Node& node, size_t index) {
    // Errors name the model once its name is known; locate the name first for that.
    std::string where = "models[" + std::to_string(index) + "]";
    if (node.IsMap() && node["name"] && node["name"].IsScalar() && !node["name"].Scalar().empty()) {
      where = "model '" + node["name"].Scalar() + "'";
    }
    ParsedModel parsed;
    ModelPrices& model = parsed.model;
    bool ok = true, has_name = false, has_prices = false;
    YAML::Mark prices_mark = node.Mark();
    auto visit = [&](const std::string& key, const YAML::Node& value) {
      if (key == "name") {
        std::optional<std::string> n = Name(value, where, "name");
        if (n) model.name = *n;
        parsed.name_mark = value.Mark();
        has_name = true;
        ok &= n.has_value();
      } else if (key == "provider") {
        std::optional<std::string> p = String(value, where, "provider");
        if (p) model.provider = *p;
        ok &= p.has_value();
      } else if (key == "notes") {
        ok &= String(value, where, key).has_value();
      } else if (key == "aliases") {
        ok &= Aliases(value, where, parsed);
      } else if (key == "prices") {
        has_prices = true;
        prices_mark = value.Mark();
        ok &= Prices(value, where, model);
      }
    };
    if (!ForEachField(node, where, {"name", "provider", "aliases", "prices", "notes"}, visit)) {
      return std::nullopt;
    }
    if (!has_name) Error(node.Mark(), where, "missing required field 'name'");
    if (!has_prices) Error(prices_mark, where, "missing required field 'prices'");
    parsed.valid = ok && has_prices;
    if (!has_name || model.name.empty()) return std::nullopt;
    return parsed;
  }

  bool Aliases(const YAML::Node& list, const std::string& where, ParsedModel& parsed) {
    if (!list.IsSequence()) {
      Error(list.Mark(), where, "aliases must be a list of names");
      return false;
    }
    bool ok = true;
    for (size_t i = 0; i < list.size(); ++i) {
      std::optional<std::string> a = Name(list[i], where, "aliases[" + std::to_string(i) + "]");
      if (a) {
        parsed.model.aliases.push_back(*a);
        parsed.alias_marks.push_back(list[i].Mark());
      }
      ok &= a.has_value();
    }
    return ok;
  }

  bool Prices(const YAML::Node& list, const std::string& where, ModelPrices& model) {
    if (!list.IsSequence() || list.size() == 0) {
      Error(list.Mark(), where, "prices must be a non-empty list of price entries");
      return false;
    }
    bool ok = true;
    std::vector<YAML::Mark> marks;
    for (size_t i = 0; i < list.size(); ++i) {
      std::optional<PriceEntry> e = Entry(list[i], where + ": prices[" + std::to_string(i) + "]");
      if (e) {
        model.prices.push_back(std::move(*e));
        marks.push_back(list[i].Mark());
      }
      ok &= e.has_value();
    }
    ok &= CheckEffectiveDates(model, marks, where);
    return ok;
  }

  // Sorts the entries by `from`; reports two entries for the same day and returns false.
  bool CheckEffectiveDates(ModelPrices& model, const std::vector<YAML::Mark>& marks,
                           const std::string& where) {
    std::vector<size_t> order(model.prices.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return model.prices[a].from_unix_nanos < model.prices[b].from_unix_nanos;
    });
    std::vector<PriceEntry> sorted;
    bool ok = true;
    for (size_t k = 0; k < order.size(); ++k) {
      const PriceEntry& e = model.prices[order[k]];
      if (k > 0 && e.from_unix_nanos == sorted.back().from_unix_nanos) {
        Error(marks[order[k]], where,
              e.from.empty() ? std::string("only one price entry may omit 'from'")
                             : "two price entries take effect on " + e.from);
        ok = false;
        continue;
      }
      sorted.push_back(e);
    }
    model.prices = std::move(sorted);
    return ok;
  }

 private:
  std::string source_;
  std::vector<std::pair<std::pair<int, int>, std::string>> errors_;  // (line, column), text
};

core::Status ErrorList(std::string_view what, const std::vector<std::string>& errors) {
  std::string msg(what);
  msg += ": " + std::to_string(errors.size()) + (errors.size() == 1 ? " problem" : " problems");
  for (size_t i = 0; i < errors.size() && i < kMaxListedErrors; ++i) {
    msg += "\n  ";
    msg += errors[i];
  }
  if (errors.size() > kMaxListedErrors) {
    msg += "\n  ... and " + std::to_string(errors.size() - kMaxListedErrors) + " more";
  }
  return core::InvalidArgument(std::move(msg));
}

}  // namespace

// -----------------------------------------------------------------------------------------

const Rates& Price::RatesFor(int64_t input_tokens) const {
  if (long_context && input_tokens > long_context->above_input_tokens) return long_context->rates;
  return *this;
}

double Cost(const Price& price, const core::TokenUsage& usage) {
  // Doubles throughout: int64 differences of hostile counts could overflow.
  auto count = [](int64_t v) { return v < 0 ? 0.0 : static_cast<double>(v); };
  const Rates& r = price.RatesFor(usage.input);
  double input = count(usage.input), cache_read = count(usage.cache_read),
         cache_write = count(usage.cache_write), output = count(usage.output),
         reasoning = count(usage.reasoning);
  double uncached = std::max(0.0, input - cache_read - cache_write);
  double visible_output = std::max(0.0, output - reasoning);
  double micro_usd = uncached * r.input + cache_read * r.cached_input.value_or(r.input) +
                     cache_write * r.cache_write.value_or(r.input) + visible_output * r.output +
                     reasoning * r.reasoning.value_or(r.output);
  return micro_usd / 1e6;
}

core::Result<PriceCatalog> PriceCatalog::FromYaml(std::string_view yaml,
                                                  std::string_view source_name) {
  Parser p(source_name);
  PriceCatalog catalog;
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    if (!root.IsMap()) {
      p.Error(root.Mark(), "", "expected a mapping with 'version' and 'models'");
      return ErrorList("price catalog " + p.source(), p.errors());
    }
    std::optional<YAML::Node> models;
    p.ForEachField(root, "", {"version", "models"},
                   [&](const std::string& key, const YAML::Node& value) {
                     if (key == "models") {
                       models = value;
                     } else if (std::optional<std::string> v = p.String(value, "", key)) {
                       catalog.version_ = *v;
                     }
                   });
    if (!models) {
      p.Error(root.Mark(), "", "missing required field 'models'");
    } else {
      catalog.models_ = p.Models(*models);
    }
  } catch (const YAML::ParserException& e) {
    p.Error(e.mark, "", "YAML syntax error: " + e.msg);
  } catch (const YAML::Exception& e) {
    p.Error(e.mark, "", "YAML error: " + e.msg);
  } catch (const std::exception& e) {
    p.Error(YAML::Mark::null_mark(), "", std::string("unexpected error: ") + e.what());
  }
  if (p.has_errors()) return ErrorList("price catalog " + p.source(), p.errors());
  catalog.BuildIndex();
  return catalog;
}

std::string_view PriceCatalog::DefaultYaml() { return internal::DefaultPricesYaml(); }

core::Result<PriceCatalog> PriceCatalog::Default() {
  return FromYaml(DefaultYaml(), "builtin:default_prices.yaml");
}

void PriceCatalog::BuildIndex() {
  index_.clear();
  for (size_t i = 0; i < models_.size(); ++i) {
    // Names are unique by construction (FromYaml and Overlay check); first claim wins.
    index_.emplace(ToLower(models_[i].name), i);
    for (const std::string& a : models_[i].aliases) index_.emplace(ToLower(a), i);
  }
}

core::Status PriceCatalog::Overlay(const PriceCatalog& overrides) {
  std::vector<ModelPrices> merged = models_;
  std::vector<size_t> overriding;  // indices in `merged` of models that came from overrides
  for (const ModelPrices& o : overrides.models_) {
    std::string key = ToLower(o.name);
    auto same = std::find_if(merged.begin(), merged.end(),
                             [&](const ModelPrices& m) { return ToLower(m.name) == key; });
    if (same == merged.end()) {
      merged.push_back(o);
      overriding.push_back(merged.size() - 1);
      continue;
    }
    same->prices = o.prices;
    if (!o.provider.empty()) same->provider = o.provider;
    for (const std::string& a : o.aliases) {
      bool known = std::any_of(same->aliases.begin(), same->aliases.end(),
                               [&](const std::string& b) { return ToLower(b) == ToLower(a); });
      if (!known) same->aliases.push_back(a);
    }
    overriding.push_back(static_cast<size_t>(same - merged.begin()));
  }

  // The override's names win: take them away from any other model that has them as an
  // alias. Taking a canonical name away would silently delete a model, so that is an error.
  std::vector<std::string> errors;
  for (size_t k : overriding) {
    std::vector<std::string> keys{ToLower(merged[k].name)};
    for (const std::string& a : merged[k].aliases) keys.push_back(ToLower(a));
    for (size_t i = 0; i < merged.size(); ++i) {
      if (i == k) continue;
      ModelPrices& other = merged[i];
      for (size_t j = 1; j < keys.size(); ++j) {
        if (ToLower(other.name) == keys[j]) {
          errors.push_back("model '" + merged[k].name + "': alias '" + merged[k].aliases[j - 1] +
                           "' is the name of model '" + other.name +
                           "'; override that model by its name instead");
        }
      }
      std::erase_if(other.aliases, [&](const std::string& a) {
        return std::find(keys.begin(), keys.end(), ToLower(a)) != keys.end();
      });
    }
  }
  if (!errors.empty()) return ErrorList("price overrides", errors);

  models_ = std::move(merged);
  version_ += "+";
  version_ += overrides.version_.empty() ? std::string("overrides") : overrides.version_;
  BuildIndex();
  return core::Status::Ok();
}

core::Result<PriceCatalog> PriceCatalog::Merge(const PriceCatalog& base,
                                               const PriceCatalog& overrides) {
  PriceCatalog merged = base;
  if (core::Status s = merged.Overlay(overrides); !s.ok()) return s;
  return merged;
}

const ModelPrices* PriceCatalog::FindExact(const std::string& lowercase_key) const {
  auto it = index_.find(lowercase_key);
  return it == index_.end() ? nullptr : &models_[it->second];
}

const ModelPrices* PriceCatalog::FindModel(std::string_view name_or_alias) const {
  return FindExact(ToLower(name_or_alias));
}

std::optional<ResolvedPrice> PriceCatalog::Lookup(std::string_view model,
                                                  int64_t unix_nanos) const {
  model = Trim(model);
  if (model.empty() || model.size() > kMaxModelNameLength) return std::nullopt;

  // The name as given (lower-cased) is the common case: looked up before building the
  // list of other forms, which allocates.
  std::string lower = ToLower(model);
  const ModelPrices* found = FindExact(lower);
  if (!found) found = FindOtherForms(std::move(lower));
  if (!found) return std::nullopt;

  // The entry in force: the last whose `from` <= unix_nanos, else the first (a call
  // timestamped before a model's first listed price is clock skew or an unset time).
  auto after =
      std::upper_bound(found->prices.begin(), found->prices.end(), unix_nanos,
                       [](int64_t t, const PriceEntry& e) { return t < e.from_unix_nanos; });
  const PriceEntry& entry = after == found->prices.begin() ? found->prices.front() : *(after - 1);
  return ResolvedPrice{found->name, found->provider, entry.from, entry.price};
}

// `lower` with its route prefixes stripped, then each form with its version suffixes
// stripped, in that order; the first form the catalog lists wins. REQUIRES: `lower` itself
// is not listed (Lookup tried it).
const ModelPrices* PriceCatalog::FindOtherForms(std::string lower) const {
  const ModelPrices* found = nullptr;
  std::vector<std::string> forms{std::move(lower)};
  while (std::optional<std::string> next = StripRoutePrefix(forms.back())) {
    forms.push_back(std::move(*next));
  }
  for (size_t i = 1; !found && i < forms.size(); ++i) found = FindExact(forms[i]);
  for (size_t i = 0; !found && i < forms.size(); ++i) {
    std::string s = forms[i];
    while (!found && StripVersionSuffix(s)) found = FindExact(s);
  }
  return found;
}

}  // namespace llmscope::pricing
