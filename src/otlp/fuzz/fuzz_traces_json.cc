// libFuzzer target: arbitrary bytes as an OTLP/JSON body of each signal.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "otlp/fuzz/invariants.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  llmscope::otlp::fuzz::CheckAllSignals(body, llmscope::otlp::Encoding::kJson);
  return 0;
}
