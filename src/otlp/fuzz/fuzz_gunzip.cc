// libFuzzer target: arbitrary bytes as a gzip body, inflated under a small limit; what
// inflates is then decoded as OTLP/JSON, as the receiver does.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "otlp/fuzz/invariants.h"
#include "otlp/gzip.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kMaxOut = 1 << 20;
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto out = llmscope::otlp::Gunzip(body, kMaxOut);
  if (!out.ok()) return 0;
  if (out->size() > kMaxOut) std::abort();  // the limit is a promise
  llmscope::otlp::fuzz::CheckAllSignals(*out, llmscope::otlp::Encoding::kJson);
  return 0;
}
