#pragma once

// For tests only (any module's *_test.cc): a loopback HTTP server on a free port that
// records every request and answers with scripted statuses and headers.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "http/server.h"

namespace llmscope::http::testutil {

struct CapturedRequest {
  std::string method;
  std::string target;
  std::string content_type;
  std::string user_agent;
  std::string body;
  HeaderList headers;  // every header as received
  // The first header with this name (case-insensitive), if any.
  std::optional<std::string> header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (HeaderNameEquals(k, name)) return v;
    }
    return std::nullopt;
  }
};

// One scripted answer.
struct ScriptedResponse {
  int status = 200;
  HeaderList headers;  // added to Content-Type: text/plain (e.g. Retry-After)
};

// Thread-safety: every method is safe from any thread.
class CaptureServer {
 public:
  CaptureServer() {
    ServerOptions o;
    o.port = 0;
    o.threads = 1;
    server_ = std::make_unique<Server>(o, [this](Request& req, ResponseWriter& w) -> Task<void> {
      ScriptedResponse answer;
      {
        std::lock_guard lock(mu_);
        CapturedRequest c;
        c.method = std::string(req.method());
        c.target = std::string(req.target());
        c.content_type = std::string(req.header("Content-Type").value_or(""));
        c.user_agent = std::string(req.header("User-Agent").value_or(""));
        c.body = req.body();
        for (const Header& h : req.headers()) c.headers.emplace_back(h.name, h.value);
        requests_.push_back(std::move(c));
        if (!script_.empty()) {
          answer = std::move(script_.front());
          script_.pop_front();
        }
      }
      cv_.notify_all();
      HeaderList headers = {{"Content-Type", "text/plain"}};
      headers.insert(headers.end(), answer.headers.begin(), answer.headers.end());
      co_await w.Send(answer.status, headers, "ok");
    });
    started_ = server_->Start().ok();
  }
  ~CaptureServer() { server_->Stop(); }

  bool started() const { return started_; }
  std::string url(const std::string& path = "") const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + path;
  }
  // The next answers' statuses, in order; 200 once they run out.
  void Script(std::vector<int> statuses) {
    std::vector<ScriptedResponse> r;
    for (int s : statuses) r.push_back({s, {}});
    ScriptResponses(std::move(r));
  }
  // The next answers, in order; 200 once they run out.
  void ScriptResponses(std::vector<ScriptedResponse> responses) {
    std::lock_guard lock(mu_);
    script_.assign(responses.begin(), responses.end());
  }
  // Waits (on an event, bounded by `timeout`) until at least `n` requests arrived.
  bool WaitFor(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
  }
  std::vector<CapturedRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  size_t count() const {
    std::lock_guard lock(mu_);
    return requests_.size();
  }

 private:
  std::unique_ptr<Server> server_;
  bool started_ = false;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<CapturedRequest> requests_;
  std::deque<ScriptedResponse> script_;
};

}  // namespace llmscope::http::testutil
