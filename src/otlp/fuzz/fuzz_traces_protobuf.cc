// libFuzzer target: arbitrary bytes as an OTLP protobuf body of each signal. Decoding must
// never crash, and what it returns must keep the decoder's promises (checked below).

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "otlp/fuzz/invariants.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  llmscope::otlp::fuzz::CheckAllSignals(body, llmscope::otlp::Encoding::kProtobuf);
  return 0;
}
