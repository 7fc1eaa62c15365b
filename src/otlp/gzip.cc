#include "otlp/gzip.h"

#include <zlib.h>

#include <algorithm>

namespace llmscope::otlp {

core::Result<std::string> Gunzip(std::string_view compressed, size_t max_out) {
  z_stream z{};
  // 16 + MAX_WBITS: a gzip header and trailer (with its CRC check), not raw zlib.
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return core::Internal("gzip: inflateInit2 failed");
  struct End {
    z_stream* z;
    ~End() { inflateEnd(z); }
  } end{&z};

  std::string out;
  // Start near a typical OTLP compression ratio, never beyond the limit.
  out.resize(std::min<size_t>(max_out, std::max<size_t>(compressed.size() * 4, 4096)));
  size_t produced = 0;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  z.avail_in = static_cast<uInt>(compressed.size());
  for (;;) {
    if (produced == out.size()) {
      if (out.size() >= max_out) {
        // Full: one more byte of output means the body inflates past the limit.
        unsigned char probe;
        z.next_out = &probe;
        z.avail_out = 1;
        int rc = inflate(&z, Z_NO_FLUSH);
        if (z.avail_out == 0) {
          return core::Status(
              core::StatusCode::kResourceExhausted,
              "gzip body inflates to more than " + std::to_string(max_out) + " bytes (limit)");
        }
        if (rc == Z_STREAM_END && z.avail_in == 0) break;
        if (rc == Z_STREAM_END) {
          if (inflateReset(&z) != Z_OK) return core::Internal("gzip: inflateReset failed");
          continue;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
          return core::InvalidArgument(std::string("gzip body is corrupt: ") +
                                       (z.msg ? z.msg : "inflate error"));
        }
        if (z.avail_in == 0) return core::InvalidArgument("gzip body is truncated");
        continue;
      }
      out.resize(std::min(max_out, out.size() * 2));
    }
    z.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    z.avail_out = static_cast<uInt>(out.size() - produced);
    int rc = inflate(&z, Z_NO_FLUSH);
    produced = out.size() - z.avail_out;
    if (rc == Z_STREAM_END) {
      if (z.avail_in == 0) break;
      // Another gzip member follows (RFC 1952 allows concatenation).
      if (inflateReset(&z) != Z_OK) return core::Internal("gzip: inflateReset failed");
      continue;
    }
    if (rc == Z_BUF_ERROR && z.avail_in == 0 && z.avail_out > 0) {
      return core::InvalidArgument("gzip body is truncated");
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return core::InvalidArgument(std::string("gzip body is corrupt: ") +
                                   (z.msg ? z.msg : "inflate error"));
    }
    if (z.avail_in == 0 && z.avail_out > 0) return core::InvalidArgument("gzip body is truncated");
  }
  out.resize(produced);
  return out;
}

std::string Gzip(std::string_view data) {
  z_stream z{};
  // 16 + MAX_WBITS: a gzip header and trailer, as Content-Encoding: gzip wants.
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    return {};  // only on out-of-memory; an empty body is then refused by the receiver
  }
  std::string out(deflateBound(&z, static_cast<uLong>(data.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  // deflateBound leaves room for the whole stream, so one Z_FINISH completes it.
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace llmscope::otlp
