#include "alerts/template.h"

#include <gtest/gtest.h>

#include <cmath>

namespace llmscope::alerts {
namespace {

std::string Render(std::string_view text, const TemplateData& data) {
  auto t = Template::Parse("test", text);
  EXPECT_TRUE(t.ok()) << t.status().message();
  if (!t.ok()) return "<parse error>";
  return t->Expand(data);
}

TemplateData Data(double value = 0) {
  TemplateData d;
  d.labels = {
      {"__name__", "up"}, {"instance", "host:9090"}, {"job", "llmscope"}, {"model", "gpt-4o"}};
  d.external_labels = {{"cluster", "eu1"}};
  d.external_url = "https://prom.example.com/prometheus";
  d.value = value;
  return d;
}

std::string ParseError(std::string_view text) {
  auto t = Template::Parse("__alert_X", text);
  return t.ok() ? "" : t.status().message();
}

TEST(Humanize, MatchesPrometheus) {
  EXPECT_EQ(Humanize(1234567), "1.235M");
  EXPECT_EQ(Humanize(0), "0");
  EXPECT_EQ(Humanize(1000), "1k");
  EXPECT_EQ(Humanize(999), "999");
  EXPECT_EQ(Humanize(12.5), "12.5");
  EXPECT_EQ(Humanize(0.001), "1m");
  EXPECT_EQ(Humanize(0.0012345), "1.234m");
  EXPECT_EQ(Humanize(-1234), "-1.234k");
  EXPECT_EQ(Humanize(1e30), "1e+06Y");
  EXPECT_EQ(Humanize(NAN), "NaN");
  EXPECT_EQ(Humanize(INFINITY), "+Inf");
  EXPECT_EQ(Humanize1024(1048576), "1Mi");
  EXPECT_EQ(Humanize1024(1024), "1ki");
  EXPECT_EQ(Humanize1024(1), "1");
  EXPECT_EQ(Humanize1024(1536), "1.5ki");
  EXPECT_EQ(HumanizePercentage(0.1234), "12.34%");
  EXPECT_EQ(HumanizePercentage(0.5), "50%");
  EXPECT_EQ(HumanizePercentage(0.012345), "1.234%");
  EXPECT_EQ(HumanizeDuration(90), "1m 30s");
  EXPECT_EQ(HumanizeDuration(0), "0s");
  EXPECT_EQ(HumanizeDuration(1.5), "1.5s");
  EXPECT_EQ(HumanizeDuration(0.5), "500ms");
  EXPECT_EQ(HumanizeDuration(0.0001), "100us");
  EXPECT_EQ(HumanizeDuration(3600), "1h 0m 0s");
  EXPECT_EQ(HumanizeDuration(93784), "1d 2h 3m 4s");
  EXPECT_EQ(HumanizeDuration(-90), "-1m 30s");
  EXPECT_EQ(HumanizeDuration(4.975), "4.975s");
  EXPECT_EQ(HumanizeDuration(NAN), "NaN");
}

TEST(Template, LabelsAndValue) {
  TemplateData d = Data(0.25);
  EXPECT_EQ(Render("{{ $labels.instance }}", d), "host:9090");
  EXPECT_EQ(Render("{{ .Labels.job }}", d), "llmscope");
  EXPECT_EQ(Render("{{ $value }}", d), "0.25");
  EXPECT_EQ(Render("{{ .Value }}", d), "0.25");
  EXPECT_EQ(Render("{{ $externalLabels.cluster }}", d), "eu1");
  EXPECT_EQ(Render("{{ .ExternalLabels.cluster }} {{ $externalURL }}", d),
            "eu1 https://prom.example.com/prometheus");
  EXPECT_EQ(Render("{{ $labels.missing }}", d), "<no value>");
  EXPECT_EQ(Render("{{ index $labels \"model\" }}", d), "gpt-4o");
  EXPECT_EQ(Render("no actions here", d), "no actions here");
  EXPECT_EQ(Render("{{ $value }}", Data(1234567)), "1.234567e+06");
  EXPECT_EQ(Render("{{ \"quoted\\n\" }}{{ `raw\\n` }}", d), "quoted\nraw\\n");
}

TEST(Template, PipelinesAndFunctions) {
  TemplateData d = Data(1234567);
  EXPECT_EQ(Render("{{ $value | humanize }}", d), "1.235M");
  EXPECT_EQ(Render("{{ humanize $value }}", d), "1.235M");
  EXPECT_EQ(Render("{{ 0.1234 | humanizePercentage }}", d), "12.34%");
  EXPECT_EQ(Render("{{ 90 | humanizeDuration }}", d), "1m 30s");
  EXPECT_EQ(Render("{{ \"2048\" | humanize1024 }}", d), "2ki");
  EXPECT_EQ(Render("{{ printf \"%.2f\" $value }}", Data(3.14159)), "3.14");
  EXPECT_EQ(Render("{{ printf \"%s has %d\" $labels.model 3 }}", d), "gpt-4o has 3");
  EXPECT_EQ(Render("{{ $labels.model | toUpper }}", d), "GPT-4O");
  EXPECT_EQ(Render("{{ toLower \"ABC\" }}", d), "abc");
  EXPECT_EQ(Render("{{ title \"hello big-world_x\" }}", d), "Hello Big-World_x");
  EXPECT_EQ(Render("{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }}", d), "host");
  EXPECT_EQ(Render("{{ reReplaceAll \"o\" \"0\" \"foo boo\" }}", d), "f00 b00");
  EXPECT_EQ(Render("{{ reReplaceAll \"(?P<w>b)o\" \"${w}a\" \"bobo\" }}", d), "baba");
  EXPECT_EQ(Render("{{ reReplaceAll \"x*\" \"-\" \"abc\" }}", d), "-a-b-c-");
  EXPECT_EQ(Render("{{ match \"^gpt\" $labels.model }}", d), "true");
  EXPECT_EQ(Render("{{ parseDuration \"1h30m\" }}", d), "5400");
  EXPECT_EQ(Render("{{ humanizeTimestamp 1700000000 }}", d), "2023-11-14 22:13:20 +0000 UTC");
  EXPECT_EQ(Render("{{ $value | humanize | printf \"%s!\" }}", d), "1.235M!");
  EXPECT_EQ(Render("{{ (humanize $value) }}", d), "1.235M");
  EXPECT_EQ(Render("{{ len $labels }}", d), "4");
  EXPECT_EQ(Render("{{ print 1 2 \"a\" \"b\" }}", d), "1 2ab");
  EXPECT_EQ(Render("{{ graphLink \"up == 0\" }}", d), "/graph?g0.expr=up+%3D%3D+0&g0.tab=0");
  EXPECT_EQ(Render("{{ externalURL }} {{ pathPrefix }}", d),
            "https://prom.example.com/prometheus /prometheus");
  EXPECT_EQ(Render("{{ html \"<a>\" }}", d), "&lt;a&gt;");
}

TEST(Template, ConditionalsAndComparisons) {
  EXPECT_EQ(Render("{{ if gt $value 1.0 }}high{{ else }}low{{ end }}", Data(2)), "high");
  EXPECT_EQ(Render("{{ if gt $value 1.0 }}high{{ else }}low{{ end }}", Data(0.5)), "low");
  const char* chain =
      "{{ if lt $value 1.0 }}a{{ else if le $value 2.0 }}b{{ else if eq $value 3.0 }}c"
      "{{ else }}d{{ end }}";
  EXPECT_EQ(Render(chain, Data(0.5)), "a");
  EXPECT_EQ(Render(chain, Data(2)), "b");
  EXPECT_EQ(Render(chain, Data(3)), "c");
  EXPECT_EQ(Render(chain, Data(4)), "d");
  EXPECT_EQ(Render("{{ if eq $labels.job \"llmscope\" }}yes{{ end }}", Data()), "yes");
  EXPECT_EQ(Render("{{ if ne $labels.job \"x\" }}yes{{ end }}", Data()), "yes");
  EXPECT_EQ(Render("{{ if eq $labels.job \"a\" \"b\" \"llmscope\" }}any{{ end }}", Data()), "any");
  EXPECT_EQ(Render("{{ if ge 2 2 }}ge{{ end }}{{ if le \"a\" \"b\" }}le{{ end }}", Data()), "gele");
  EXPECT_EQ(Render("{{ if $labels.missing }}x{{ else }}none{{ end }}", Data()), "none");
  EXPECT_EQ(Render("{{ if eq $labels.missing \"x\" }}x{{ else }}no{{ end }}", Data()), "no");
  EXPECT_EQ(Render("{{ if and $labels.job (gt $value 1.0) }}both{{ end }}", Data(2)), "both");
  EXPECT_EQ(Render("{{ if or $labels.missing $labels.job }}either{{ end }}", Data()), "either");
  EXPECT_EQ(Render("{{ if not false }}not{{ end }}", Data()), "not");
  EXPECT_EQ(Render("{{ with $labels.model }}m={{ . }}{{ end }}", Data()), "m=gpt-4o");
  EXPECT_EQ(Render("{{ range $k, $v := $externalLabels }}{{ $k }}={{ $v }};{{ end }}", Data()),
            "cluster=eu1;");
  EXPECT_EQ(Render("{{ $x := humanize $value }}[{{ $x }}]", Data(2000)), "[2k]");
  EXPECT_EQ(Render("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", Data()), "2");
}

TEST(Template, TrimMarkersAndComments) {
  EXPECT_EQ(Render("a  {{- \"b\" -}}  \n c", Data()), "abc");
  EXPECT_EQ(Render("a {{/* a comment */}}b", Data()), "a b");
  EXPECT_EQ(Render("a {{- /* trimmed */ -}} b", Data()), "ab");
  EXPECT_EQ(Render("x\n{{- if true }}\n  y\n{{- end }}\n", Data()), "x\n  y\n");
  EXPECT_EQ(Render("{{-3}}", Data()), "-3");
}

TEST(Template, ParseErrorsWithPosition) {
  EXPECT_EQ(ParseError("{{ nosuch $value }}"),
            "template: __alert_X:1:4: function \"nosuch\" not defined");
  EXPECT_EQ(ParseError("ok\n  {{ $undefined }}"),
            "template: __alert_X:2:6: undefined variable \"$undefined\"");
  EXPECT_NE(ParseError("{{ if true }}x").find("unexpected EOF"), std::string::npos);
  EXPECT_NE(ParseError("{{ end }}").find("unexpected {{end}}"), std::string::npos);
  EXPECT_NE(ParseError("{{ $value ").find("unclosed action"), std::string::npos);
  EXPECT_NE(ParseError("{{ \"abc }}").find("unterminated quoted string"), std::string::npos);
  EXPECT_NE(ParseError("{{ }}").find("missing value for command"), std::string::npos);
  EXPECT_NE(ParseError("{{ define \"x\" }}{{ end }}").find("not supported"), std::string::npos);
  EXPECT_NE(ParseError("{{ (humanize 1 }}").find("unclosed left paren"), std::string::npos);
  // A variable declared inside if is out of scope after end.
  EXPECT_NE(ParseError("{{ if true }}{{ $x := 1 }}{{ end }}{{ $x }}").find("undefined"),
            std::string::npos);
}

TEST(Template, ExecutionErrorsInPlace) {
  auto t = Template::Parse("__alert_X", "v={{ humanize \"abc\" }}");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->Expand(Data()),
            "<error expanding template: template: __alert_X:1:3: executing \"__alert_X\" at "
            "<humanize>: error calling humanize: strconv.ParseFloat: parsing \"abc\": invalid "
            "syntax>");
  // Go's comparisons: float64 against an int constant is an error.
  auto cmp = Template::Parse("__alert_X", "{{ if gt $value 5 }}x{{ end }}");
  ASSERT_TRUE(cmp.ok());
  auto r = cmp->Execute(Data(6));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("incompatible types for comparison"), std::string::npos);
  EXPECT_NE(Render("{{ toUpper 1 }}", Data()).find("expected string"), std::string::npos);
  EXPECT_NE(Render("{{ humanize 1 2 }}", Data()).find("wrong number of args for humanize"),
            std::string::npos);
  EXPECT_NE(Render("{{ $labels.x.y }}", Data()).find("error expanding"), std::string::npos);
  EXPECT_NE(Render("{{ .Nope }}", Data()).find("can't evaluate field Nope"), std::string::npos);
  EXPECT_NE(Render("{{ query \"up\" }}", Data()).find("no query engine"), std::string::npos);
}

