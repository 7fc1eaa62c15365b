#pragma once

// Socket helpers shared by the server's connections and the upstream client (private to
// the http module).

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace llmscope::http::detail {

// Writes what a plain TCP socket takes right now (one sendmsg) and returns the number of
// bytes written: 0 when it would block. Callers send the rest, if any, with async_write.
// A write that completes at once (nearly every response and upstream request: the socket
// buffer has room) then costs one sendmsg and no trip through the event loop's queue;
// async_write alone would post its completion as a separate handler, with an extra
// epoll_wait(0) before it runs.
// REQUIRES: socket.non_blocking(true) (set when the connection is set up); no other write
// pending on the socket.
template <typename Buffers>
size_t WriteNow(boost::asio::ip::tcp::socket& socket, const Buffers& bufs,
                boost::system::error_code& ec) {
  const size_t n = socket.write_some(bufs, ec);
  if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) {
    ec = {};
    return 0;
  }
  return ec ? 0 : n;
}

}  // namespace llmscope::http::detail
