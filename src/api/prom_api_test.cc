#include "api/prom_api.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace llmscope::api {
namespace {

Params P(std::string_view q) {
  auto p = Params::Parse(q, {"match[]"});
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? *p : Params();
}

class PromQueriesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Two counters of one job, sampled every 15 s from t = 0 to 300 s.
    for (int64_t t = 0; t <= 300'000; t += 15'000) {
      storage_.Add({{"__name__", "req_total"}, {"job", "a"}, {"code", "200"}}, t, t / 1000.0);
      storage_.Add({{"__name__", "req_total"}, {"job", "a"}, {"code", "500"}}, t, t / 10000.0);
    }
    storage_.Add({{"__name__", "up"}, {"job", "a"}}, 300'000, 1);
  }
  promql::MemoryStorage storage_;
  promql::Engine engine_;
  PromQueries q_{engine_, storage_};
};

TEST_F(PromQueriesTest, InstantQueryAnswersInPrometheusShape) {
  auto r = q_.Query(P("query=sum+by(code)(req_total)&time=300"), 0);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"status":"success","data":{"resultType":"vector","result":[)"
                    R"({"metric":{"code":"200"},"value":[300,"300"]},)"
                    R"({"metric":{"code":"500"},"value":[300,"30"]}]}})");
  // No time: the caller's now. A scalar.
  r = q_.Query(P("query=1%2F3"), 1'500);
  EXPECT_EQ(
      r.body,
      R"({"status":"success","data":{"resultType":"scalar","result":[1.5,"0.3333333333333333"]}})");
  // A range vector.
  r = q_.Query(P("query=up[1m]&time=2026-11-23T00:00:00Z"), 0);
  EXPECT_EQ(r.body, R"({"status":"success","data":{"resultType":"matrix","result":[]}})");
}

TEST_F(PromQueriesTest, ErrorsNameTheParameterAndTheKind) {
  auto r = q_.Query(P("query=sum(req_total"), 0);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find(R"("errorType":"bad_data")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"(invalid parameter \"query\": 1:)"), std::string::npos) << r.body;
  r = q_.Query(P(""), 0);
  EXPECT_EQ(r.status, 400) << "no query is a parse error";
  r = q_.Query(P("query=up&time=yesterday"), 0);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find(R"(invalid parameter \"time\": cannot parse \"yesterday\")"),
            std::string::npos)
      << r.body;
  // Two series end up with one label set: an evaluation error.
  r = q_.Query(P("query=label_replace(req_total,\"code\",\"x\",\"code\",\".*\")&time=300"), 0);
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_NE(r.body.find(R"("errorType":"execution")"), std::string::npos) << r.body;
}

TEST_F(PromQueriesTest, RangeQueryValidatesStepAndRange) {
  auto r = q_.QueryRange(P("query=req_total{code=\"200\"}%20*%202&start=60&end=120&step=30s"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(
      r.body,
      R"({"status":"success","data":{"resultType":"matrix","result":[)"
      R"({"metric":{"code":"200","job":"a"},"values":[[60,"120"],[90,"180"],[120,"240"]]}]}})");
  EXPECT_EQ(q_.QueryRange(P("query=up&start=60&end=120")).status, 400) << "step is required";
  EXPECT_NE(q_.QueryRange(P("query=up&start=60&end=120&step=0")).body.find("zero or negative"),
            std::string::npos);
  EXPECT_NE(q_.QueryRange(P("query=up&start=120&end=60&step=1"))
                .body.find("end timestamp must not be before start time"),
            std::string::npos);
  auto many = q_.QueryRange(P("query=up&start=0&end=100000&step=1"));
  EXPECT_EQ(many.status, 400);
  EXPECT_NE(many.body.find("exceeded maximum resolution of 11000 points"), std::string::npos);
  EXPECT_EQ(q_.QueryRange(P("query=up&end=60&step=1")).status, 400) << "start is required";
}

TEST_F(PromQueriesTest, SeriesLabelsAndValuesFollowMatchers) {
  auto r =
      q_.Series(P("match[]=req_total{code=\"500\"}&match[]=up&match[]=req_total{code=\"500\"}"));
  EXPECT_EQ(r.body,
            R"({"status":"success","data":[{"__name__":"req_total","code":"500","job":"a"},)"
            R"({"__name__":"up","job":"a"}]})");
  EXPECT_EQ(q_.Series(P("")).body,
            R"({"status":"error","errorType":"bad_data","error":"no match[] parameter provided"})");
  EXPECT_EQ(q_.Series(P("match[]=sum(up)")).status, 400) << "only selectors";
  // Time range: up has its only sample at 300 s.
  EXPECT_EQ(q_.Series(P("match[]=up&start=0&end=100")).body, R"({"status":"success","data":[]})");

  EXPECT_EQ(q_.LabelNames(P("")).body, R"({"status":"success","data":["__name__","code","job"]})");
  EXPECT_EQ(q_.LabelNames(P("match[]=up")).body,
            R"({"status":"success","data":["__name__","job"]})");
  EXPECT_EQ(q_.LabelValues("__name__", P("")).body,
            R"({"status":"success","data":["req_total","up"]})");
  EXPECT_EQ(q_.LabelValues("code", P("match[]=req_total")).body,
            R"({"status":"success","data":["200","500"]})");
  EXPECT_EQ(q_.LabelValues("code", P("match[]=up")).body, R"({"status":"success","data":[]})");
}

TEST(RenderPromData, FormatsTimesAndValuesAsPrometheus) {
  promql::Vector v;
  v.push_back({promql::Labels{{"a", "x\"y"}}, 1'500, 0.1});
  v.push_back({promql::Labels{}, 1'001, 1e21});
  v.push_back({promql::Labels{}, 1'010, std::numeric_limits<double>::infinity()});
  v.push_back({promql::Labels{}, -1'500, std::nan("")});
  v.push_back({promql::Labels{}, 2'000, -0.0000025});
  EXPECT_EQ(RenderPromData(v),
            R"({"resultType":"vector","result":[{"metric":{"a":"x\"y"},"value":[1.5,"0.1"]},)"
            R"({"metric":{},"value":[1.001,"1000000000000000000000"]},)"
            R"({"metric":{},"value":[1.01,"+Inf"]},{"metric":{},"value":[-1.5,"NaN"]},)"
            R"({"metric":{},"value":[2,"-0.0000025"]}]})");
  EXPECT_EQ(RenderPromData(promql::String{3'000, "hi"}),
            R"({"resultType":"string","result":[3,"hi"]})");
}

}  // namespace
}  // namespace llmscope::api