TEST(Template, QueryFunctions) {
  TemplateData d = Data();
  d.query = [](std::string_view q) -> core::Result<std::vector<TemplateSample>> {
    if (q == "bad") return core::InvalidArgument("1:1: parse error");
    return std::vector<TemplateSample>{{{{"__name__", "up"}, {"instance", "b"}}, 0},
                                       {{{"__name__", "up"}, {"instance", "a"}}, 1}};
  };
  EXPECT_EQ(Render("{{ query \"up\" | first | value }}", d), "0");
  EXPECT_EQ(Render("{{ with query \"up\" }}{{ . | first | label \"instance\" }}{{ end }}", d), "b");
  EXPECT_EQ(Render("{{ range query \"up\" | sortByLabel \"instance\" }}{{ .Labels.instance }}="
                   "{{ .Value }} {{ end }}",
                   d),
            "a=1 b=0 ");
  EXPECT_EQ(Render("{{ len (query \"up\") }}", d), "2");
  EXPECT_NE(Render("{{ query \"bad\" }}", d).find("error calling query: 1:1: parse error"),
            std::string::npos);
}

TEST(Template, ReusedConcurrentlySafeAndLiteral) {
  auto t = Template::Parse("n", "{{ $labels.model }}:{{ $value }}");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->is_literal());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(t->Expand(Data(i)), "gpt-4o:" + std::to_string(i));
  auto lit = Template::Parse("n", "critical");
  ASSERT_TRUE(lit.ok());
  EXPECT_TRUE(lit->is_literal());
  EXPECT_EQ(Template().Expand(Data()), "");
}

}  // namespace
}  // namespace llmscope::alerts
