#pragma once

// Socket helpers shared by the server's connections and the upstream client (private to
// the http module).

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_suffix.hpp>

namespace llmscope::http::detail {

// Writes what a plain TCP socket takes right now (one sendmsg) and returns what it did not
// take: empty when everything was written (or `ec` is set); the caller sends the rest with
// async_write. A write that completes at once (nearly every response and upstream request:
// the socket buffer has room) then costs one sendmsg and no trip through the event loop's
// queue; async_write alone would post its completion as a separate handler, with an extra
// epoll_wait(0) before it runs.
// REQUIRES: socket.non_blocking(true) (set when the connection is set up); no other write
// pending on the socket.
template <typename Buffers>
boost::beast::buffers_suffix<Buffers> WriteNow(boost::asio::ip::tcp::socket& socket,
                                               const Buffers& bufs, boost::system::error_code& ec) {
  boost::beast::buffers_suffix<Buffers> rest(bufs);
  const size_t n = socket.write_some(bufs, ec);
  if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) {
    ec = {};
    return rest;
  }
  rest.consume(ec ? boost::asio::buffer_size(bufs) : n);
  return rest;
}

}  // namespace llmscope::http::detail
