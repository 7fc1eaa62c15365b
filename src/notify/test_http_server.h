#pragma once

// For the notify module's tests only: a loopback HTTP server on a free port that records
// every request and answers with scripted statuses.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "http/server.h"

namespace llmscope::notify::testutil {

struct CapturedRequest {
  std::string method;
  std::string target;
  std::string content_type;
  std::string user_agent;
  std::string body;
};

// Thread-safety: every method is safe from any thread.
class CaptureServer {
 public:
  CaptureServer() {
    http::ServerOptions o;
    o.port = 0;
    o.threads = 1;
    server_ = std::make_unique<http::Server>(
        o, [this](http::Request& req, http::ResponseWriter& w) -> http::Task<void> {
          int status = 200;
          {
            std::lock_guard lock(mu_);
            CapturedRequest c;
            c.method = std::string(req.method());
            c.target = std::string(req.target());
            c.content_type = std::string(req.header("Content-Type").value_or(""));
            c.user_agent = std::string(req.header("User-Agent").value_or(""));
            c.body = req.body();
            requests_.push_back(std::move(c));
            if (!statuses_.empty()) {
              status = statuses_.front();
              statuses_.pop_front();
            }
          }
          cv_.notify_all();
          const http::HeaderList headers = {{"Content-Type", "text/plain"}};
          co_await w.Send(status, headers, "ok");
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
    std::lock_guard lock(mu_);
    statuses_.assign(statuses.begin(), statuses.end());
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
  std::unique_ptr<http::Server> server_;
  bool started_ = false;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<CapturedRequest> requests_;
  std::deque<int> statuses_;
};

}  // namespace llmscope::notify::testutil
