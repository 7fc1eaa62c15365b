#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "http/client.h"

namespace llmscope::gateway {

// What an upstream speaks, which decides authentication and the endpoints it serves.
enum class ProviderKind {
  kOpenAi,            // api.openai.com: Bearer key; chat, completions, embeddings, responses
  kAnthropic,         // api.anthropic.com: x-api-key; /v1/messages
  kOpenAiCompatible,  // vLLM, llama.cpp server, Ollama, LiteLLM...: OpenAI wire format
  kSimulator,         // the built-in simulator: every endpoint, both dialects
};
std::string_view ProviderKindName(ProviderKind k);  // "openai", "anthropic", ...
core::Result<ProviderKind> ParseProviderKind(std::string_view name);

// One configured upstream. Immutable after start-up.
struct Upstream {
  std::string name;  // the `provider` metric label: bounded by configuration
  ProviderKind kind = ProviderKind::kOpenAiCompatible;
  http::Origin origin;
  std::string api_key;  // resolved from the environment at start-up; empty = pass client's
  std::string api_key_env;
  http::ClientOptions client;      // timeouts and TLS for this upstream
  http::HeaderList extra_headers;  // added to every upstream request
};

enum class MatchKind { kExact, kPrefix, kGlob };

struct Route {
  MatchKind match = MatchKind::kExact;
  std::string pattern;        // model name, prefix, or glob with * and ?
  std::string upstream;       // Upstream::name
  bool strip_prefix = false;  // prefix routes: send the model without the prefix upstream
};

// Maps a requested model to an upstream. Exact routes win over prefix and glob routes;
// among the others, the first in configuration order wins.
// Thread-safety: immutable after Create; safe to share across threads.
class Router {
 public:
  struct Match {
    const Upstream* upstream = nullptr;
    size_t upstream_index = 0;
    std::string upstream_model;  // the model name to send upstream
  };

  // Fails listing every problem: unknown upstream names, empty patterns, duplicate names.
  static core::Result<Router> Create(std::vector<Upstream> upstreams, std::vector<Route> routes);

  std::optional<Match> Resolve(std::string_view model) const;
  const std::vector<Upstream>& upstreams() const { return upstreams_; }
  const std::vector<Route>& routes() const { return routes_; }
  // "sim/* -> sim, gpt-* -> openai": for the unknown-model error.
  std::string Describe() const;

 private:
  std::vector<Upstream> upstreams_;
  std::vector<Route> routes_;
  std::vector<size_t> route_upstream_;  // index into upstreams_ per route
};

// Glob match with '*' (any run) and '?' (one character).
bool GlobMatch(std::string_view pattern, std::string_view text);

}  // namespace llmscope::gateway
