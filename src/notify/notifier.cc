#include "notify/notifier.h"

#include <algorithm>

#ifndef LLMSCOPE_VERSION
#define LLMSCOPE_VERSION "0.0.0"
#endif

namespace llmscope::notify {

core::Result<std::unique_ptr<Notifier>> Notifier::Create(NotifierOptions options, Config config,
                                                         metrics::Registry& registry,
                                                         const core::Clock& clock,
                                                         core::Logger& logger) {
  if (options.queue_capacity < 1 || options.delivery_queue_capacity < 1 ||
      options.delivery_threads < 1 || options.max_wait.count() < 1 ||
      options.retry.max_attempts < 1 || options.retry.attempt_timeout.count() <= 0 ||
      options.alertmanager.max_batch < 1 || options.alertmanager.queue_capacity < 1) {
    return core::InvalidArgument(
        "notifier options: queue capacities, delivery_threads, max_batch and max_attempts must "
        "be >= 1; max_wait >= 1ms; attempt_timeout > 0");
  }
  if (options.user_agent.empty()) options.user_agent = "llmscope/" LLMSCOPE_VERSION;
  options.alertmanager.user_agent = options.user_agent;
  auto metrics = NotifyMetrics::Register(registry);
  if (!metrics.ok()) return metrics.status();
  auto client = http::BlockingClient::Create(options.http);
  if (!client.ok()) return client.status();
  return std::unique_ptr<Notifier>(
      new Notifier(std::move(options), std::make_shared<const Config>(std::move(config)),
                   std::move(metrics).value(), std::move(client).value(), clock, logger));
}

Notifier::Notifier(NotifierOptions options, std::shared_ptr<const Config> config,
                   std::unique_ptr<NotifyMetrics> metrics,
                   std::unique_ptr<http::BlockingClient> client, const core::Clock& clock,
                   core::Logger& logger)
    : options_(std::move(options)),
      clock_(clock),
      logger_(logger),
      metrics_(std::move(metrics)),
      client_(std::move(client)),
      config_(std::move(config)) {
  silences_ = std::make_unique<Silences>(
      SilencesOptions{options_.silences_path, options_.silence_retention}, clock_, logger_);
  dispatcher_ =
      std::make_unique<Dispatcher>(config_, silences_.get(), clock_, options_.external_url);
  sender_ = std::make_unique<Sender>(*client_, clock_, metrics_.get(), logger_, options_.retry,
                                     options_.user_agent);
  for (const AlertmanagerTarget& t : config_->alertmanagers) {
    alertmanagers_.push_back(std::make_unique<AlertmanagerClient>(
        t, options_.alertmanager, *client_, metrics_.get(), logger_));
  }
}

Notifier::~Notifier() { Stop(); }

std::shared_ptr<const Config> Notifier::config() const {
  std::lock_guard lock(config_mu_);
  return config_;
}

void Notifier::StartAlertmanagersLocked() {
  for (auto& am : alertmanagers_) {
    if (core::Status s = am->Start();
        !s.ok() && s.code() != core::StatusCode::kFailedPrecondition) {
      logger_.Error("notify: cannot start alertmanager client",
                    {{"alertmanager", am->push_url()}, {"error", s.message()}});
    }
  }
}

core::Status Notifier::Start() {
  std::lock_guard lock(am_mu_);
  if (started_) return core::FailedPrecondition("notifier already started");
  silences_load_status_ = silences_->Load();
  if (!silences_load_status_.ok()) {
    logger_.Warn("notify: silences not restored", {{"error", silences_load_status_.message()}});
  }
  started_ = true;
  next_maintenance_unix_ = clock_.UnixNanos() + options_.maintenance_interval.count();
  {
    std::lock_guard out(out_mu_);
    draining_ = false;
  }
  delivery_stop_ = std::stop_source();
  StartAlertmanagersLocked();
  for (int i = 0; i < options_.delivery_threads; ++i) {
    delivery_threads_.emplace_back([this](std::stop_token stop) { RunDelivery(std::move(stop)); });
  }
  dispatcher_thread_ = std::jthread([this](std::stop_token stop) { RunDispatcher(stop); });
  return core::Status::Ok();
}

void Notifier::Stop(core::Nanos timeout) {
  {
    std::lock_guard lock(am_mu_);
    if (!started_) return;
    started_ = false;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // 1. The dispatcher thread hands what Send queued on, then ends.
  dispatcher_thread_.request_stop();
  if (dispatcher_thread_.joinable()) dispatcher_thread_.join();
  // 2. Deliveries already queued, and the Alertmanager queues, drain until the deadline.
  {
    std::lock_guard lock(out_mu_);
    draining_ = true;
    drain_deadline_ = deadline;
  }
  out_cv_.notify_all();
  {
    std::lock_guard lock(am_mu_);
    for (auto& am : alertmanagers_) {
      am->Stop(std::max(core::Nanos(0), std::chrono::duration_cast<core::Nanos>(
                                            deadline - std::chrono::steady_clock::now())));
    }
  }
  {
    std::unique_lock lock(out_mu_);
    out_cv_.wait_until(lock, deadline,
                       [&] { return deliveries_.empty() && active_deliveries_ == 0; });
    const size_t left = deliveries_.size();
    if (left > 0) {
      logger_.Warn("notify: stop timeout; undelivered notifications dropped",
                   {{"notifications", std::to_string(left)}});
      deliveries_.clear();
    }
  }
  // 3. Cancel backoff waits and join.
  delivery_stop_.request_stop();
  for (auto& t : delivery_threads_) t.request_stop();
  out_cv_.notify_all();
  for (auto& t : delivery_threads_) {
    if (t.joinable()) t.join();
  }
  delivery_threads_.clear();
}

void Notifier::Send(std::vector<Alert> alerts) {
  if (alerts.empty()) return;
  size_t dropped = 0;
  {
    std::lock_guard lock(in_mu_);
    for (Alert& a : alerts) input_.push_back(std::move(a));
    while (input_.size() > options_.queue_capacity) {
      input_.pop_front();
      ++dropped;
    }
  }
  if (dropped > 0) {
    metrics_->queue_dropped->Inc(static_cast<double>(dropped));
    logger_.Warn("notify: alert queue full; dropped the oldest alerts",
                 {{"dropped", std::to_string(dropped)}});
  }
  in_cv_.notify_all();
}

void Notifier::DrainInput() {
  std::vector<Alert> batch;
  {
    std::lock_guard lock(in_mu_);
    batch.assign(std::make_move_iterator(input_.begin()), std::make_move_iterator(input_.end()));
    input_.clear();
  }
  if (batch.empty()) return;
  (void)dispatcher_->Put(batch);
  std::lock_guard lock(am_mu_);
  for (auto& am : alertmanagers_) am->Enqueue(batch);
}

void Notifier::RunDispatcher(std::stop_token stop) {
  while (!stop.stop_requested()) {
    DrainInput();
    std::vector<Notification> ns = dispatcher_->Tick();
    std::vector<Notification> dropped;
    if (!ns.empty()) {
      {
        std::lock_guard lock(out_mu_);
        for (Notification& n : ns) deliveries_.push_back(std::move(n));
        while (deliveries_.size() > options_.delivery_queue_capacity) {
          dropped.push_back(std::move(deliveries_.front()));
          deliveries_.pop_front();
        }
      }
      out_cv_.notify_all();
    }
    for (const Notification& n : dropped) {
      // Undelivered: the group retries at its next flush.
      dispatcher_->Done(n, std::vector<bool>(n.deliveries.size(), false));
      metrics_->queue_dropped->Inc();
    }
    if (!dropped.empty()) {
      logger_.Warn("notify: delivery queue full; dropped the oldest notifications",
                   {{"dropped", std::to_string(dropped.size())}});
    }
    const int64_t now_unix = clock_.UnixNanos();
    if (now_unix >= next_maintenance_unix_) {
      silences_->GarbageCollect();
      next_maintenance_unix_ = now_unix + options_.maintenance_interval.count();
    }
    // Waits in real time for what remains until the next flush on the Clock, capped by
    // max_wait; Send and Stop wake it at once.
    core::Nanos wait = options_.max_wait;
    if (auto next = dispatcher_->NextFlush()) {
      wait = std::clamp<core::Nanos>(*next - clock_.Now(), std::chrono::milliseconds(1),
                                     options_.max_wait);
    }
    std::unique_lock lock(in_mu_);
    in_cv_.wait_for(lock, stop, wait, [&] { return !input_.empty(); });
  }
  DrainInput();
}

void Notifier::RunDelivery(std::stop_token stop) {
  while (true) {
    Notification n;
    {
      std::unique_lock lock(out_mu_);
      out_cv_.wait(lock, stop, [&] { return !deliveries_.empty() || draining_; });
      if (stop.stop_requested() || deliveries_.empty()) {
        if (stop.stop_requested() || draining_) return;
        continue;
      }
      n = std::move(deliveries_.front());
      deliveries_.pop_front();
      ++active_deliveries_;
    }
    std::vector<bool> ok;
    ok.reserve(n.deliveries.size());
    for (const Delivery& d : n.deliveries) {
      ok.push_back(sender_->Deliver(n.receiver, d, delivery_stop_.get_token()).ok);
    }
    dispatcher_->Done(n, ok);
    {
      std::lock_guard lock(out_mu_);
      --active_deliveries_;
    }
    out_cv_.notify_all();
  }
}

core::Status Notifier::Reload(Config config) {
  auto cfg = std::make_shared<const Config>(std::move(config));
  {
    std::lock_guard lock(config_mu_);
    config_ = cfg;
  }
  dispatcher_->ApplyConfig(cfg);
  std::vector<std::unique_ptr<AlertmanagerClient>> old;
  {
    std::lock_guard lock(am_mu_);
    old.swap(alertmanagers_);
    for (const AlertmanagerTarget& t : cfg->alertmanagers) {
      auto same = std::find_if(old.begin(), old.end(), [&](const auto& am) {
        return am && am->target().url == t.url && am->target().timeout == t.timeout;
      });
      if (same != old.end()) {
        alertmanagers_.push_back(std::move(*same));
      } else {
        alertmanagers_.push_back(std::make_unique<AlertmanagerClient>(
            t, options_.alertmanager, *client_, metrics_.get(), logger_));
      }
    }
    if (started_) StartAlertmanagersLocked();
  }
  old.clear();  // stops the removed clients (joins their threads) outside the lock
  return core::Status::Ok();
}

std::string Notifier::AlertsJson() const { return RenderAlertsJson(dispatcher_->Alerts()); }

std::string Notifier::SilencesJson() const {
  return RenderSilencesJson(silences_->List(), clock_.UnixNanos());
}

core::Result<std::string> Notifier::SilenceJson(const std::string& id) const {
  auto s = silences_->Get(id);
  if (!s.ok()) return s.status();
  return RenderSilenceJson(*s, clock_.UnixNanos());
}

core::Result<std::string> Notifier::PostSilence(std::string_view body) {
  auto s = ParsePostableSilenceJson(body);
  if (!s.ok()) return s.status();
  auto id = silences_->Set(std::move(s).value());
  if (!id.ok()) return id.status();
  return RenderSilenceIdJson(*id);
}

core::Status Notifier::ExpireSilence(const std::string& id) { return silences_->Expire(id); }

}  // namespace llmscope::notify
