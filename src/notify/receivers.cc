#include "notify/receivers.h"

#include <openssl/evp.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>

namespace llmscope::notify {

namespace json = boost::json;

namespace {

json::object LabelsJson(const LabelSet& labels) {
  json::object o;
  for (const auto& [k, v] : labels) o[k] = v;
  return o;
}

// PagerDuty rejects summaries over 1024 characters; cut at a UTF-8 boundary and mark it.
std::string TruncateSummary(std::string s) {
  constexpr size_t kMax = 1024;
  if (s.size() <= kMax) return s;
  size_t cut = kMax - 3;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  s.resize(cut);
  s += "...";
  return s;
}

std::string AlertsText(const Message& m, bool resolved) {
  Message part = m;
  part.alerts.clear();
  for (const AlertView& a : m.alerts) {
    if (a.resolved == resolved) part.alerts.push_back(a);
  }
  part.truncated_alerts = 0;
  return DefaultText(part);
}

}  // namespace

std::string RenderWebhookJson(const Message& m, size_t max_alerts) {
  size_t shown = m.alerts.size();
  if (max_alerts > 0 && shown > max_alerts) shown = max_alerts;
  json::object o;
  o["receiver"] = m.receiver;
  o["status"] = m.status();
  json::array alerts;
  for (size_t i = 0; i < shown; ++i) {
    const AlertView& a = m.alerts[i];
    json::object j;
    j["status"] = a.resolved ? "resolved" : "firing";
    j["labels"] = LabelsJson(a.alert.labels);
    j["annotations"] = LabelsJson(a.alert.annotations);
    j["startsAt"] = FormatRfc3339(a.alert.starts_at_unix_nanos);
    j["endsAt"] = FormatRfc3339(a.alert.ends_at_unix_nanos);
    j["generatorURL"] = a.alert.generator_url;
    j["fingerprint"] = FingerprintHex(a.fingerprint);
    alerts.push_back(std::move(j));
  }
  o["alerts"] = std::move(alerts);
  o["groupLabels"] = LabelsJson(m.group_labels);
  o["commonLabels"] = LabelsJson(m.common_labels);
  o["commonAnnotations"] = LabelsJson(m.common_annotations);
  o["externalURL"] = m.external_url;
  o["version"] = "4";
  o["groupKey"] = m.group_key;
  o["truncatedAlerts"] = static_cast<uint64_t>(m.alerts.size() - shown + m.truncated_alerts);
  return json::serialize(o);
}

std::string RenderSlackJson(const Message& m, const SlackConfig& c) {
  const std::string title = c.title.empty() ? DefaultTitle(m) : ExpandTemplate(c.title, m);
  const std::string text = c.text.empty() ? DefaultText(m) : ExpandTemplate(c.text, m);
  json::object o;
  if (!c.channel.empty()) o["channel"] = c.channel;
  o["username"] = "llmscope";
  json::object att;
  att["title"] = title;
  if (!m.external_url.empty()) att["title_link"] = m.external_url;
  att["text"] = text;
  att["fallback"] = title;
  att["color"] = m.firing ? "danger" : "good";
  att["mrkdwn_in"] = json::array{"fallback", "pretext", "text"};
  o["attachments"] = json::array{std::move(att)};
  return json::serialize(o);
}

std::string GroupKeyHash(std::string_view group_key) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(group_key.data(), group_key.size(), digest, &len, EVP_sha256(), nullptr);
  std::string out;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof(buf), "%02x", digest[i]);
    out += buf;
  }
  return out;
}

std::string RenderPagerDutyJson(const Message& m, const PagerDutyConfig& c) {
  json::object o;
  o["routing_key"] = c.routing_key;
  o["event_action"] = m.firing ? "trigger" : "resolve";
  o["dedup_key"] = GroupKeyHash(m.group_key);
  if (m.firing) {
    json::object payload;
    payload["summary"] = TruncateSummary(DefaultTitle(m));
    payload["source"] = "llmscope";
    payload["severity"] = c.severity;
    json::object details;
    details["firing"] = AlertsText(m, false);
    details["resolved"] = AlertsText(m, true);
    details["num_firing"] = std::to_string(m.firing_count());
    details["num_resolved"] = std::to_string(m.resolved_count());
    payload["custom_details"] = std::move(details);
    o["payload"] = std::move(payload);
  }
  o["client"] = "llmscope";
  o["client_url"] = m.external_url;
  return json::serialize(o);
}

