#include "server/config.h"

namespace llmscope::server {
namespace internal {
std::string_view DefaultConfigYaml();  // generated from examples/llmscope.yaml
}  // namespace internal

std::string_view DefaultConfigYaml() { return internal::DefaultConfigYaml(); }

}  // namespace llmscope::server
