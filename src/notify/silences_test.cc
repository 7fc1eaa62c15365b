#include "notify/silences.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "testing/fake_clock.h"

namespace llmscope::notify {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;

int64_t Ns(core::Nanos d) { return d.count(); }

Matchers M(std::initializer_list<const char*> texts) {
  Matchers out;
  for (const char* t : texts) out.push_back(*ParseMatcher(t));
  return out;
}

class SilencesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("notify_silences_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path() const { return (dir_ / "silences").string(); }

  Silence Make(Matchers m, core::Nanos start_in, core::Nanos end_in) const {
    Silence s;
    s.matchers = std::move(m);
    s.starts_at_unix_nanos = clock_.UnixNanos() + Ns(start_in);
    s.ends_at_unix_nanos = clock_.UnixNanos() + Ns(end_in);
    s.created_by = "alice";
    s.comment = "maintenance";
    return s;
  }

  fs::path dir_;
  testing::FakeClock clock_;
  core::NullLogger logger_;
};

TEST_F(SilencesTest, CreateGetListAndStatesFollowTheClock) {
  Silences s({}, clock_, logger_);
  auto id = s.Set(Make(M({R"(alertname="HighLatency")"}), 1h, 2h));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->size(), 36u);
  EXPECT_EQ((*id)[14], '4');  // a version-4 UUID
  auto got = s.Get(*id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->id, *id);
  EXPECT_EQ(got->created_by, "alice");
  EXPECT_EQ(got->updated_at_unix_nanos, clock_.UnixNanos());
  const LabelSet labels = {{"alertname", "HighLatency"}, {"model", "gpt-4o"}};
  EXPECT_EQ(StateAt(*got, clock_.UnixNanos()), SilenceState::kPending);
  EXPECT_TRUE(s.Mutes(labels).empty());  // pending: not muting yet
  clock_.Advance(1h);
  EXPECT_EQ(StateAt(*s.Get(*id), clock_.UnixNanos()), SilenceState::kActive);
  EXPECT_EQ(s.Mutes(labels), std::vector<std::string>{*id});
  EXPECT_TRUE(s.Mutes({{"alertname", "Other"}}).empty());
  clock_.Advance(1h);
  EXPECT_EQ(StateAt(*s.Get(*id), clock_.UnixNanos()), SilenceState::kExpired);
  EXPECT_TRUE(s.Mutes(labels).empty());
  EXPECT_EQ(s.Get("nope").status().code(), core::StatusCode::kNotFound);
}

TEST_F(SilencesTest, RejectsInvalidSilences) {
  Silences s({}, clock_, logger_);
  EXPECT_EQ(s.Set(Make({}, 0s, 1h)).status().code(), core::StatusCode::kInvalidArgument);
  // Would match every alert.
  auto all = s.Set(Make(M({"a=~\".*\"", "b!=x"}), 0s, 1h));
  ASSERT_FALSE(all.ok());
  EXPECT_NE(all.status().message().find("empty string"), std::string::npos);
  EXPECT_FALSE(s.Set(Make(M({"a=b"}), 0s, -1s)).ok());  // already over
  EXPECT_FALSE(s.Set(Make(M({"a=b"}), 2h, 1h)).ok());   // ends before it starts
  Silence unknown = Make(M({"a=b"}), 0s, 1h);
  unknown.id = "does-not-exist";
  EXPECT_EQ(s.Set(unknown).status().code(), core::StatusCode::kNotFound);
  EXPECT_TRUE(s.List().empty());
}

TEST_F(SilencesTest, StartInThePastBecomesNow) {
  Silences s({}, clock_, logger_);
  auto id = s.Set(Make(M({"a=b"}), -1h, 1h));
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(s.Get(*id)->starts_at_unix_nanos, clock_.UnixNanos());
}

TEST_F(SilencesTest, UpdateInPlaceOrReplaceAsAlertmanagerDoes) {
  Silences s({}, clock_, logger_);
  const std::string id = *s.Set(Make(M({"a=b"}), 0s, 1h));
  clock_.Advance(10min);
  // Same matchers, longer end: updated in place, same id, start kept.
  Silence longer = Make(M({"a=b"}), 0s, 5h);
  longer.id = id;
  longer.comment = "longer";
  auto same = s.Set(longer);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, id);
  EXPECT_EQ(s.Get(id)->comment, "longer");
  EXPECT_EQ(s.Get(id)->starts_at_unix_nanos, clock_.UnixNanos() - Ns(10min));
  EXPECT_EQ(s.List().size(), 1u);
  // Other matchers: the old one expires now and a new one takes over.
  Silence changed = Make(M({"a=c"}), 0s, 1h);
  changed.id = id;
  auto other = s.Set(changed);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, id);
  EXPECT_EQ(StateAt(*s.Get(id), clock_.UnixNanos()), SilenceState::kExpired);
  EXPECT_EQ(s.Mutes({{"a", "c"}}), std::vector<std::string>{*other});
  EXPECT_TRUE(s.Mutes({{"a", "b"}}).empty());
}

