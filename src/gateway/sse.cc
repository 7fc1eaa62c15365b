#include "gateway/sse.h"

#include <cstring>

namespace llmscope::gateway {
namespace {

constexpr unsigned char kBom[3] = {0xEF, 0xBB, 0xBF};

// Finds line ends (the first CR or LF at or after a position) in one buffer. memchr beats a
// byte loop on lines of hundreds of bytes; the next LF is cached so that a CR-only stream
// does not rescan the rest of the buffer for every line.
class LineFinder {
 public:
  explicit LineFinder(std::string_view s) : s_(s) {}

  // Index of the first CR or LF at or after i, or size().
  size_t Next(size_t i) {
    const size_t n = s_.size();
    if (i >= n) return n;
    if (lf_ == kUnknown || lf_ < i) {
      const void* lf = std::memchr(s_.data() + i, '\n', n - i);
      lf_ = lf == nullptr ? n : static_cast<size_t>(static_cast<const char*>(lf) - s_.data());
    }
    const void* cr = std::memchr(s_.data() + i, '\r', lf_ - i);
    return cr == nullptr ? lf_ : static_cast<size_t>(static_cast<const char*>(cr) - s_.data());
  }

 private:
  static constexpr size_t kUnknown = static_cast<size_t>(-1);
  std::string_view s_;
  size_t lf_ = kUnknown;  // the first LF at or after the last search start, or size()
};

}  // namespace

void SseTap::FeedImpl(std::string_view in, std::string& out, void* fn, Thunk thunk) {
  if (finished_ || in.empty()) return;
  const size_t n = in.size();
  size_t i = 0;
  size_t block_begin = 0;  // first byte of the current block not yet held or forwarded

  if (after_cr_) {
    after_cr_ = false;
    if (in[0] == '\n') {
      i = 1;
      if (cr_dispatched_) {
        // The LF of a CRLF whose CR ended the previous block: it shares that block's fate.
        if (last_kept_) out.push_back('\n');
        block_begin = 1;
      }
    }
  }
  cr_dispatched_ = false;

  // The BOM is skipped for framing but stays in the raw bytes, so it is forwarded.
  while (!bom_done_ && i < n) {
    if (static_cast<unsigned char>(in[i]) == kBom[bom_matched_]) {
      ++i;
      if (++bom_matched_ == 3) {
        bom_done_ = true;
        skip_bom_in_block_ = true;
      }
    } else {
      bom_done_ = true;
      if (bom_matched_ > 0) at_line_start_ = false;  // a partial BOM is ordinary content
    }
  }

  LineFinder lines(in);
  while (i < n) {
    const size_t j = lines.Next(i);
    if (j > i) at_line_start_ = false;
    if (j == n) break;
    size_t end = j + 1;
    if (in[j] == '\r') {
      if (end < n) {
        if (in[end] == '\n') ++end;
      } else {
        after_cr_ = true;  // the LF, if any, comes with the next feed
      }
    }
    i = end;
    if (!at_line_start_) {
      at_line_start_ = true;
      continue;
    }
    // A blank line: the block is complete.
    const std::string_view tail = in.substr(block_begin, end - block_begin);
    block_begin = end;
    if (passthrough_) {
      out.append(tail);
      passthrough_ = false;
      last_kept_ = true;
    } else if (held_.empty()) {
      Dispatch(tail, out, fn, thunk);
    } else {
      held_.append(tail);
      Dispatch(held_, out, fn, thunk);
      held_.clear();
    }
    skip_bom_in_block_ = false;
    if (after_cr_) cr_dispatched_ = true;
  }

  if (block_begin < n) {
    const std::string_view tail = in.substr(block_begin);
    if (passthrough_) {
      out.append(tail);
    } else {
      held_.append(tail);
      if (held_.size() > max_event_bytes_) {
        out.append(held_);
        held_.clear();
        passthrough_ = true;
        ++oversized_;
      }
    }
  }
}

void SseTap::Dispatch(std::string_view raw, std::string& out, void* fn, Thunk thunk) {
  std::string_view s = raw;
  if (skip_bom_in_block_ && s.size() >= 3) s.remove_prefix(3);
  std::string_view event;
  std::string_view first_data;
  size_t data_lines = 0;
  LineFinder lines(s);
  size_t p = 0;
  while (p < s.size()) {
    const size_t e = lines.Next(p);
    const std::string_view line = s.substr(p, e - p);
    if (e == s.size()) {
      p = e;
    } else if (s[e] == '\r' && e + 1 < s.size() && s[e + 1] == '\n') {
      p = e + 2;
    } else {
      p = e + 1;
    }
    if (line.empty()) break;  // the terminating blank line
    if (line[0] == ':') continue;
    const size_t colon = line.find(':');
    const std::string_view field = line.substr(0, colon);
    std::string_view value;
    if (colon != std::string_view::npos) {
      value = line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    }
    if (field == "data") {
      if (++data_lines == 1) {
        first_data = value;
      } else {
        if (data_lines == 2) data_buf_.assign(first_data);
        data_buf_.push_back('\n');
        data_buf_.append(value);
      }
    } else if (field == "event") {
      event = value;
    }
  }
  if (data_lines == 0) {  // nothing to dispatch (comments, a lone `event:`, blank lines)
    out.append(raw);
    last_kept_ = true;
    return;
  }
  const SseEvent ev{event, data_lines == 1 ? first_data : std::string_view(data_buf_), raw};
  ++events_;
  last_kept_ = thunk(fn, ev);
  if (last_kept_) {
    out.append(raw);
  } else {
    ++dropped_;
  }
}

bool SseTap::Finish(std::string& out) {
  if (finished_) return false;
  finished_ = true;
  const bool partial = passthrough_ || !held_.empty();
  out.append(held_);
  held_.clear();
  held_.shrink_to_fit();
  data_buf_.clear();
  data_buf_.shrink_to_fit();
  return partial;
}

}  // namespace llmscope::gateway
