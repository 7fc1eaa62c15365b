#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/llm_call.h"
#include "core/status.h"

namespace llmscope::pricing {

// What one kind of token costs, in USD per million tokens. An absent optional rate means
// "billed like its parent": cached_input and cache_write at `input`, reasoning at `output`.
struct Rates {
  double input = 0;
  double output = 0;
  std::optional<double> cached_input;  // prompt-cache read
  std::optional<double> cache_write;   // prompt-cache write (Anthropic charges a premium)
  std::optional<double> reasoning;     // hidden reasoning tokens
};

// A second set of rates for calls whose prompt is long (Gemini above 128k/200k tokens,
// Claude Sonnet 4 above 200k): when a call's input tokens (cache included) are strictly
// greater than `above_input_tokens`, the whole call bills at `rates`.
struct LongContextRates {
  int64_t above_input_tokens = 0;
  Rates rates;
};

// One effective-dated price of a model.
struct Price : Rates {
  std::optional<LongContextRates> long_context;

  // The rates that bill a call with `input_tokens` input tokens (cache included).
  const Rates& RatesFor(int64_t input_tokens) const;
};

// A price and the UTC day from which it applies.
struct PriceEntry {
  // Midnight UTC of the `from` day as Unix nanoseconds; kAlways when the entry has no `from`.
  int64_t from_unix_nanos = 0;
  std::string from;  // "YYYY-MM-DD" as written, or "" when the entry has no `from`
  Price price;

  static constexpr int64_t kAlways = INT64_MIN;
};

// Everything the catalog knows about one model.
struct ModelPrices {
  std::string name;                  // canonical name, as written in the catalog
  std::string provider;              // "openai", "anthropic", ...; may be empty
  std::vector<std::string> aliases;  // other exact names of the same model
  std::vector<PriceEntry> prices;    // non-empty, strictly ascending by from_unix_nanos
};

// The answer to a lookup: which catalog model a name resolved to and its price at the time.
struct ResolvedPrice {
  std::string model;           // canonical catalog name (bounded: safe as a metric label)
  std::string provider;        // the catalog's provider of that model; may be empty
  std::string effective_from;  // the chosen entry's `from` ("" when it has none)
  Price price;
};

// USD cost of `usage` at `price`, with the OpenTelemetry GenAI semantics of
// core::TokenUsage: `input` includes cache_read and cache_write, `output` includes
// reasoning. cost = ((input - cache_read - cache_write) * input
//                   + cache_read * cached_input + cache_write * cache_write
//                   + (output - reasoning) * output + reasoning * reasoning) / 1e6,
// at the rates of price.RatesFor(usage.input). Negative counts and negative differences
// (inconsistent provider data) count as zero, so the result is never negative.
double Cost(const Price& price, const core::TokenUsage& usage);

// A versioned catalog of model prices, loaded from YAML (format in src/pricing/README.md).
// Thread-safety: immutable once built; const methods may be called from any number of
// threads at once. Overlay() is the one mutator and REQUIRES that no other thread uses the
// catalog while it runs (call it while loading configuration, before sharing the catalog).
class PriceCatalog {
 public:
  // Model names longer than this are never resolved (they come from clients).
  static constexpr size_t kMaxModelNameLength = 512;

  // Parses and validates a catalog. On failure the InvalidArgument status lists every
  // problem found, one per line, each with `source_name`, line:column and model name.
  static core::Result<PriceCatalog> FromYaml(std::string_view yaml, std::string_view source_name);

  // The catalog built into the binary from src/pricing/default_prices.yaml.
  static core::Result<PriceCatalog> Default();
  // The text of the built-in catalog, e.g. to print it as a starting point for overrides.
  static std::string_view DefaultYaml();

  // Applies user overrides. A model of `overrides` named like one here (case-insensitive)
  // replaces that model's whole price list; its provider replaces the old one when given,
  // and its aliases are added. Any other model of `overrides` is added. A name or alias of
  // `overrides` that is an alias of a model here moves to the override (the user's naming
  // wins); one that is the canonical name of a different model here is an error. On error
  // nothing changes and the status lists every problem. version() becomes
  // "<base>+<overrides' version>" ("<base>+overrides" when it has none).
  core::Status Overlay(const PriceCatalog& overrides);

  // `base` with `overrides` applied (see Overlay), leaving both unchanged.
  static core::Result<PriceCatalog> Merge(const PriceCatalog& base, const PriceCatalog& overrides);

  // Resolves a model name as providers and routers spell it, and picks the price in force
  // at `unix_nanos` (the entry with the latest `from` <= unix_nanos; the earliest entry
  // when the time precedes them all). Case-insensitive; tries, in order:
  //   1. the name as an exact canonical name or alias;
  //   2. the name with route prefixes removed one at a time ("openrouter/openai/gpt-4o",
  //      then "openai/gpt-4o", then "gpt-4o"; also Bedrock "us." / "anthropic." prefixes);
  //   3. for each of those, dated or versioned suffixes removed one at a time
  //      ("-2024-08-06", "-20241022", "@20241022", "-0125", "-001", "-05-20", "-09-2025",
  //      "-latest", "-preview", Bedrock "-v2:0").
  // Never matches a loose prefix: "gpt-4o-mini-x" does not resolve to "gpt-4o".
  // Returns nullopt when the model is unpriced; the caller counts it, never bills $0.
  std::optional<ResolvedPrice> Lookup(std::string_view model, int64_t unix_nanos) const;

  // The catalog's `version` ("" when the YAML has none), "+"-joined with overlays'.
  const std::string& version() const { return version_; }
  // Every model, in catalog order (overlay additions last).
  const std::vector<ModelPrices>& models() const { return models_; }
  // The model with this canonical name or alias (case-insensitive, no stripping), or null.
  const ModelPrices* FindModel(std::string_view name_or_alias) const;

 private:
  PriceCatalog() = default;
  // Rebuilds index_ from models_. REQUIRES: names and aliases unique case-insensitively.
  void BuildIndex();
  const ModelPrices* FindExact(const std::string& lowercase_key) const;
  const ModelPrices* FindOtherForms(std::string lowercase_name) const;

  std::string version_;
  std::vector<ModelPrices> models_;
  // Lower-cased canonical names and aliases -> index into models_.
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace llmscope::pricing
