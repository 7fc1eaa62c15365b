#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <stop_token>
#include <thread>
#include <utility>
#include <vector>

#include "http/http.h"

namespace llmscope::http {

// Thread-safety: TrySubmit and Close may be called from any thread; construction and
// destruction from the owning thread.
//
// A fixed set of threads for work that blocks (store queries, file I/O), so that event-loop
// threads never block. The queue is bounded: TrySubmit refuses work beyond `max_queued`
// instead of letting a burst of slow queries pile up without limit. The destructor stops
// taking work, runs what is queued, and joins.
class WorkPool {
 public:
  // REQUIRES: threads >= 1, max_queued >= 1.
  WorkPool(int threads, size_t max_queued) : max_queued_(max_queued) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this](std::stop_token stop) { Run(stop); });
    }
  }
  ~WorkPool() { Close(); }
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // Stops taking work, runs what is queued, and joins the threads. Idempotent.
  // REQUIRES: not called from a pool thread.
  void Close() {
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      closed_ = true;
    }
    for (auto& t : threads_) t.request_stop();
    cv_.notify_all();
    threads_.clear();  // joins; each thread leaves once the queue is empty
  }

  // Queues `work`; false (and `work` is not run) when max_queued jobs are already waiting
  // or the pool is closed.
  bool TrySubmit(std::function<void()> work) {
    {
      std::lock_guard lock(mu_);
      if (closed_ || queue_.size() >= max_queued_) return false;
      queue_.push_back(std::move(work));
    }
    cv_.notify_one();
    return true;
  }

 private:
  void Run(std::stop_token stop) {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, stop, [this] { return !queue_.empty(); });
        if (queue_.empty()) return;  // stop requested and nothing left
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job();
    }
  }

  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool closed_ = false;                      // guarded by mu_
  std::vector<std::jthread> threads_;        // last: joined before the queue goes away
};

// Runs `work` on `pool` and resumes the calling coroutine on its own executor once `work`
// has returned. co_returns false without running `work` when the pool's queue is full.
// `work` must not throw. The coroutine's frame (and whatever `work` references in it) stays
// alive until it resumes, so `work` may capture locals by reference.
inline Task<bool> RunOnPool(WorkPool& pool, std::function<void()> work) {
  auto initiation = [&pool, &work](auto handler) {
    auto ex = boost::asio::get_associated_executor(handler);
    auto shared = std::make_shared<decltype(handler)>(std::move(handler));
    bool queued = pool.TrySubmit([shared, ex, &work]() mutable {
      work();
      boost::asio::post(ex, [shared]() mutable { std::move (*shared)(true); });
    });
    if (!queued) boost::asio::post(ex, [shared]() mutable { std::move (*shared)(false); });
  };
  co_return co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void(bool)>(
      initiation, boost::asio::use_awaitable);
}

}  // namespace llmscope::http
