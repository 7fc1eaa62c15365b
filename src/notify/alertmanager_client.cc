#include "notify/alertmanager_client.h"

#include <boost/json.hpp>

#include "notify/receivers.h"

namespace llmscope::notify {

namespace json = boost::json;

std::string RenderPostableAlertsJson(std::span<const Alert> alerts) {
  json::array arr;
  for (const Alert& a : alerts) {
    json::object o;
    json::object labels;
    for (const auto& [k, v] : a.labels) labels[k] = v;
    o["labels"] = std::move(labels);
    json::object annotations;
    for (const auto& [k, v] : a.annotations) annotations[k] = v;
    o["annotations"] = std::move(annotations);
    if (a.starts_at_unix_nanos != 0) o["startsAt"] = FormatRfc3339(a.starts_at_unix_nanos);
    if (a.ends_at_unix_nanos != 0) o["endsAt"] = FormatRfc3339(a.ends_at_unix_nanos);
    if (!a.generator_url.empty()) o["generatorURL"] = a.generator_url;
    arr.push_back(std::move(o));
  }
  return json::serialize(arr);
}

AlertmanagerClient::AlertmanagerClient(AlertmanagerTarget target, AlertmanagerClientOptions options,
                                       http::BlockingClient& client, NotifyMetrics* metrics,
                                       core::Logger& logger)
    : target_(std::move(target)),
      options_(std::move(options)),
      push_url_(target_.url + "/api/v2/alerts"),
      client_(client),
      metrics_(metrics),
      logger_(logger) {}

AlertmanagerClient::~AlertmanagerClient() { Stop(); }

core::Status AlertmanagerClient::Start() {
  if (started_) return core::FailedPrecondition("alertmanager client already started");
  if (auto o = http::Origin::Parse(push_url_); !o.ok()) return o.status();
  started_ = true;
  {
    std::lock_guard lock(mu_);
    draining_ = false;
  }
  worker_ = std::jthread([this](std::stop_token stop) { Run(std::move(stop)); });
  return core::Status::Ok();
}

void AlertmanagerClient::Stop(core::Nanos drain) {
  if (!started_) return;
  started_ = false;
  {
    std::lock_guard lock(mu_);
    draining_ = true;
    drain_deadline_ = std::chrono::steady_clock::now() + drain;
  }
  cv_.notify_all();
  worker_.request_stop();
  if (worker_.joinable()) worker_.join();
}

void AlertmanagerClient::Enqueue(const std::vector<Alert>& alerts) {
  size_t dropped = 0;
  {
    std::lock_guard lock(mu_);
    for (const Alert& a : alerts) queue_.push_back(a);
    while (queue_.size() > options_.queue_capacity) {
      queue_.pop_front();
      ++dropped;
    }
  }
  if (dropped > 0) {
    if (metrics_) metrics_->queue_dropped->Inc(static_cast<double>(dropped));
    logger_.Warn("notify: alertmanager queue full; dropped the oldest alerts",
                 {{"alertmanager", push_url_}, {"dropped", std::to_string(dropped)}});
  }
  cv_.notify_all();
}

size_t AlertmanagerClient::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

core::Status AlertmanagerClient::PostBatch(std::span<const Alert> alerts) {
  if (alerts.empty()) return core::Status::Ok();
  auto origin = http::Origin::Parse(push_url_);
  if (!origin.ok()) return origin.status();
  http::ClientRequest req;
  req.method = "POST";
  req.target = UrlTarget(push_url_);
  req.headers = {{"Content-Type", "application/json"}, {"User-Agent", options_.user_agent}};
  req.body = RenderPostableAlertsJson(alerts);
  auto resp = client_.Fetch(*origin, std::move(req), target_.timeout);
  core::Status s;
  if (!resp.ok()) {
    s = resp.status();
  } else if (resp->status < 200 || resp->status >= 300) {
    s = core::Unavailable("alertmanager " + push_url_ + " answered HTTP " +
                          std::to_string(resp->status) + ": " + resp->body.substr(0, 256));
  }
  const double n = static_cast<double>(alerts.size());
  if (s.ok()) {
    if (metrics_) metrics_->alertmanager_sent->WithLabels({push_url_}).Inc(n);
  } else {
    if (metrics_) metrics_->alertmanager_errors->WithLabels({push_url_}).Inc(n);
    logger_.Warn("notify: pushing alerts to alertmanager failed",
                 {{"alertmanager", push_url_},
                  {"alerts", std::to_string(alerts.size())},
                  {"error", s.ToString()}});
  }
  return s;
}

void AlertmanagerClient::Run(std::stop_token stop) {
  std::unique_lock lock(mu_);
  while (true) {
    const bool may_send =
        !queue_.empty() && (!draining_ || std::chrono::steady_clock::now() < drain_deadline_);
    if (!may_send) {
      if (draining_ || stop.stop_requested()) return;
      cv_.wait(lock, stop, [&] { return !queue_.empty() || draining_; });
      continue;
    }
    std::vector<Alert> batch;
    const size_t n = std::min(queue_.size(), options_.max_batch);
    batch.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    lock.unlock();
    (void)PostBatch(batch);
    lock.lock();
  }
}

}  // namespace llmscope::notify
