#include "tsdb/promql_queryable.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <random>
#include <string>
#include <tuple>

#include "core/log.h"
#include "promql/engine.h"
#include "testing/fake_clock.h"

namespace llmscope::tsdb {
namespace {

// The same samples in the store and in the engine's reference MemoryStorage must give the
// same answer to every query: the adapter neither loses, reorders nor invents samples.
TEST(DbQueryable, AnswersExactlyAsTheReferenceStorage) {
  testing::FakeClock clock;
  core::NullLogger log;
  DbOptions o;  // in memory
  auto db = Db::Open(o, clock, log);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  promql::MemoryStorage reference;

  const int64_t now_ms = clock.UnixNanos() / 1'000'000;
  const int64_t start_ms = now_ms - 3'600'000;
  std::mt19937_64 rng(7);
  const char* models[] = {"gpt-4o", "claude-sonnet", "llama"};
  for (int m = 0; m < 3; ++m) {
    for (const char* code : {"200", "500"}) {
      Labels labels =
          MakeLabels({{"__name__", "llm_requests_total"}, {"model", models[m]}, {"code", code}});
      std::vector<promql::Label> pl;
      for (const auto& l : labels) pl.push_back({l.name, l.value});
      promql::Labels plabels = promql::Labels::FromSorted(pl);
      double v = 0;
      for (int64_t t = start_ms; t <= now_ms; t += 15'000) {
        v += static_cast<double>(rng() % 10);
        if (t == start_ms + 1'800'000) v = 3;  // a counter reset (a restart)
        double sample = (m == 2 && t > now_ms - 600'000) ? promql::StaleNaN() : v;
        ASSERT_TRUE((*db)->Append(labels, t, sample).ok());
        reference.Add(plabels, t, sample);
        if (m == 2 && t > now_ms - 600'000) break;  // the series went away
      }
    }
  }
  DbQueryable queryable(**db);
  // SelectEach hands over exactly Select's series, in its order, one at a time.
  {
    auto matchers = std::vector<promql::LabelMatcher>{
        *promql::LabelMatcher::Make(promql::MatchType::kEqual, "__name__", "llm_requests_total")};
    auto all = queryable.Select(matchers, now_ms - 1'200'000, now_ms);
    ASSERT_TRUE(all.ok());
    ASSERT_FALSE(all->empty());
    size_t i = 0;
    auto st = queryable.SelectEach(matchers, now_ms - 1'200'000, now_ms,
                                   [&](const promql::Labels& l, std::vector<promql::Point>* pts) {
                                     EXPECT_LT(i, all->size());
                                     if (i >= all->size()) return false;
                                     EXPECT_EQ(l, (*all)[i].labels);
                                     EXPECT_EQ(pts->size(), (*all)[i].points.size());
                                     for (size_t k = 0;
                                          k < pts->size() && k < (*all)[i].points.size(); ++k) {
                                       EXPECT_EQ((*pts)[k].t, (*all)[i].points[k].t);
                                       EXPECT_EQ(std::bit_cast<uint64_t>((*pts)[k].v),
                                                 std::bit_cast<uint64_t>((*all)[i].points[k].v));
                                     }
                                     ++i;
                                     return true;
                                   });
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(i, all->size());
  }
  promql::Engine engine;
  for (const char* q :
       {"llm_requests_total", "sum by (model) (rate(llm_requests_total[5m]))",
        "increase(llm_requests_total{code=~\"5..\"}[30m])",
        "llm_requests_total{model!=\"llama\"} offset 10m", "count(llm_requests_total)"}) {
    for (int64_t t : {now_ms, now_ms - 1'000'000}) {
      auto got = engine.InstantQuery(queryable, q, t);
      auto want = engine.InstantQuery(reference, q, t);
      ASSERT_TRUE(got.ok()) << q << ": " << got.status().ToString();
      ASSERT_TRUE(want.ok()) << q;
      // An instant vector's order is the storage's: compare them sorted by labels.
      auto gv = std::get<promql::Vector>(*got);
      auto wv = std::get<promql::Vector>(*want);
      auto by_labels = [](const promql::Sample& a, const promql::Sample& b) {
        return std::lexicographical_compare(
            a.labels.begin(), a.labels.end(), b.labels.begin(), b.labels.end(),
            [](const promql::Label& x, const promql::Label& y) {
              return std::tie(x.name, x.value) < std::tie(y.name, y.value);
            });
      };
      std::sort(gv.begin(), gv.end(), by_labels);
      std::sort(wv.begin(), wv.end(), by_labels);
      ASSERT_EQ(gv.size(), wv.size()) << q;
      for (size_t i = 0; i < gv.size(); ++i) {
        EXPECT_EQ(gv[i].labels, wv[i].labels) << q;
        EXPECT_EQ(gv[i].v, wv[i].v) << q;
      }
    }
    auto range_got = engine.RangeQuery(queryable, q, start_ms, now_ms, 60'000);
    auto range_want = engine.RangeQuery(reference, q, start_ms, now_ms, 60'000);
    ASSERT_TRUE(range_got.ok() && range_want.ok()) << q;
    const auto& gm = std::get<promql::Matrix>(*range_got);
    const auto& wm = std::get<promql::Matrix>(*range_want);
    ASSERT_EQ(gm.size(), wm.size()) << q;
    for (size_t i = 0; i < gm.size(); ++i) {
      ASSERT_EQ(gm[i].points.size(), wm[i].points.size()) << q;
      for (size_t k = 0; k < gm[i].points.size(); ++k) {
        EXPECT_EQ(gm[i].points[k].t, wm[i].points[k].t);
        EXPECT_EQ(gm[i].points[k].v, wm[i].points[k].v) << q;
      }
    }
  }
}

// SelectEach reuses one selection per thread: a query must see only its own series and
// samples, whatever the previous one selected, and a query made from inside fn (on the same
// thread) must not disturb the outer one.
TEST(DbQueryable, SelectEachAgainAndNestedAnswersEachQueryAlone) {
  testing::FakeClock clock;
  core::NullLogger log;
  auto db = Db::Open(DbOptions{}, clock, log);
  ASSERT_TRUE(db.ok());
  const int64_t t0 = clock.UnixNanos() / 1'000'000;
  for (int i = 0; i < 200; ++i) {
    for (int s = 0; s < 4; ++s) {
      ASSERT_TRUE(
          (*db)
              ->Append(MakeLabels({{"__name__", s < 3 ? "a" : "b"}, {"s", std::to_string(s)}}),
                       t0 + i * 15'000, i * 10 + s)
              .ok());
    }
  }
  DbQueryable q(**db);
  auto name = [](const char* n) {
    return std::vector<promql::LabelMatcher>{
        *promql::LabelMatcher::Make(promql::MatchType::kEqual, "__name__", n)};
  };
  // (series, first t, last t, count) per query.
  using Seen = std::vector<std::tuple<std::string, int64_t, int64_t, size_t>>;
  auto each = [&](const char* n, int64_t lo, int64_t hi, Seen* seen, bool nest) {
    return q.SelectEach(
        name(n), lo, hi, [&](const promql::Labels& l, std::vector<promql::Point>* p) {
          if (nest) {
            Seen inner;
            auto st = q.SelectEach(name("b"), t0, t0 + 60'000,
                                   [&](const promql::Labels& il, std::vector<promql::Point>* ip) {
                                     inner.emplace_back(std::string(il.Get("s")), ip->front().t,
                                                        ip->back().t, ip->size());
                                     return true;
                                   });
            EXPECT_TRUE(st.ok());
            EXPECT_EQ(inner, (Seen{{"3", t0, t0 + 60'000, 5}}));
          }
          seen->emplace_back(std::string(l.Get("s")), p->front().t, p->back().t, p->size());
          return true;
        });
  };
  Seen wide, narrow, nested;
  ASSERT_TRUE(each("a", t0, t0 + 199 * 15'000, &wide, false).ok());
  ASSERT_TRUE(each("b", t0 + 150'000, t0 + 180'000, &narrow, false).ok());
  ASSERT_TRUE(each("a", t0 + 15'000, t0 + 45'000, &nested, true).ok());
  EXPECT_EQ(wide, (Seen{{"0", t0, t0 + 199 * 15'000, 200},
                        {"1", t0, t0 + 199 * 15'000, 200},
                        {"2", t0, t0 + 199 * 15'000, 200}}));
  EXPECT_EQ(narrow, (Seen{{"3", t0 + 150'000, t0 + 180'000, 3}}));
  EXPECT_EQ(nested, (Seen{{"0", t0 + 15'000, t0 + 45'000, 3},
                          {"1", t0 + 15'000, t0 + 45'000, 3},
                          {"2", t0 + 15'000, t0 + 45'000, 3}}));
}

}  // namespace
}  // namespace llmscope::tsdb