std::string UrlTarget(std::string_view url) {
  const size_t scheme = url.find("://");
  const size_t start = scheme == std::string_view::npos ? 0 : scheme + 3;
  const size_t slash = url.find_first_of("/?", start);
  if (slash == std::string_view::npos) return "/";
  std::string t(url.substr(slash));
  if (t.front() == '?') t.insert(t.begin(), '/');
  return t;
}

Sender::Sender(http::BlockingClient& client, const core::Clock& clock, NotifyMetrics* metrics,
               core::Logger& logger, RetryOptions retry, std::string user_agent)
    : client_(client),
      clock_(clock),
      metrics_(metrics),
      logger_(logger),
      retry_(retry),
      user_agent_(std::move(user_agent)) {}

DeliveryResult Sender::Post(const std::string& url, std::string body, std::stop_token stop) {
  DeliveryResult r;
  auto origin = http::Origin::Parse(url);
  if (!origin.ok()) {
    r.reason = "client_error";
    r.error = origin.status().message();
    return r;
  }
  const std::string target = UrlTarget(url);
  const core::MonoTime start = clock_.Now();
  core::Nanos backoff = retry_.initial_backoff;
  while (true) {
    ++r.attempts;
    http::ClientRequest req;
    req.method = "POST";
    req.target = target;
    req.headers = {{"Content-Type", "application/json"}, {"User-Agent", user_agent_}};
    req.body = body;
    auto resp = client_.Fetch(*origin, std::move(req), retry_.attempt_timeout);
    bool retryable = true;
    if (resp.ok()) {
      const int status = resp->status;
      if (status >= 200 && status < 300) {
        r.ok = true;
        r.reason.clear();
        r.error.clear();
        return r;
      }
      r.error = "HTTP " + std::to_string(status) + ": " + resp->body.substr(0, 256);
      if (status >= 400 && status < 500) {
        r.reason = "client_error";
        retryable = status == 429;
      } else {
        r.reason = "server_error";
      }
    } else {
      r.error = resp.status().ToString();
      r.reason =
          resp.status().code() == core::StatusCode::kDeadlineExceeded ? "timeout" : "connection";
    }
    if (!retryable || r.attempts >= retry_.max_attempts) return r;
    if (clock_.Now() - start + backoff > retry_.max_total) return r;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, stop, backoff, [] { return false; });
    }
    if (stop.stop_requested()) return r;
    backoff = std::min(backoff * 2, retry_.max_backoff);
  }
}

DeliveryResult Sender::Deliver(const std::string& receiver, const Delivery& d,
                               std::stop_token stop) {
  const IntegrationKind kind = KindOf(d.config);
  const std::string_view kind_name = IntegrationKindName(kind);
  std::string url;
  std::string body;
  std::visit(
      [&](const auto& c) {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, WebhookConfig>) {
          url = c.url;
          body = RenderWebhookJson(d.message, c.max_alerts);
        } else if constexpr (std::is_same_v<T, SlackConfig>) {
          url = c.api_url;
          body = RenderSlackJson(d.message, c);
        } else {
          url = c.url;
          body = RenderPagerDutyJson(d.message, c);
        }
      },
      d.config);
  if (metrics_) metrics_->notifications->WithLabels({receiver, kind_name}).Inc();
  const core::MonoTime start = clock_.Now();
  DeliveryResult r = Post(url, std::move(body), stop);
  if (metrics_) {
    const double secs = std::chrono::duration<double>(clock_.Now() - start).count();
    metrics_->latency->WithLabels({kind_name}).Observe(secs);
    if (!r.ok) {
      metrics_->notifications_failed->WithLabels({receiver, kind_name, r.reason}).Inc();
    }
  }
  if (!r.ok) {
    logger_.Warn("notify: delivery failed", {{"receiver", receiver},
                                             {"integration", kind_name},
                                             {"reason", r.reason},
                                             {"attempts", std::to_string(r.attempts)},
                                             {"error", r.error}});
  }
  return r;
}

}  // namespace llmscope::notify
