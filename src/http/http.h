#pragma once

// Shared vocabulary of the http module: the coroutine type and header views.
// Coroutines are Boost.Asio awaitables; the alias is the seam callers use, so that socket,
// parser and TLS types stay inside http/.

#include <boost/asio/awaitable.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"

namespace llmscope::http {

template <typename T = void>
using Task = boost::asio::awaitable<T>;

struct Header {
  std::string_view name;
  std::string_view value;
};

// Owned header list for building requests and responses.
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Case-insensitive ASCII comparison of header names.
bool HeaderNameEquals(std::string_view a, std::string_view b);

// Suspends the calling coroutine for `d` on its own executor. Never blocks a thread.
Task<void> SleepFor(core::Nanos d);

// The reason phrase of a status code ("OK", "Too Many Requests", ...).
std::string_view ReasonPhrase(int status);

}  // namespace llmscope::http