TEST_F(SilencesTest, ExpireEndsAnActiveOrPendingSilence) {
  Silences s({}, clock_, logger_);
  const std::string active = *s.Set(Make(M({"a=b"}), 0s, 1h));
  const std::string pending = *s.Set(Make(M({"a=c"}), 1h, 2h));
  ASSERT_TRUE(s.Expire(active).ok());
  ASSERT_TRUE(s.Expire(pending).ok());
  EXPECT_TRUE(s.Mutes({{"a", "b"}}).empty());
  EXPECT_EQ(StateAt(*s.Get(pending), clock_.UnixNanos()), SilenceState::kExpired);
  EXPECT_LE(s.Get(pending)->starts_at_unix_nanos, s.Get(pending)->ends_at_unix_nanos);
  EXPECT_EQ(s.Expire(active).code(), core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.Expire("nope").code(), core::StatusCode::kNotFound);
}

TEST_F(SilencesTest, ListOrdersActivePendingExpired) {
  Silences s({}, clock_, logger_);
  const std::string expired = *s.Set(Make(M({"a=1"}), 0s, 1h));
  ASSERT_TRUE(s.Expire(expired).ok());
  const std::string pending = *s.Set(Make(M({"a=2"}), 1h, 2h));
  const std::string active_late = *s.Set(Make(M({"a=3"}), 0s, 3h));
  const std::string active_soon = *s.Set(Make(M({"a=4"}), 0s, 1h));
  std::vector<std::string> ids;
  for (const Silence& x : s.List()) ids.push_back(x.id);
  EXPECT_EQ(ids, (std::vector<std::string>{active_soon, active_late, pending, expired}));
}

TEST_F(SilencesTest, ExpiredSilencesAreKeptFiveDaysThenCollected) {
  Silences s({}, clock_, logger_);
  const std::string id = *s.Set(Make(M({"a=b"}), 0s, 1h));
  clock_.Advance(1h);
  EXPECT_EQ(s.GarbageCollect(), 0u);
  clock_.Advance(120h - 1s);
  EXPECT_EQ(s.GarbageCollect(), 0u);  // still listed
  EXPECT_TRUE(s.Get(id).ok());
  clock_.Advance(2s);
  EXPECT_EQ(s.GarbageCollect(), 1u);
  EXPECT_FALSE(s.Get(id).ok());
}

TEST_F(SilencesTest, PersistsAndRestores) {
  std::string id1, id2;
  {
    Silences s({Path()}, clock_, logger_);
    ASSERT_TRUE(s.Load().ok());  // no file yet: nothing to restore, no error
    id1 = *s.Set(Make(M({R"(alertname=~"High.*")", "env!=dev"}), 0s, 1h));
    id2 = *s.Set(Make(M({"a=b"}), 1h, 2h));
    ASSERT_TRUE(s.Expire(id2).ok());
    EXPECT_FALSE(fs::exists(Path() + ".tmp"));
  }
  Silences restored({Path()}, clock_, logger_);
  ASSERT_TRUE(restored.Load().ok());
  auto a = restored.Get(id1);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->matchers, M({R"(alertname=~"High.*")", "env!=dev"}));
  EXPECT_EQ(a->ends_at_unix_nanos, clock_.UnixNanos() + Ns(1h));
  EXPECT_EQ(a->comment, "maintenance");
  EXPECT_EQ(restored.Mutes({{"alertname", "HighLatency"}}), std::vector<std::string>{id1});
  EXPECT_EQ(StateAt(*restored.Get(id2), clock_.UnixNanos()), SilenceState::kExpired);
  // The regex works after a restore (it is compiled again).
  EXPECT_TRUE(restored.Mutes({{"alertname", "Low"}}).empty());
}

TEST_F(SilencesTest, CorruptFileIsReportedMovedAsideAndNotFatal) {
  {
    Silences s({Path()}, clock_, logger_);
    ASSERT_TRUE(s.Set(Make(M({"a=b"}), 0s, 1h)).ok());
  }
  std::string data;
  {
    std::ifstream in(Path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    data = ss.str();
  }
  data[data.size() - 5] ^= 0x20;  // flip a bit in the payload
  {
    std::ofstream out(Path(), std::ios::binary | std::ios::trunc);
    out << data;
  }
  Silences s({Path()}, clock_, logger_);
  core::Status st = s.Load();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("checksum mismatch"), std::string::npos) << st.message();
  EXPECT_TRUE(fs::exists(Path() + ".corrupt"));
  EXPECT_TRUE(s.List().empty());
  // Still usable, and the next change writes a good file.
  const std::string id = *s.Set(Make(M({"x=y"}), 0s, 1h));
  Silences again({Path()}, clock_, logger_);
  ASSERT_TRUE(again.Load().ok());
  EXPECT_TRUE(again.Get(id).ok());
}

TEST_F(SilencesTest, TruncatedOrForeignFilesAreCorrupt) {
  for (const char* content : {"", "garbage\n[]", "llmscope-silences 9 00000000 2\n[]",
                              "llmscope-silences 1 00000000 5\n[]"}) {
    {
      std::ofstream out(Path(), std::ios::binary | std::ios::trunc);
      out << content;
    }
    Silences s({Path()}, clock_, logger_);
    EXPECT_EQ(s.Load().code(), core::StatusCode::kInternal) << content;
  }
}

