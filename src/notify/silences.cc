#include "notify/silences.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/crc32c.h"

namespace llmscope::notify {

namespace json = boost::json;

namespace {

constexpr std::string_view kMagic = "llmscope-silences";
constexpr int kVersion = 1;

Matcher::Type TypeOf(bool is_regex, bool is_equal) {
  if (is_regex) return is_equal ? Matcher::Type::kRegex : Matcher::Type::kNotRegex;
  return is_equal ? Matcher::Type::kEqual : Matcher::Type::kNotEqual;
}

json::array MatchersJson(const Matchers& ms) {
  json::array out;
  for (const Matcher& m : ms) {
    json::object o;
    o["isEqual"] = m.is_equal();
    o["isRegex"] = m.is_regex();
    o["name"] = m.name();
    o["value"] = m.value();
    out.push_back(std::move(o));
  }
  return out;
}

// Reads a matchers array ([{"name","value","isRegex","isEqual"}]); `path` prefixes errors.
core::Result<Matchers> MatchersFromJson(const json::value& v, const std::string& path) {
  if (!v.is_array()) return core::InvalidArgument(path + ": must be an array");
  Matchers out;
  const json::array& a = v.as_array();
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string p = path + "[" + std::to_string(i) + "]";
    if (!a[i].is_object()) return core::InvalidArgument(p + ": must be an object");
    const json::object& o = a[i].as_object();
    const json::value* name = o.if_contains("name");
    const json::value* value = o.if_contains("value");
    const json::value* is_regex = o.if_contains("isRegex");
    const json::value* is_equal = o.if_contains("isEqual");
    if (!name || !name->is_string()) return core::InvalidArgument(p + ".name: must be a string");
    if (!value || !value->is_string()) {
      return core::InvalidArgument(p + ".value: must be a string");
    }
    if (!is_regex || !is_regex->is_bool()) {
      return core::InvalidArgument(p + ".isRegex: must be a boolean");
    }
    if (is_equal && !is_equal->is_bool()) {
      return core::InvalidArgument(p + ".isEqual: must be a boolean");
    }
    auto m = Matcher::Make(TypeOf(is_regex->as_bool(), is_equal ? is_equal->as_bool() : true),
                           std::string(name->as_string()), std::string(value->as_string()));
    if (!m.ok()) return core::InvalidArgument(p + ": " + m.status().message());
    out.push_back(std::move(m).value());
  }
  return out;
}

core::Status Corrupt(const std::string& path, const std::string& why) {
  return core::Internal("silences file " + path + " is corrupt (" + why + "); it was moved to " +
                        path + ".corrupt and no silences were restored");
}

core::Status IoError(const std::string& what, const std::string& path, int err) {
  return core::Unavailable(what + " " + path + ": " + std::strerror(err));
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

int64_t Int(const json::object& o, const char* key, bool& ok) {
  const json::value* v = o.if_contains(key);
  if (!v || !v->is_int64()) {
    ok = false;
    return 0;
  }
  return v->as_int64();
}

std::string Str(const json::object& o, const char* key, bool& ok) {
  const json::value* v = o.if_contains(key);
  if (!v || !v->is_string()) {
    ok = false;
    return "";
  }
  return std::string(v->as_string());
}

}  // namespace

std::string_view SilenceStateName(SilenceState s) {
  switch (s) {
    case SilenceState::kPending:
      return "pending";
    case SilenceState::kActive:
      return "active";
    case SilenceState::kExpired:
      return "expired";
  }
  return "expired";
}

SilenceState StateAt(const Silence& s, int64_t now) {
  if (s.ends_at_unix_nanos <= now) return SilenceState::kExpired;
  if (now < s.starts_at_unix_nanos) return SilenceState::kPending;
  return SilenceState::kActive;
}

Silences::Silences(SilencesOptions options, const core::Clock& clock, core::Logger& logger)
    : options_(std::move(options)), clock_(clock), logger_(logger), rng_(std::random_device{}()) {}

std::string Silences::NewId() {
  // A version-4 UUID: 122 random bits.
  const uint64_t hi = (rng_() & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  const uint64_t lo = (rng_() & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%08llx-%04llx-%04llx-%04llx-%012llx",
                static_cast<unsigned long long>(hi >> 32),
                static_cast<unsigned long long>((hi >> 16) & 0xffff),
                static_cast<unsigned long long>(hi & 0xffff),
                static_cast<unsigned long long>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf;
}

core::Result<std::string> Silences::Set(Silence s) {
  const int64_t now = clock_.UnixNanos();
  if (s.matchers.empty()) return core::InvalidArgument("matchers: at least one is required");
  if (std::all_of(s.matchers.begin(), s.matchers.end(),
                  [](const Matcher& m) { return m.MatchesValue(""); })) {
    return core::InvalidArgument(
        "matchers: at least one matcher must not match the empty string (the silence would "
        "match every alert)");
  }
  if (s.starts_at_unix_nanos < now) s.starts_at_unix_nanos = now;
  if (s.ends_at_unix_nanos <= now) return core::InvalidArgument("endsAt: must be in the future");
  if (s.ends_at_unix_nanos <= s.starts_at_unix_nanos) {
    return core::InvalidArgument("endsAt: must be after startsAt");
  }
  std::lock_guard lock(mu_);
  s.updated_at_unix_nanos = now;
  if (!s.id.empty()) {
    auto it = silences_.find(s.id);
    if (it == silences_.end()) return core::NotFound("silence " + s.id + " not found");
    Silence& old = it->second;
    const SilenceState state = StateAt(old, now);
    if (state != SilenceState::kExpired && old.matchers == s.matchers) {
      // An active silence keeps its start: it has been muting since then.
      if (state == SilenceState::kActive) s.starts_at_unix_nanos = old.starts_at_unix_nanos;
      old = std::move(s);
      PersistOrRecordLocked();
      return old.id;
    }
    if (state != SilenceState::kExpired) {
      old.ends_at_unix_nanos = now;
      if (old.starts_at_unix_nanos > now) old.starts_at_unix_nanos = now;
      old.updated_at_unix_nanos = now;
    }
  }
  s.id = NewId();
  const std::string id = s.id;
  silences_[id] = std::move(s);
  PersistOrRecordLocked();
  return id;
}

core::Status Silences::Expire(const std::string& id) {
  const int64_t now = clock_.UnixNanos();
  std::lock_guard lock(mu_);
  auto it = silences_.find(id);
  if (it == silences_.end()) return core::NotFound("silence " + id + " not found");
  Silence& s = it->second;
  if (StateAt(s, now) == SilenceState::kExpired) {
    return core::FailedPrecondition("silence " + id + " is already expired");
  }
  s.ends_at_unix_nanos = now;
  if (s.starts_at_unix_nanos > now) s.starts_at_unix_nanos = now;
  s.updated_at_unix_nanos = now;
  PersistOrRecordLocked();
  return core::Status::Ok();
}

core::Result<Silence> Silences::Get(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = silences_.find(id);
  if (it == silences_.end()) return core::NotFound("silence " + id + " not found");
  return it->second;
}

std::vector<Silence> Silences::List() const {
  const int64_t now = clock_.UnixNanos();
  std::vector<Silence> out;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, s] : silences_) out.push_back(s);
  }
  auto rank = [now](const Silence& s) {
    switch (StateAt(s, now)) {
      case SilenceState::kActive:
        return 0;
      case SilenceState::kPending:
        return 1;
      case SilenceState::kExpired:
        return 2;
    }
    return 2;
  };
  std::stable_sort(out.begin(), out.end(), [&](const Silence& a, const Silence& b) {
    const int ra = rank(a), rb = rank(b);
    if (ra != rb) return ra < rb;
    if (ra == 0) return a.ends_at_unix_nanos < b.ends_at_unix_nanos;
    if (ra == 1) return a.starts_at_unix_nanos < b.starts_at_unix_nanos;
    return a.ends_at_unix_nanos > b.ends_at_unix_nanos;
  });
  return out;
}

