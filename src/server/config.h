#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/log.h"
#include "core/status.h"
#include "gateway/gateway.h"
#include "gateway/router.h"
#include "http/server.h"
#include "pipeline/pipeline.h"
#include "simulator/sim.h"
#include "stats/llm_metrics.h"

namespace llmscope::server {

// The whole configuration, typed and validated once at start-up. docs/CONFIG.md documents
// every key; examples/llmscope.yaml is the default that `make run` uses.
struct Config {
  http::ServerOptions http;
  gateway::GatewayOptions gateway;
  std::vector<gateway::Upstream> upstreams;  // simulator upstreams get their origin at start
  std::vector<gateway::Route> routes;
  pipeline::PipelineOptions pipeline;
  stats::StatsOptions stats;
  simulator::SimOptions simulator;
  std::string calls_log = "stdout";  // "stdout", "stderr", "off" or a file path
  core::LogLevel log_level = core::LogLevel::kInfo;
  std::vector<std::string> pricing_files;  // price overrides layered over the defaults
  std::string pricing_inline_yaml;         // `pricing.models` given inline in this file
};

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// Parses and validates a YAML config. Fails listing every problem, one per line, each with
// "source:line: key: problem". API keys are read through `env` (never stored in the file).
core::Result<Config> ParseConfig(std::string_view yaml, std::string_view source,
                                 const EnvLookup& env);

// The configuration compiled into the binary (examples/llmscope.yaml).
std::string_view DefaultConfigYaml();

// "host:port" -> host and port. Errors name the value.
core::Status ParseListen(std::string_view s, std::string& host, uint16_t& port);

}  // namespace llmscope::server
