#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/status.h"

namespace llmscope::otlp {

// Inflates a gzip body (Content-Encoding: gzip; concatenated members are joined), producing
// at most `max_out` bytes. RESOURCE_EXHAUSTED when the output would exceed `max_out` (a zip
// bomb stops there, having cost at most max_out bytes of memory); INVALID_ARGUMENT when the
// input is not gzip, is corrupt, or ends early. Pure; safe from any thread.
core::Result<std::string> Gunzip(std::string_view compressed, size_t max_out);

// Compresses `data` as one gzip member (Content-Encoding: gzip) at zlib's default level.
// Pure; safe from any thread.
std::string Gzip(std::string_view data);

}  // namespace llmscope::otlp
