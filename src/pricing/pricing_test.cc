#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/llm_call.h"
#include "pricing/price_catalog.h"

namespace llmscope::pricing {
namespace {

using core::TokenUsage;

// Midnight UTC of a day, in Unix nanoseconds.
int64_t Day(int y, unsigned m, unsigned d) {
  auto days = std::chrono::sys_days(std::chrono::year_month_day{
      std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{d}});
  return std::chrono::duration_cast<std::chrono::nanoseconds>(days.time_since_epoch()).count();
}

const int64_t kNow = Day(2026, 11, 1);

const PriceCatalog& Defaults() {
  static const PriceCatalog* catalog = [] {
    core::Result<PriceCatalog> c = PriceCatalog::Default();
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return new PriceCatalog(std::move(c).value());
  }();
  return *catalog;
}

PriceCatalog MustParse(std::string_view yaml) {
  core::Result<PriceCatalog> c = PriceCatalog::FromYaml(yaml, "test.yaml");
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return std::move(c).value();
}

// The canonical model a name resolves to in the default catalog, or "<unpriced>".
std::string Resolve(std::string_view model, int64_t at = kNow) {
  std::optional<ResolvedPrice> r = Defaults().Lookup(model, at);
  return r ? r->model : "<unpriced>";
}

Price MakePrice(double input, double output) {
  Price p;
  p.input = input;
  p.output = output;
  return p;
}

// ------------------------------------------------------------------------------- Cost

TEST(CostTest, PlainInputAndOutput) {
  // 1000 * $2.50/M + 500 * $10/M = 0.0025 + 0.005
  EXPECT_DOUBLE_EQ(Cost(MakePrice(2.50, 10.00), {.input = 1000, .output = 500}), 0.0075);
}

TEST(CostTest, CachedReadsAreASubsetOfInput) {
  Price p = MakePrice(2.50, 10.00);
  p.cached_input = 1.25;
  // 1000 input of which 400 cached, 200 output:
  // 600 * 2.50 + 400 * 1.25 + 200 * 10 = 1500 + 500 + 2000 = 4000 micro-USD.
  EXPECT_DOUBLE_EQ(Cost(p, {.input = 1000, .output = 200, .cache_read = 400}), 0.004);
}

TEST(CostTest, CachedReadsWithoutACachedRateBillAtInput) {
  // (600 + 400) * 2.50 + 200 * 10 = 4500 micro-USD.
  EXPECT_DOUBLE_EQ(Cost(MakePrice(2.50, 10.00), {.input = 1000, .output = 200, .cache_read = 400}),
                   0.0045);
}

TEST(CostTest, ReasoningBillsAtOutputWhenNoReasoningRate) {
  // o3 at $2/$8: 100 input, 1000 output of which 800 reasoning:
  // 100 * 2 + 200 * 8 + 800 * 8 = 200 + 1600 + 6400 = 8200 micro-USD.
  EXPECT_DOUBLE_EQ(Cost(MakePrice(2.00, 8.00), {.input = 100, .output = 1000, .reasoning = 800}),
                   0.0082);
}

TEST(CostTest, ReasoningBillsAtItsOwnRate) {
  Price p = MakePrice(2.00, 8.00);
  p.reasoning = 20.00;
  // 100 * 2 + 200 * 8 + 800 * 20 = 200 + 1600 + 16000 = 17800 micro-USD.
  EXPECT_DOUBLE_EQ(Cost(p, {.input = 100, .output = 1000, .reasoning = 800}), 0.0178);
}

TEST(CostTest, AnthropicCacheWriteAndRead) {
  // claude-3-5-sonnet: $3 input, $15 output, $3.75 cache write, $0.30 cache read.
  // 10000 input = 2000 uncached + 6000 cache read + 2000 cache write; 500 output:
  // 2000 * 3 + 6000 * 0.30 + 2000 * 3.75 + 500 * 15 = 6000 + 1800 + 7500 + 7500 = 22800.
  std::optional<ResolvedPrice> r = Defaults().Lookup("claude-3-5-sonnet-20241022", kNow);
  ASSERT_TRUE(r);
  EXPECT_DOUBLE_EQ(
      Cost(r->price, {.input = 10000, .output = 500, .cache_read = 6000, .cache_write = 2000}),
      0.0228);
}

TEST(CostTest, CacheWriteWithoutARateBillsAtInput) {
  Price p = MakePrice(1.00, 2.00);
  p.cached_input = 0.5;
  // 100 uncached * 1 + 300 write * 1 + 600 read * 0.5 = 700 micro-USD.
  EXPECT_DOUBLE_EQ(Cost(p, {.input = 1000, .cache_read = 600, .cache_write = 300}), 0.0007);
}

TEST(CostTest, InconsistentCountsNeverGoNegative) {
  Price p = MakePrice(2.00, 8.00);
  p.cached_input = 1.00;
  // cache_read larger than input: nothing uncached, 300 reads at $1.
  EXPECT_DOUBLE_EQ(Cost(p, {.input = 100, .cache_read = 300}), 0.0003);
  // reasoning larger than output: no visible output, 50 reasoning at $8.
  EXPECT_DOUBLE_EQ(Cost(p, {.output = 10, .reasoning = 50}), 0.0004);
  // Negative counts are zero.
  EXPECT_DOUBLE_EQ(
      Cost(p, {.input = -5, .output = -7, .cache_read = -1, .cache_write = -1, .reasoning = -3}),
      0.0);
  EXPECT_DOUBLE_EQ(Cost(p, {.input = 1000, .output = 0, .cache_read = -400}), 0.002);
}

TEST(CostTest, LongContextRatesApplyAboveTheThreshold) {
  std::optional<ResolvedPrice> r = Defaults().Lookup("gemini-2.5-pro", kNow);
  ASSERT_TRUE(r);
  // At the threshold: 200000 * 1.25 + 1000 * 10 = 260000 micro-USD.
  EXPECT_DOUBLE_EQ(Cost(r->price, {.input = 200000, .output = 1000}), 0.26);
  // Above it the whole call bills at the long rates: 250000 * 2.50 + 1000 * 15.
  EXPECT_DOUBLE_EQ(Cost(r->price, {.input = 250000, .output = 1000}), 0.64);
  // Cached tokens count towards the threshold and bill at the long cached rate:
  // 50000 * 2.50 + 200000 * 0.625 = 125000 + 125000.
  EXPECT_DOUBLE_EQ(Cost(r->price, {.input = 250000, .cache_read = 200000}), 0.25);
}

// ----------------------------------------------------------------------------- Lookup

TEST(LookupTest, ExactNamesAndAliases) {
  EXPECT_EQ(Resolve("gpt-4o"), "gpt-4o");
  EXPECT_EQ(Resolve("chatgpt-4o-latest"), "gpt-4o");
  EXPECT_EQ(Resolve("deepseek-v3"), "deepseek-chat");
  EXPECT_EQ(Resolve("deepseek-r1"), "deepseek-reasoner");
  EXPECT_EQ(Resolve("claude-3.5-sonnet"), "claude-3-5-sonnet");
  EXPECT_EQ(Resolve("gpt-35-turbo"), "gpt-3.5-turbo");
  EXPECT_EQ(Resolve("gpt-4-1106-preview"), "gpt-4-turbo");  // alias beats suffix stripping
}

TEST(LookupTest, CaseInsensitiveAndTrimmed) {
  EXPECT_EQ(Resolve("GPT-4o"), "gpt-4o");
  EXPECT_EQ(Resolve(" Claude-Sonnet-4-5 "), "claude-sonnet-4-5");
}

TEST(LookupTest, DatedSnapshots) {
  EXPECT_EQ(Resolve("gpt-4o-2024-08-06"), "gpt-4o");
  EXPECT_EQ(Resolve("gpt-4o-mini-2024-07-18"), "gpt-4o-mini");
  EXPECT_EQ(Resolve("claude-3-5-sonnet-20241022"), "claude-3-5-sonnet");
  EXPECT_EQ(Resolve("claude-sonnet-4-20250514"), "claude-sonnet-4");
  EXPECT_EQ(Resolve("claude-opus-4-1-20250805"), "claude-opus-4-1");
  EXPECT_EQ(Resolve("claude-haiku-4-5-20251001"), "claude-haiku-4-5");
  EXPECT_EQ(Resolve("claude-3-7-sonnet-latest"), "claude-3-7-sonnet");
  EXPECT_EQ(Resolve("claude-3-5-sonnet@20240620"), "claude-3-5-sonnet");     // Vertex
  EXPECT_EQ(Resolve("claude-3-5-sonnet-v2@20241022"), "claude-3-5-sonnet");  // Vertex
  EXPECT_EQ(Resolve("gpt-3.5-turbo-0125"), "gpt-3.5-turbo");
  EXPECT_EQ(Resolve("gpt-4-0613"), "gpt-4");
  EXPECT_EQ(Resolve("gemini-1.5-flash-002"), "gemini-1.5-flash");
  EXPECT_EQ(Resolve("gemini-1.5-pro-latest"), "gemini-1.5-pro");
  EXPECT_EQ(Resolve("gemini-2.5-flash-preview-05-20"), "gemini-2.5-flash");
  EXPECT_EQ(Resolve("gemini-2.5-flash-preview-09-2025"), "gemini-2.5-flash");
  EXPECT_EQ(Resolve("gemini-3-pro-preview"), "gemini-3-pro");
  EXPECT_EQ(Resolve("o1-preview"), "o1");
  EXPECT_EQ(Resolve("o3-mini-2025-01-31"), "o3-mini");
  EXPECT_EQ(Resolve("mistral-large-latest"), "mistral-large");
  EXPECT_EQ(Resolve("mistral-large-2411"), "mistral-large");
  EXPECT_EQ(Resolve("deepseek-v3-0324"), "deepseek-chat");
}

TEST(LookupTest, ExactSnapshotEntryBeatsStripping) {
  // gpt-4o-2024-05-13 kept its launch price; it must not fall through to gpt-4o.
  std::optional<ResolvedPrice> r = Defaults().Lookup("gpt-4o-2024-05-13", kNow);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->model, "gpt-4o-2024-05-13");
  EXPECT_DOUBLE_EQ(r->price.input, 5.00);
}

TEST(LookupTest, BedrockIds) {
  EXPECT_EQ(Resolve("anthropic.claude-3-5-sonnet-20241022-v2:0"), "claude-3-5-sonnet");
  EXPECT_EQ(Resolve("us.anthropic.claude-sonnet-4-20250514-v1:0"), "claude-sonnet-4");
  EXPECT_EQ(Resolve("eu.anthropic.claude-3-7-sonnet-20250219-v1:0"), "claude-3-7-sonnet");
  EXPECT_EQ(Resolve("meta.llama3-1-70b-instruct-v1:0"), "llama-3.1-70b-instruct");
}

TEST(LookupTest, VendorAndRoutePrefixes) {
  EXPECT_EQ(Resolve("openai/gpt-4o-mini"), "gpt-4o-mini");
  EXPECT_EQ(Resolve("sim/gpt-4o"), "gpt-4o");
  EXPECT_EQ(Resolve("anthropic/claude-3-5-haiku-20241022"), "claude-3-5-haiku");
  EXPECT_EQ(Resolve("models/gemini-2.5-pro"), "gemini-2.5-pro");
  EXPECT_EQ(Resolve("google/gemini-2.0-flash-001"), "gemini-2.0-flash");
  EXPECT_EQ(Resolve("openrouter/anthropic/claude-3.5-sonnet"), "claude-3-5-sonnet");
  EXPECT_EQ(Resolve("meta-llama/Meta-Llama-3.1-8B-Instruct"), "llama-3.1-8b-instruct");
  EXPECT_EQ(Resolve("meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo"), "llama-3.1-405b-instruct");
  EXPECT_EQ(Resolve("deepseek-ai/DeepSeek-R1"), "deepseek-reasoner");
  EXPECT_EQ(Resolve("Qwen/Qwen2.5-72B-Instruct"), "qwen2.5-72b-instruct");
  EXPECT_EQ(Resolve("mistralai/mixtral-8x7b-instruct"), "mixtral-8x7b");
}

TEST(LookupTest, MiniIsNeverPricedAsItsBigSibling) {
  EXPECT_EQ(Resolve("gpt-4o-mini"), "gpt-4o-mini");
  EXPECT_DOUBLE_EQ(Defaults().Lookup("gpt-4o-mini", kNow)->price.input, 0.15);
  EXPECT_EQ(Resolve("openai/gpt-4o-mini-2024-07-18"), "gpt-4o-mini");
  EXPECT_EQ(Resolve("o3-mini"), "o3-mini");
  EXPECT_EQ(Resolve("gpt-4.1-nano"), "gpt-4.1-nano");
  EXPECT_EQ(Resolve("gpt-5-mini"), "gpt-5-mini");
  // A catalog that knows only gpt-4o must leave gpt-4o-mini unpriced.
  PriceCatalog only_4o = MustParse(R"(
models:
  - name: gpt-4o
    prices: [{input: 2.5, output: 10}]
)");
  EXPECT_TRUE(only_4o.Lookup("gpt-4o", kNow));
  EXPECT_FALSE(only_4o.Lookup("gpt-4o-mini", kNow));
  EXPECT_FALSE(only_4o.Lookup("gpt-4o-mini-2024-07-18", kNow));
  EXPECT_FALSE(only_4o.Lookup("openai/gpt-4o-mini", kNow));
}

TEST(LookupTest, VariantsWithOtherPricesStayUnpriced) {
  EXPECT_EQ(Resolve("gpt-4o-audio-preview"), "<unpriced>");
  EXPECT_EQ(Resolve("gpt-4o-realtime-preview-2024-12-17"), "<unpriced>");
  EXPECT_EQ(Resolve("gemini-2.0-flash-exp"), "<unpriced>");
  EXPECT_EQ(Resolve("ft:gpt-4o-mini-2024-07-18:acme::abc123"), "<unpriced>");
}

TEST(LookupTest, UnknownModelsAreUnpriced) {
  EXPECT_FALSE(Defaults().Lookup("my-private-model", kNow));
  EXPECT_FALSE(Defaults().Lookup("", kNow));
  EXPECT_FALSE(Defaults().Lookup("/", kNow));
  EXPECT_FALSE(Defaults().Lookup("openai/", kNow));
  EXPECT_FALSE(Defaults().Lookup("@20241022", kNow));
  EXPECT_FALSE(Defaults().Lookup("-latest", kNow));
  EXPECT_FALSE(Defaults().Lookup(std::string(PriceCatalog::kMaxModelNameLength + 1, 'a'), kNow));
  std::string long_route;
  for (int i = 0; i < 200; ++i) long_route += "a/";
  EXPECT_EQ(Resolve(long_route + "gpt-4o"), "gpt-4o");
}

TEST(LookupTest, EffectiveDatesPickTheEntryInForce) {
  // o3: $10/$40 from 2025-04-16, $2/$8 from 2025-06-10.
  const int64_t cut = Day(2025, 6, 10);
  EXPECT_DOUBLE_EQ(Defaults().Lookup("o3", cut - 1)->price.input, 10.00);
  EXPECT_EQ(Defaults().Lookup("o3", cut - 1)->effective_from, "2025-04-16");
  EXPECT_DOUBLE_EQ(Defaults().Lookup("o3", cut)->price.input, 2.00);
  EXPECT_EQ(Defaults().Lookup("o3", cut)->effective_from, "2025-06-10");
  EXPECT_DOUBLE_EQ(Defaults().Lookup("o3-2025-04-16", kNow)->price.output, 8.00);
  // Before the first entry: the first entry (clock skew or unset time, not "free").
  EXPECT_DOUBLE_EQ(Defaults().Lookup("o3", 0)->price.input, 10.00);

  PriceCatalog c = MustParse(R"(
version: t1
models:
  - name: m
    prices:
      - {from: 2025-03-01, input: 3, output: 30}
      - {input: 1, output: 10}
      - {from: 2024-02-29, input: 2, output: 20}
)");
  const ModelPrices* m = c.FindModel("M");
  ASSERT_NE(m, nullptr);
  ASSERT_EQ(m->prices.size(), 3u);  // sorted: undated, 2024-02-29, 2025-03-01
  EXPECT_EQ(m->prices[0].from, "");
  EXPECT_EQ(m->prices[1].from, "2024-02-29");
  EXPECT_DOUBLE_EQ(c.Lookup("m", 0)->price.input, 1);
  EXPECT_DOUBLE_EQ(c.Lookup("m", Day(2024, 2, 29) - 1)->price.input, 1);
  EXPECT_DOUBLE_EQ(c.Lookup("m", Day(2024, 2, 29))->price.input, 2);
  EXPECT_DOUBLE_EQ(c.Lookup("m", Day(2025, 2, 28))->price.input, 2);
  EXPECT_DOUBLE_EQ(c.Lookup("m", Day(2025, 3, 1))->price.input, 3);
  EXPECT_DOUBLE_EQ(c.Lookup("m", Day(2030, 1, 1))->price.input, 3);
}

TEST(LookupTest, ConcurrentReadersSeeTheSameAnswers) {
  const PriceCatalog& c = Defaults();
  std::vector<std::thread> threads;
  std::vector<int> wrong(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&c, &wrong, t] {
      for (int i = 0; i < 2000; ++i) {
        std::optional<ResolvedPrice> r = c.Lookup("openai/gpt-4o-mini-2024-07-18", kNow);
        if (!r || r->model != "gpt-4o-mini") ++wrong[t];
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int w : wrong) EXPECT_EQ(w, 0);
}

// ------------------------------------------------------------------------ Default catalog

TEST(DefaultCatalogTest, LoadsAndContainsEveryFamily) {
  core::Result<PriceCatalog> c = PriceCatalog::Default();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE(c->version().empty());
  const char* kExpected[] = {
      // OpenAI
      "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o1", "o1-mini", "o3",
      "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano", "text-embedding-3-small",
      "text-embedding-3-large", "gpt-3.5-turbo",
      // Anthropic
      "claude-3-5-haiku", "claude-3-5-sonnet", "claude-3-7-sonnet", "claude-sonnet-4",
      "claude-opus-4", "claude-opus-4-1", "claude-haiku-4-5", "claude-sonnet-4-5",
      // Google
      "gemini-1.5-flash", "gemini-1.5-pro", "gemini-2.0-flash", "gemini-2.5-flash",
      "gemini-2.5-pro",
      // Open-weight
      "llama-3.1-8b-instruct", "llama-3.1-70b-instruct", "llama-3.1-405b-instruct", "mixtral-8x7b",
      "mistral-large", "deepseek-v3", "deepseek-chat", "deepseek-r1", "deepseek-reasoner",
      "qwen2.5-72b-instruct"};
  for (const char* name : kExpected) {
    std::optional<ResolvedPrice> r = c->Lookup(name, kNow);
    ASSERT_TRUE(r) << name;
    EXPECT_GT(r->price.input, 0) << name;
  }
  for (const ModelPrices& m : c->models()) {
    EXPECT_FALSE(m.provider.empty()) << m.name;
    ASSERT_FALSE(m.prices.empty()) << m.name;
    for (const PriceEntry& e : m.prices) {
      EXPECT_FALSE(e.from.empty()) << m.name;  // every default price is dated
      if (m.provider == "anthropic") {
        EXPECT_TRUE(e.price.cache_write.has_value()) << m.name;
        EXPECT_TRUE(e.price.cached_input.has_value()) << m.name;
      }
    }
  }
}

TEST(DefaultCatalogTest, KnownPrices) {
  auto at = [](std::string_view model) { return Defaults().Lookup(model, kNow)->price; };
  EXPECT_DOUBLE_EQ(at("gpt-4o").input, 2.50);
  EXPECT_DOUBLE_EQ(at("gpt-4o").output, 10.00);
  EXPECT_DOUBLE_EQ(*at("gpt-4o").cached_input, 1.25);
  EXPECT_DOUBLE_EQ(at("claude-sonnet-4-5").input, 3.00);
  EXPECT_DOUBLE_EQ(*at("claude-sonnet-4-5").cache_write, 3.75);
  EXPECT_DOUBLE_EQ(*at("claude-sonnet-4-5").cached_input, 0.30);
  EXPECT_DOUBLE_EQ(at("text-embedding-3-small").input, 0.02);
  EXPECT_DOUBLE_EQ(at("text-embedding-3-small").output, 0.0);
  EXPECT_EQ(Defaults().Lookup("gpt-4o", Day(2024, 6, 1))->price.input, 5.00);
}

TEST(DefaultCatalogTest, EmbeddedTextMatchesTheSourceFile) {
  std::ifstream f(std::string(LLMSCOPE_PRICING_SOURCE_DIR) + "/default_prices.yaml",
                  std::ios::binary);
  ASSERT_TRUE(f) << "cannot open default_prices.yaml";
  std::stringstream text;
  text << f.rdbuf();
  EXPECT_EQ(PriceCatalog::DefaultYaml(), text.str());
}

// --------------------------------------------------------------------------- YAML errors

TEST(YamlTest, ParsesEveryField) {
  PriceCatalog c = MustParse(R"(
version: acme-7
models:
  - name: m1
    provider: acme
    aliases: [m1-alias, Other-Name]
    notes: anything
    prices:
      - from: 2025-01-01
        notes: launch
        input: 1
        output: 2.5
        cached_input: 0.1
        cache_write: 1.25
        reasoning: 3
        long_context: {above_input_tokens: 1000, input: 2, output: 5, cached_input: 0.2,
                       cache_write: 2.5, reasoning: 6}
)");
  EXPECT_EQ(c.version(), "acme-7");
  ASSERT_EQ(c.models().size(), 1u);
  const ModelPrices& m = c.models()[0];
  EXPECT_EQ(m.provider, "acme");
  EXPECT_EQ(m.aliases, (std::vector<std::string>{"m1-alias", "Other-Name"}));
  std::optional<ResolvedPrice> r = c.Lookup("other-name", kNow);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->model, "m1");
  EXPECT_EQ(r->provider, "acme");
  const Price& p = r->price;
  EXPECT_DOUBLE_EQ(p.input, 1);
  EXPECT_DOUBLE_EQ(p.output, 2.5);
  EXPECT_DOUBLE_EQ(*p.cached_input, 0.1);
  EXPECT_DOUBLE_EQ(*p.cache_write, 1.25);
  EXPECT_DOUBLE_EQ(*p.reasoning, 3);
  ASSERT_TRUE(p.long_context);
  EXPECT_EQ(p.long_context->above_input_tokens, 1000);
  EXPECT_DOUBLE_EQ(*p.long_context->rates.reasoning, 6);
  EXPECT_EQ(&p.RatesFor(1000), static_cast<const Rates*>(&p));
  EXPECT_EQ(&p.RatesFor(1001), &p.long_context->rates);
}

TEST(YamlTest, ReportsEveryProblemWithItsLocation) {
  // Line numbers below count from the line after R"(.
  core::Result<PriceCatalog> c = PriceCatalog::FromYaml(R"(version: bad
models:
  - name: negative
    prices:
      - {from: 2025-01-01, input: -1, output: 2}
  - name: no-output
    prices:
      - {input: 1}
  - name: bad-date
    prices:
      - {from: 2025-02-30, input: 1, output: 2}
  - name: typo
    prices:
      - {input: 1, ouput: 2}
  - name: dup
    prices: [{input: 1, output: 2}]
  - name: DUP
    prices: [{input: 1, output: 2}]
  - name: alias-clash
    aliases: [negative-x, no-output]
    prices: [{input: 1, output: 2}]
  - name: not-a-number
    prices: [{input: cheap, output: 2}]
  - name: no-prices
    provder: acme
  - name: same-day
    prices:
      - {from: 2025-01-01, input: 1, output: 2}
      - {from: 2025-01-01, input: 2, output: 3}
  - name: bad-long
    prices:
      - input: 1
        output: 2
        long_context: {input: 2, output: 4}
extra: 1
)",
                                                        "prices.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), core::StatusCode::kInvalidArgument);
  const std::string msg = c.status().message();
  const char* kProblems[] = {
      "prices.yaml:5:35: model 'negative': prices[0]: input must not be negative, got -1",
      "prices.yaml:8:9: model 'no-output': prices[0]: missing required field 'output'",
      "prices.yaml:11:16: model 'bad-date': prices[0]: from must be a UTC day YYYY-MM-DD, got "
      "'2025-02-30'",
      "prices.yaml:14:20: model 'typo': prices[0]: unknown field 'ouput'",
      "prices.yaml:14:9: model 'typo': prices[0]: missing required field 'output'",
      "prices.yaml:17:11: model 'DUP': 'DUP' is already a name or alias of model 'dup'",
      "prices.yaml:20:27: model 'alias-clash': 'no-output' is already a name or alias of model "
      "'no-output'",
      "prices.yaml:23:22: model 'not-a-number': prices[0]: input must be a number (USD per million "
      "tokens), got 'cheap'",
      "prices.yaml:25:5: model 'no-prices': unknown field 'provder'",
      "prices.yaml:24:5: model 'no-prices': missing required field 'prices'",
      "prices.yaml:29:9: model 'same-day': two price entries take effect on 2025-01-01",
      "prices.yaml:34:23: model 'bad-long': prices[0].long_context: missing required field "
      "'above_input_tokens'",
      "prices.yaml:35:1: unknown field 'extra' (expected one of: version models)",
  };
  for (const char* p : kProblems) EXPECT_NE(msg.find(p), std::string::npos) << p << "\n" << msg;
  EXPECT_NE(msg.find("price catalog prices.yaml: 13 problems"), std::string::npos) << msg;
  // Listed in document order, whichever pass found them.
  EXPECT_LT(msg.find("model 'negative'"), msg.find("model 'typo'"));
  EXPECT_LT(msg.find("model 'bad-long'"), msg.find("unknown field 'extra'"));
  // The negative-x alias is fine: only real clashes are reported.
  EXPECT_EQ(msg.find("negative-x"), std::string::npos) << msg;
}

TEST(YamlTest, SyntaxErrorsNameTheLine) {
  core::Result<PriceCatalog> c = PriceCatalog::FromYaml(
      "models:\n  - name: x\n    prices: [{input: 1, output: 2}\n", "s.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("s.yaml:"), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("YAML syntax error"), std::string::npos)
      << c.status().message();
}

TEST(YamlTest, RejectsMalformedDocuments) {
  auto error = [](std::string_view yaml) {
    core::Result<PriceCatalog> c = PriceCatalog::FromYaml(yaml, "x.yaml");
    return c.ok() ? std::string("<ok>") : c.status().message();
  };
  EXPECT_NE(error("").find("expected a mapping"), std::string::npos);
  EXPECT_NE(error("- a\n- b\n").find("expected a mapping"), std::string::npos);
  EXPECT_NE(error("version: 1\n").find("missing required field 'models'"), std::string::npos);
  EXPECT_NE(error("models: {}\n").find("models must be a list"), std::string::npos);
  EXPECT_NE(error("models:\n  - name: a\n    prices: []\n").find("non-empty list"),
            std::string::npos);
  EXPECT_NE(error("models:\n  - name: a\n    prices: [{input: .nan, output: 1}]\n")
                .find("input must be a number"),
            std::string::npos);
  EXPECT_NE(
      error("models:\n  - name: a b\n    prices: [{input: 1, output: 1}]\n").find("whitespace"),
      std::string::npos);
  EXPECT_NE(error("models:\n  - name: a\n    input: 1\n    input: 2\n    prices: [{input: 1, "
                  "output: 1}]\n")
                .find("unknown field 'input'"),
            std::string::npos);
  EXPECT_NE(error("models:\n  - name: a\n    prices: [{input: 1, input: 2, output: 1}]\n")
                .find("field 'input' appears twice"),
            std::string::npos);
  EXPECT_NE(error("models:\n  - name: a\n    prices: [{input: 1, output: 1}, {input: 2, output: "
                  "1}]\n")
                .find("only one price entry may omit 'from'"),
            std::string::npos);
  EXPECT_NE(error("models:\n  - name: a\n    prices: [{from: 2025-1-1, input: 1, output: 1}]\n")
                .find("YYYY-MM-DD"),
            std::string::npos);
  EXPECT_NE(error("models:\n  - name: a\n    prices:\n      - input: 1\n        output: 1\n"
                  "        long_context: {above_input_tokens: -5, input: 1, output: 1}\n")
                .find("above_input_tokens must be a positive integer"),
            std::string::npos);
  EXPECT_EQ(error("models: []\n"), "<ok>");
}

// ------------------------------------------------------------------------------- Overlay

constexpr std::string_view kOverrides = R"(
version: acme-3
models:
  - name: GPT-4o          # overrides the default model, case-insensitively
    aliases: [acme-gpt]
    prices:
      - {input: 2.00, output: 8.00}
  - name: deepseek-v3     # a default alias becomes the user's own model
    provider: together
    prices:
      - {input: 1.25, output: 1.25}
  - name: acme-llm        # a brand-new model
    provider: acme
    prices:
      - {input: 0.5, output: 1.5}
)";

TEST(OverlayTest, OverridesAddsAndTakesOverAliases) {
  PriceCatalog c = Defaults();
  size_t before = c.models().size();
  ASSERT_TRUE(c.Overlay(MustParse(kOverrides)).ok());
  EXPECT_EQ(c.version(), Defaults().version() + "+acme-3");
  EXPECT_EQ(c.models().size(), before + 2);

  std::optional<ResolvedPrice> r = c.Lookup("openai/gpt-4o-2024-08-06", kNow);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->model, "gpt-4o");
  EXPECT_EQ(r->provider, "openai");  // kept: the override named no provider
  EXPECT_DOUBLE_EQ(r->price.input, 2.00);
  EXPECT_FALSE(r->price.cached_input.has_value());  // the whole price list was replaced
  EXPECT_EQ(c.Lookup("gpt-4o", Day(2024, 6, 1))->price.input, 2.00);
  EXPECT_EQ(c.Lookup("chatgpt-4o-latest", kNow)->model, "gpt-4o");  // default aliases kept
  EXPECT_EQ(c.Lookup("acme-gpt", kNow)->model, "gpt-4o");

