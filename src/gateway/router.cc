#include "gateway/router.h"

#include <optional>
#include <unordered_set>

namespace llmscope::gateway {

std::string_view ProviderKindName(ProviderKind k) {
  switch (k) {
    case ProviderKind::kOpenAi:
      return "openai";
    case ProviderKind::kAnthropic:
      return "anthropic";
    case ProviderKind::kOpenAiCompatible:
      return "openai_compatible";
    case ProviderKind::kSimulator:
      return "simulator";
  }
  return "unknown";
}

core::Result<ProviderKind> ParseProviderKind(std::string_view name) {
  if (name == "openai") return ProviderKind::kOpenAi;
  if (name == "anthropic") return ProviderKind::kAnthropic;
  if (name == "openai_compatible") return ProviderKind::kOpenAiCompatible;
  if (name == "simulator") return ProviderKind::kSimulator;
  return core::InvalidArgument("unknown provider kind '" + std::string(name) +
                               "' (expected openai, anthropic, openai_compatible, simulator)");
}

bool GlobMatch(std::string_view p, std::string_view t) {
  // Iterative matcher with single-star backtracking: linear in practice, no recursion.
  size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == t[ti])) {
      ++pi;
      ++ti;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

core::Result<Router> Router::Create(std::vector<Upstream> upstreams, std::vector<Route> routes) {
  std::string errors;
  std::unordered_set<std::string> names;
  for (const auto& u : upstreams) {
    if (u.name.empty()) errors += "an upstream has an empty name; ";
    if (!names.insert(u.name).second) errors += "upstream '" + u.name + "' is defined twice; ";
  }
  Router r;
  for (size_t i = 0; i < routes.size(); ++i) {
    const auto& route = routes[i];
    if (route.pattern.empty()) {
      errors += "route " + std::to_string(i) + " has an empty model pattern; ";
    }
    size_t idx = upstreams.size();
    for (size_t j = 0; j < upstreams.size(); ++j) {
      if (upstreams[j].name == route.upstream) idx = j;
    }
    if (idx == upstreams.size()) {
      errors += "route '" + route.pattern + "' names unknown upstream '" + route.upstream + "'; ";
    }
    r.route_upstream_.push_back(idx);
  }
  if (!errors.empty()) {
    errors.resize(errors.size() - 2);
    return core::InvalidArgument(errors);
  }
  r.upstreams_ = std::move(upstreams);
  r.routes_ = std::move(routes);
  return r;
}

std::optional<Router::Match> Router::Resolve(std::string_view model) const {
  std::optional<size_t> hit;
  for (size_t i = 0; i < routes_.size() && !hit; ++i) {
    if (routes_[i].match == MatchKind::kExact && routes_[i].pattern == model) hit = i;
  }
  for (size_t i = 0; i < routes_.size() && !hit; ++i) {
    const auto& r = routes_[i];
    if ((r.match == MatchKind::kPrefix && model.starts_with(r.pattern)) ||
        (r.match == MatchKind::kGlob && GlobMatch(r.pattern, model))) {
      hit = i;
    }
  }
  if (!hit) return std::nullopt;
  const auto& r = routes_[*hit];
  Match m;
  m.upstream_index = route_upstream_[*hit];
  m.upstream = &upstreams_[m.upstream_index];
  m.upstream_model = (r.match == MatchKind::kPrefix && r.strip_prefix)
                         ? std::string(model.substr(r.pattern.size()))
                         : std::string(model);
  return m;
}

std::string Router::Describe() const {
  std::string out;
  for (size_t i = 0; i < routes_.size(); ++i) {
    if (!out.empty()) out += ", ";
    out += routes_[i].pattern;
    if (routes_[i].match == MatchKind::kPrefix) out += "*";
    out += " -> ";
    out += routes_[i].upstream;
  }
  return out.empty() ? "(no routes configured)" : out;
}

}  // namespace llmscope::gateway