std::vector<std::string> Silences::Mutes(const LabelSet& labels) const {
  const int64_t now = clock_.UnixNanos();
  std::vector<std::string> out;
  std::lock_guard lock(mu_);
  for (const auto& [id, s] : silences_) {  // by id: the result is sorted
    if (StateAt(s, now) == SilenceState::kActive && MatchesAll(s.matchers, labels)) {
      out.push_back(id);
    }
  }
  return out;
}

size_t Silences::GarbageCollect() {
  const int64_t cutoff = clock_.UnixNanos() - options_.retention.count();
  std::lock_guard lock(mu_);
  const size_t removed = std::erase_if(
      silences_, [&](const auto& kv) { return kv.second.ends_at_unix_nanos < cutoff; });
  if (removed > 0 || dirty_) PersistOrRecordLocked();
  return removed;
}

void Silences::PersistOrRecordLocked() {
  if (options_.path.empty()) return;
  core::Status s = PersistLocked();
  dirty_ = !s.ok();
  if (!s.ok()) {
    persist_failures_.fetch_add(1);
    logger_.Error("notify: persisting silences failed; retried at the next maintenance",
                  {{"error", s.message()}});
  }
}

core::Status Silences::PersistLocked() {
  json::array arr;
  for (const auto& [id, s] : silences_) {
    json::object o;
    o["id"] = s.id;
    o["matchers"] = MatchersJson(s.matchers);
    o["startsAt"] = s.starts_at_unix_nanos;
    o["endsAt"] = s.ends_at_unix_nanos;
    o["updatedAt"] = s.updated_at_unix_nanos;
    o["createdBy"] = s.created_by;
    o["comment"] = s.comment;
    arr.push_back(std::move(o));
  }
  const std::string payload = json::serialize(arr);
  char header[96];
  std::snprintf(header, sizeof(header), "%s %d %08x %zu\n", std::string(kMagic).c_str(), kVersion,
                core::Crc32c(payload), payload.size());
  const std::string& path = options_.path;
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("open", tmp, errno);
  if (!WriteAll(fd, header) || !WriteAll(fd, payload) || ::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return IoError("write", tmp, err);
  }
  if (::close(fd) != 0) return IoError("close", tmp, errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return IoError("rename", tmp, errno);
  // The rename is durable only once the directory is synced.
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    const int rc = ::fsync(dfd);
    ::close(dfd);
    if (rc != 0) return IoError("sync directory", dir, errno);
  }
  return core::Status::Ok();
}

