#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace llmscope::alerts {

// One element of a `query` result inside a template: a series' labels (with __name__) and
// its value.
struct TemplateSample {
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Runs a PromQL instant query for the template function `query` at the alert's evaluation
// time. May be empty: `query` then fails with an execution error.
using TemplateQueryFunc =
    std::function<core::Result<std::vector<TemplateSample>>(std::string_view query)>;

// What an alert's label and annotation templates see, as Prometheus' AlertTemplateData:
// `.Labels`/`$labels`, `.ExternalLabels`/`$externalLabels`, `.ExternalURL`/`$externalURL`,
// `.Value`/`$value`.
struct TemplateData {
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> external_labels;
  std::string external_url;
  double value = 0;
  // For `query`; see TemplateQueryFunc.
  TemplateQueryFunc query;
};

namespace template_internal {
struct Node;
}

// A parsed Go text/template in the subset Prometheus alert labels and annotations use:
//   - actions `{{ pipeline }}`, comments `{{/* */}}`, trimming `{{- ` and ` -}}`;
//   - operands: `.`, `.Field.Key`, `$var.Key`, `$`, strings ("..." and `raw`), numbers
//     (ints and floats typed as Go does: `5` is an int, `5.0` a float64), true, false,
//     `( pipeline )`; pipelines `a | f b`; declarations `$x := ...`, assignments `$x = ...`;
//   - `if`/`else if`/`else`/`end`, `with`, `range` (maps in key order, query results;
//     `$k, $v :=`), each scoping its variables as Go does;
//   - Go built-ins: and or not len index print printf println eq ne lt le gt ge html
//     urlquery js;
//   - Prometheus' functions: humanize humanize1024 humanizeDuration humanizePercentage
//     humanizeTimestamp toUpper toLower title reReplaceAll match safeHtml parseDuration
//     query first label value strvalue sortByLabel graphLink tableLink externalURL
//     pathPrefix.
// Predefined variables: $labels, $externalLabels, $externalURL, $value (as the definitions
// Prometheus prepends). A missing map key prints "<no value>", as Go does. Comparisons are
// Go's: `gt $value 5` (float64 against int) is an execution error; write `gt $value 5.0`.
// Not supported (a parse error): define, template, block, break, continue, method calls,
// toTime/toDuration.
//
// Thread-safety: immutable after Parse; Execute/Expand may be called concurrently.
class Template {
 public:
  // An empty template (renders "").
  Template();

  // Parses `text`. `name` appears in errors, as Go's "template: NAME:LINE:COL: ...".
  // INVALID_ARGUMENT with the position of the problem: unknown function, undefined
  // variable, unbalanced control structure, bad token.
  static core::Result<Template> Parse(std::string_view name, std::string_view text);

  // Renders with `data`; INVALID_ARGUMENT on an execution error (wrong argument type,
  // incompatible comparison, failing function), naming the action.
  core::Result<std::string> Execute(const TemplateData& data) const;

  // Renders as Prometheus expands alert templates: an execution error yields
  // "<error expanding template: MESSAGE>" instead of the text.
  std::string Expand(const TemplateData& data) const;

  // The source text.
  const std::string& text() const { return text_; }
  // True when the text has no action, so rendering returns it unchanged.
  bool is_literal() const { return literal_; }

 private:
  std::string name_;
  std::string text_;
  bool literal_ = true;
  std::shared_ptr<const template_internal::Node> root_;
};

// Prometheus' humanize family, exposed for tests and other modules (exact formatting of
// prometheus/template/template.go).
std::string Humanize(double v);             // 1234567 -> "1.235M", 0.001 -> "1m"
std::string Humanize1024(double v);         // 1048576 -> "1Mi"
std::string HumanizeDuration(double secs);  // 90 -> "1m 30s", 0.5 -> "500ms"
std::string HumanizePercentage(double v);   // 0.1234 -> "12.34%"

// Go's url.QueryEscape: unreserved bytes kept, space as '+', the rest %XX.
std::string QueryEscape(std::string_view s);
// Prometheus' link to an expression in its browser: "/graph?g0.expr=<escaped>&g0.tab=<0|1>"
// (graph or table tab), the path that alerts' generatorURL and graphLink/tableLink use.
std::string ExpressionLink(std::string_view expr, bool table);

}  // namespace llmscope::alerts