TEST_F(SilencesTest, PersistFailureIsCountedAndRetried) {
  const std::string missing_dir = (dir_ / "absent" / "silences").string();
  Silences s({missing_dir}, clock_, logger_);
  auto id = s.Set(Make(M({"a=b"}), 0s, 1h));
  ASSERT_TRUE(id.ok());  // in effect in memory
  EXPECT_EQ(s.persist_failures(), 1u);
  EXPECT_EQ(s.Mutes({{"a", "b"}}).size(), 1u);
  fs::create_directories(dir_ / "absent");
  s.GarbageCollect();  // retries the write
  EXPECT_EQ(s.persist_failures(), 1u);
  EXPECT_TRUE(fs::exists(missing_dir));
}

TEST_F(SilencesTest, RendersTheAlertmanagerV2Shape) {
  Silences s({}, clock_, logger_);
  const std::string id = *s.Set(Make(M({R"(team=~"a|b")", "env!=dev"}), 0s, 1h));
  const Silence got = *s.Get(id);
  json::value v = json::parse(RenderSilenceJson(got, clock_.UnixNanos()));
  json::value want = json::parse(R"({
    "id": ")" + id + R"(",
    "status": {"state": "active"},
    "updatedAt": "2023-11-14T22:13:20Z",
    "comment": "maintenance",
    "createdBy": "alice",
    "endsAt": "2023-11-14T23:13:20Z",
    "matchers": [{"isEqual": true, "isRegex": true, "name": "team", "value": "a|b"},
                 {"isEqual": false, "isRegex": false, "name": "env", "value": "dev"}],
    "startsAt": "2023-11-14T22:13:20Z"})");
  EXPECT_EQ(v, want) << json::serialize(v);
  json::value list = json::parse(RenderSilencesJson(s.List(), clock_.UnixNanos() + Ns(2h)));
  ASSERT_TRUE(list.is_array());
  EXPECT_EQ(list.as_array().size(), 1u);
  EXPECT_EQ(list.at(0).at("status").at("state"), "expired");
  EXPECT_EQ(RenderSilenceIdJson("abc"), R"({"silenceID":"abc"})");
}

TEST_F(SilencesTest, ParsesPostableSilences) {
  auto s = ParsePostableSilenceJson(R"({
    "matchers": [{"name": "alertname", "value": "High.*", "isRegex": true},
                 {"name": "env", "value": "dev", "isRegex": false, "isEqual": false}],
    "startsAt": "2023-11-14T22:13:20Z", "endsAt": "2023-11-14T23:13:20.5Z",
    "createdBy": "bob", "comment": "deploy"})");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->id.empty());
  ASSERT_EQ(s->matchers.size(), 2u);
  EXPECT_EQ(s->matchers[0].type(), Matcher::Type::kRegex);  // isEqual defaults to true
  EXPECT_EQ(s->matchers[1].type(), Matcher::Type::kNotEqual);
  EXPECT_EQ(s->starts_at_unix_nanos, 1'700'000'000'000'000'000);
  EXPECT_EQ(s->ends_at_unix_nanos, 1'700'003'600'500'000'000);
  EXPECT_EQ(s->created_by, "bob");
  EXPECT_EQ(s->comment, "deploy");

  struct Case {
    const char* body;
    const char* expected;
  };
  const Case bad[] = {
      {"{", "not valid JSON"},
      {"[]", "must be a JSON object"},
      {R"({"startsAt":"2023-11-14T22:13:20Z","endsAt":"2023-11-14T22:13:20Z",
           "createdBy":"a","comment":"c"})",
       "matchers: is required"},
      {R"({"matchers":[{"name":"a","value":"b"}],"startsAt":"x","endsAt":"x",
           "createdBy":"a","comment":"c"})",
       "matchers[0].isRegex: must be a boolean"},
      {R"({"matchers":[{"name":"a","value":"(","isRegex":true}],"startsAt":"x","endsAt":"x",
           "createdBy":"a","comment":"c"})",
       "matchers[0]: invalid regular expression"},
      {R"({"matchers":[{"name":"a","value":"b","isRegex":false}],"startsAt":"soon",
           "endsAt":"2023-11-14T22:13:20Z","createdBy":"a","comment":"c"})",
       "startsAt: invalid RFC 3339"},
      {R"({"matchers":[{"name":"a","value":"b","isRegex":false}],
           "startsAt":"2023-11-14T22:13:20Z","endsAt":"2023-11-14T22:13:20Z","comment":"c"})",
       "createdBy: is required"},
      {R"({"matchers":[],"startsAt":"2023-11-14T22:13:20Z","endsAt":"2023-11-14T22:13:20Z",
           "createdBy":"a","comment":"c","bogus":1})",
       "bogus: unknown field"},
  };
  for (const Case& c : bad) {
    auto r = ParsePostableSilenceJson(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_NE(r.status().message().find(c.expected), std::string::npos)
        << c.body << " => " << r.status().message();
  }
}

}  // namespace
}  // namespace llmscope::notify