core::Status Silences::Load() {
  if (options_.path.empty()) return core::Status::Ok();
  std::ifstream in(options_.path, std::ios::binary);
  if (!in) {
    if (!std::filesystem::exists(options_.path)) return core::Status::Ok();
    return core::Unavailable("cannot read silences file " + options_.path);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::lock_guard lock(mu_);
  core::Status s = Decode(ss.str());
  if (!s.ok()) {
    silences_.clear();
    std::error_code ec;
    std::filesystem::rename(options_.path, options_.path + ".corrupt", ec);
    logger_.Error("notify: silences file is corrupt; starting with none", {{"error", s.message()}});
  }
  return s;
}

core::Status Silences::Decode(const std::string& data) {
  const std::string& path = options_.path;
  const size_t nl = data.find('\n');
  if (nl == std::string::npos) return Corrupt(path, "no header line");
  const std::string header = data.substr(0, nl);
  char magic[32] = {};
  int version = 0;
  unsigned crc = 0;
  size_t length = 0;
  if (std::sscanf(header.c_str(), "%31s %d %8x %zu", magic, &version, &crc, &length) != 4 ||
      kMagic != magic) {
    return Corrupt(path, "bad header");
  }
  if (version != kVersion) return Corrupt(path, "unsupported version " + std::to_string(version));
  const std::string_view payload = std::string_view(data).substr(nl + 1);
  if (payload.size() != length) {
    return Corrupt(path, "payload is " + std::to_string(payload.size()) + " bytes, header says " +
                             std::to_string(length));
  }
  if (core::Crc32c(payload) != crc) return Corrupt(path, "checksum mismatch");
  std::error_code ec;
  json::value v = json::parse(payload, ec);
  if (ec || !v.is_array()) return Corrupt(path, "payload is not a JSON array");
  std::map<std::string, Silence> loaded;
  for (const json::value& e : v.as_array()) {
    if (!e.is_object()) return Corrupt(path, "an entry is not an object");
    const json::object& o = e.as_object();
    bool ok = true;
    Silence s;
    s.id = Str(o, "id", ok);
    s.starts_at_unix_nanos = Int(o, "startsAt", ok);
    s.ends_at_unix_nanos = Int(o, "endsAt", ok);
    s.updated_at_unix_nanos = Int(o, "updatedAt", ok);
    s.created_by = Str(o, "createdBy", ok);
    s.comment = Str(o, "comment", ok);
    const json::value* ms = o.if_contains("matchers");
    if (!ok || !ms || s.id.empty()) return Corrupt(path, "an entry lacks a field");
    auto matchers = MatchersFromJson(*ms, "matchers");
    if (!matchers.ok()) return Corrupt(path, matchers.status().message());
    s.matchers = std::move(matchers).value();
    loaded[s.id] = std::move(s);
  }
  silences_ = std::move(loaded);
  return core::Status::Ok();
}

namespace {

json::object SilenceObject(const Silence& s, int64_t now) {
  json::object o;
  o["id"] = s.id;
  o["status"] = json::object{{"state", SilenceStateName(StateAt(s, now))}};
  o["updatedAt"] = FormatRfc3339(s.updated_at_unix_nanos);
  o["comment"] = s.comment;
  o["createdBy"] = s.created_by;
  o["endsAt"] = FormatRfc3339(s.ends_at_unix_nanos);
  o["matchers"] = MatchersJson(s.matchers);
  o["startsAt"] = FormatRfc3339(s.starts_at_unix_nanos);
  return o;
}

}  // namespace

std::string RenderSilenceJson(const Silence& s, int64_t now) {
  return json::serialize(SilenceObject(s, now));
}

std::string RenderSilencesJson(const std::vector<Silence>& silences, int64_t now) {
  json::array a;
  for (const Silence& s : silences) a.push_back(SilenceObject(s, now));
  return json::serialize(a);
}

std::string RenderSilenceIdJson(const std::string& id) {
  return json::serialize(json::object{{"silenceID", id}});
}

core::Result<Silence> ParsePostableSilenceJson(std::string_view body) {
  std::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return core::InvalidArgument("body: not valid JSON: " + ec.message());
  if (!v.is_object()) return core::InvalidArgument("body: must be a JSON object");
  const json::object& o = v.as_object();
  static const char* const kKeys[] = {"id",     "matchers",  "startsAt",
                                      "endsAt", "createdBy", "comment"};
  for (const auto& kv : o) {
    if (std::find_if(std::begin(kKeys), std::end(kKeys),
                     [&](const char* k) { return kv.key() == k; }) == std::end(kKeys)) {
      return core::InvalidArgument(std::string(kv.key()) + ": unknown field");
    }
  }
  Silence s;
  if (const json::value* id = o.if_contains("id"); id && !id->is_null()) {
    if (!id->is_string()) return core::InvalidArgument("id: must be a string");
    s.id = std::string(id->as_string());
  }
  const json::value* ms = o.if_contains("matchers");
  if (!ms) return core::InvalidArgument("matchers: is required");
  auto matchers = MatchersFromJson(*ms, "matchers");
  if (!matchers.ok()) return matchers.status();
  s.matchers = std::move(matchers).value();
  for (const char* key : {"startsAt", "endsAt"}) {
    const json::value* t = o.if_contains(key);
    if (!t || !t->is_string()) {
      return core::InvalidArgument(std::string(key) + ": is required (an RFC 3339 time)");
    }
    auto ns = ParseRfc3339(std::string_view(t->as_string()));
    if (!ns.ok()) return core::InvalidArgument(std::string(key) + ": " + ns.status().message());
    (std::string_view(key) == "startsAt" ? s.starts_at_unix_nanos : s.ends_at_unix_nanos) = *ns;
  }
  for (const char* key : {"createdBy", "comment"}) {
    const json::value* t = o.if_contains(key);
    if (!t || !t->is_string() || t->as_string().empty()) {
      return core::InvalidArgument(std::string(key) + ": is required (a non-empty string)");
    }
    (std::string_view(key) == "createdBy" ? s.created_by : s.comment) = std::string(t->as_string());
  }
  return s;
}

}  // namespace llmscope::notify