  EXPECT_EQ(c.Lookup("deepseek-v3", kNow)->model, "deepseek-v3");
  EXPECT_DOUBLE_EQ(c.Lookup("deepseek-v3", kNow)->price.input, 1.25);
  EXPECT_EQ(c.Lookup("deepseek-chat", kNow)->model, "deepseek-chat");
  EXPECT_DOUBLE_EQ(c.Lookup("deepseek-chat", kNow)->price.input, 0.28);
  EXPECT_EQ(c.Lookup("acme/acme-llm-latest", kNow)->model, "acme-llm");
  EXPECT_EQ(c.Lookup("gpt-4o-mini", kNow)->model, "gpt-4o-mini");  // untouched
  EXPECT_DOUBLE_EQ(c.Lookup("gpt-4o-mini", kNow)->price.input, 0.15);
}

TEST(OverlayTest, MergeLeavesItsInputsAlone) {
  PriceCatalog overrides = MustParse(kOverrides);
  core::Result<PriceCatalog> merged = PriceCatalog::Merge(Defaults(), overrides);
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_DOUBLE_EQ(merged->Lookup("gpt-4o", kNow)->price.input, 2.00);
  EXPECT_DOUBLE_EQ(Defaults().Lookup("gpt-4o", kNow)->price.input, 2.50);
  EXPECT_EQ(Defaults().Lookup("deepseek-v3", kNow)->model, "deepseek-chat");
}

TEST(OverlayTest, AliasNamingAnotherModelIsAnErrorAndChangesNothing) {
  PriceCatalog c = Defaults();
  core::Status s = c.Overlay(MustParse(R"(
models:
  - name: cheap
    aliases: [gpt-4o, o3]
    prices: [{input: 0, output: 0}]
)"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("alias 'gpt-4o' is the name of model 'gpt-4o'"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("alias 'o3' is the name of model 'o3'"), std::string::npos)
      << s.message();
  EXPECT_EQ(c.version(), Defaults().version());
  EXPECT_EQ(c.Lookup("gpt-4o", kNow)->model, "gpt-4o");
  EXPECT_FALSE(c.Lookup("cheap", kNow));
}

}  // namespace
}  // namespace llmscope::pricing
