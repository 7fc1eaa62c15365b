#include "alerts/state_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "alerts/go_format.h"
#include "core/crc32c.h"
#include "core/json_string.h"

namespace llmscope::alerts {
namespace {

constexpr std::string_view kMagic = "llmscope-alert-state";

void Field(std::string& out, const char* name, int64_t v) {
  out += ",\"";
  out += name;
  out += "\":" + std::to_string(v);
}

template <typename Pairs>
void Object(std::string& out, const Pairs& pairs) {
  out += "{";
  bool first = true;
  for (const auto& p : pairs) {
    if (!first) out += ",";
    first = false;
    if constexpr (requires { p.name; }) {
      core::AppendJsonString(out, p.name);
      out += ":";
      core::AppendJsonString(out, p.value);
    } else {
      core::AppendJsonString(out, p.first);
      out += ":";
      core::AppendJsonString(out, p.second);
    }
  }
  out += "}";
}

core::Status Unavailable(const std::string& what, const std::string& path) {
  return core::Unavailable("alert state " + path + ": " + what + ": " + std::strerror(errno));
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::optional<std::map<std::string, std::string>> StringObject(const boost::json::value* v) {
  if (v == nullptr) return std::map<std::string, std::string>{};
  const auto* o = v->if_object();
  if (o == nullptr) return std::nullopt;
  std::map<std::string, std::string> out;
  for (const auto& kv : *o) {
    const auto* s = kv.value().if_string();
    if (s == nullptr) return std::nullopt;
    out[std::string(kv.key())] = std::string(*s);
  }
  return out;
}

}  // namespace

std::string EncodeAlertState(const std::vector<PersistedAlert>& alerts, int64_t saved_at_ms) {
  std::string p = "{\"saved_at_ms\":" + std::to_string(saved_at_ms) + ",\"alerts\":[";
  for (size_t i = 0; i < alerts.size(); ++i) {
    const PersistedAlert& x = alerts[i];
    const Alert& a = x.alert;
    if (i) p += ",";
    p += "\n{\"group\":";
    core::AppendJsonString(p, x.group);
    p += ",\"rule\":";
    core::AppendJsonString(p, x.rule);
    p += ",\"labels\":";
    Object(p, a.labels);
    p += ",\"annotations\":";
    Object(p, a.annotations);
    p += ",\"state\":";
    core::AppendJsonString(p, AlertStateName(a.state));
    p += ",\"value\":";
    core::AppendJsonString(p, GoFormatFloat(a.value, 'g', -1));
    Field(p, "active_at_ms", a.active_at_ms);
    Field(p, "fired_at_ms", a.fired_at_ms);
    Field(p, "resolved_at_ms", a.resolved_at_ms);
    Field(p, "last_sent_at_ms", a.last_sent_at_ms);
    Field(p, "valid_until_ms", a.valid_until_ms);
    Field(p, "keep_firing_since_ms", a.keep_firing_since_ms);
    p += "}";
  }
  p += "]}\n";
  char header[96];
  std::snprintf(header, sizeof header, "%s %d %08x %zu\n", kMagic.data(), kAlertStateVersion,
                core::Crc32c(p), p.size());
  return header + p;
}

core::Result<std::vector<PersistedAlert>> DecodeAlertState(std::string_view bytes) {
  const size_t nl = bytes.find('\n');
  if (nl == std::string_view::npos) return core::InvalidArgument("no header line");
  std::istringstream header{std::string(bytes.substr(0, nl))};
  std::string magic, crc_hex;
  int version = 0;
  size_t length = 0;
  header >> magic >> version >> crc_hex >> length;
  if (!header || magic != kMagic) return core::InvalidArgument("not an alert state file");
  if (version != kAlertStateVersion) {
    return core::InvalidArgument("unsupported version " + std::to_string(version));
  }
  std::string_view payload = bytes.substr(nl + 1);
  if (payload.size() != length) {
    return core::InvalidArgument("payload is " + std::to_string(payload.size()) +
                                 " bytes, header says " + std::to_string(length));
  }
  char* end = nullptr;
  const unsigned long crc = std::strtoul(crc_hex.c_str(), &end, 16);
  if (crc_hex.size() != 8 || *end != '\0' || crc != core::Crc32c(payload)) {
    return core::InvalidArgument("checksum mismatch");
  }
  boost::system::error_code ec;
  boost::json::value root = boost::json::parse(payload, ec);
  if (ec) return core::InvalidArgument("malformed JSON: " + ec.message());
  const auto* obj = root.if_object();
  const boost::json::value* list = obj ? obj->if_contains("alerts") : nullptr;
  if (list == nullptr || !list->is_array()) return core::InvalidArgument("no alerts list");
  std::vector<PersistedAlert> out;
  for (const auto& item : list->get_array()) {
    const auto* o = item.if_object();
    auto bad = [&](const std::string& why) {
      return core::InvalidArgument("alert entry " + std::to_string(out.size() + 1) + ": " + why);
    };
    if (o == nullptr) return bad("not an object");
    PersistedAlert p;
    auto str = [&](const char* k, std::string* dst) {
      const auto* v = o->if_contains(k);
      if (v == nullptr || !v->is_string()) return false;
      *dst = std::string(v->get_string());
      return true;
    };
    auto num = [&](const char* k, int64_t* dst) {
      const auto* v = o->if_contains(k);
      if (v == nullptr || !v->is_int64()) return false;
      *dst = v->get_int64();
      return true;
    };
    std::string state, value;
    if (!str("group", &p.group) || !str("rule", &p.rule) || !str("state", &state) ||
        !str("value", &value)) {
      return bad("missing group, rule, state or value");
    }
    Alert& a = p.alert;
    if (!num("active_at_ms", &a.active_at_ms) || !num("fired_at_ms", &a.fired_at_ms) ||
        !num("resolved_at_ms", &a.resolved_at_ms) || !num("last_sent_at_ms", &a.last_sent_at_ms) ||
        !num("valid_until_ms", &a.valid_until_ms) ||
        !num("keep_firing_since_ms", &a.keep_firing_since_ms)) {
      return bad("missing a time field");
    }
    if (state == "pending") {
      a.state = AlertState::kPending;
    } else if (state == "firing") {
      a.state = AlertState::kFiring;
    } else if (state == "inactive") {
      a.state = AlertState::kInactive;
    } else {
      return bad("unknown state " + state);
    }
    if (value == "NaN") {
      a.value = NAN;
    } else if (value == "+Inf" || value == "-Inf") {
      a.value = value[0] == '-' ? -INFINITY : INFINITY;
    } else {
      char* e = nullptr;
      a.value = std::strtod(value.c_str(), &e);
      if (value.empty() || *e != '\0') return bad("bad value " + value);
    }
    auto labels = StringObject(o->if_contains("labels"));
    auto annotations = StringObject(o->if_contains("annotations"));
    if (!labels || !annotations) return bad("labels and annotations must be string maps");
    std::vector<promql::Label> l;
    for (auto& [k, v] : *labels) l.push_back({k, v});
    a.labels = promql::Labels::FromVector(std::move(l));
    a.annotations = std::move(*annotations);
    out.push_back(std::move(p));
  }
  return out;
}

core::Status WriteAlertState(const std::string& path, const std::vector<PersistedAlert>& alerts,
                             int64_t saved_at_ms) {
  const std::string bytes = EncodeAlertState(alerts, saved_at_ms);
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Unavailable("create " + tmp, path);
  if (!WriteAll(fd, bytes) || ::fsync(fd) != 0) {
    core::Status s = Unavailable("write " + tmp, path);
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  }
  if (::close(fd) != 0) {
    core::Status s = Unavailable("close " + tmp, path);
    ::unlink(tmp.c_str());
    return s;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    core::Status s = Unavailable("rename", path);
    ::unlink(tmp.c_str());
    return s;
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return core::Status::Ok();
}

core::Result<std::vector<PersistedAlert>> ReadAlertState(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::NotFound("alert state " + path + " does not exist");
  std::stringstream ss;
  ss << in.rdbuf();
  auto r = DecodeAlertState(ss.str());
  if (!r.ok())
    return core::InvalidArgument("alert state " + path + " is corrupt: " + r.status().message());
  return r;
}

}  // namespace llmscope::alerts
