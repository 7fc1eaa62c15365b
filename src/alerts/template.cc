#include "alerts/template.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <utility>

#include "alerts/go_format.h"
#include "promql/labels.h"
#include "promql/parser.h"
#include "promql/regex.h"

namespace llmscope::alerts {

// ---------------------------------------------------------------------------------------
// Humanize family: prometheus/template/template.go, formatted with Go's %.4g.

namespace {
std::string G4(double v) { return GoFormatFloat(v, 'g', 4); }
}  // namespace

std::string Humanize(double v) {
  if (v == 0 || std::isnan(v) || std::isinf(v)) return G4(v);
  if (std::fabs(v) >= 1) {
    const char* prefix = "";
    for (const char* p : {"k", "M", "G", "T", "P", "E", "Z", "Y"}) {
      if (std::fabs(v) < 1000) break;
      prefix = p;
      v /= 1000;
    }
    return G4(v) + prefix;
  }
  const char* prefix = "";
  for (const char* p : {"m", "u", "n", "p", "f", "a", "z", "y"}) {
    if (std::fabs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return G4(v) + prefix;
}

std::string Humanize1024(double v) {
  if (std::fabs(v) <= 1 || std::isnan(v) || std::isinf(v)) return G4(v);
  const char* prefix = "";
  for (const char* p : {"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"}) {
    if (std::fabs(v) < 1024) break;
    prefix = p;
    v /= 1024;
  }
  return G4(v) + prefix;
}

std::string HumanizeDuration(double v) {
  if (std::isnan(v) || std::isinf(v)) return G4(v);
  if (v == 0) return G4(v) + "s";
  if (std::fabs(v) >= 1) {
    std::string sign;
    if (v < 0) {
      sign = "-";
      v = -v;
    }
    const int64_t d = v >= 9.2e18 ? INT64_MAX : static_cast<int64_t>(v);
    const int64_t seconds = d % 60, minutes = (d / 60) % 60, hours = (d / 3600) % 24,
                  days = d / 86400;
    auto s = [](int64_t x) { return std::to_string(x); };
    if (days != 0) {
      return sign + s(days) + "d " + s(hours) + "h " + s(minutes) + "m " + s(seconds) + "s";
    }
    if (hours != 0) return sign + s(hours) + "h " + s(minutes) + "m " + s(seconds) + "s";
    if (minutes != 0) return sign + s(minutes) + "m " + s(seconds) + "s";
    return sign + G4(v) + "s";
  }
  const char* prefix = "";
  for (const char* p : {"m", "u", "n", "p", "f", "a", "z", "y"}) {
    if (std::fabs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return G4(v) + prefix + "s";
}

std::string HumanizePercentage(double v) { return G4(v * 100) + "%"; }

// ---------------------------------------------------------------------------------------
// The template tree.

namespace template_internal {

// Errors unwind the parser and the evaluator through this private type; Template's public
// methods catch it and return a Status, so nothing escapes the module.
struct TemplateError {
  std::string message;
};

enum class ArgKind { kFunc, kDot, kField, kVar, kString, kInt, kFloat, kBool, kNil, kPipe };

struct Pipeline;

struct Arg {
  ArgKind kind = ArgKind::kNil;
  std::string name;                // function or variable name ("$x"), string value
  std::vector<std::string> chain;  // .A.B after the operand
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::shared_ptr<Pipeline> pipe;  // kPipe
};

struct Command {
  std::vector<Arg> args;
  std::string source;  // for execution errors: "<humanize $value>"
};

struct Pipeline {
  std::vector<std::string> decl;
  bool assign = false;  // `=` rather than `:=`
  std::vector<Command> cmds;
};

struct Node {
  enum class Kind { kList, kText, kAction, kIf, kWith, kRange };
  Kind kind = Kind::kList;
  int line = 1, col = 1;
  std::string text;
  Pipeline pipe;
  std::vector<std::shared_ptr<Node>> list;
  std::vector<std::shared_ptr<Node>> else_list;
};

}  // namespace template_internal

namespace {

using template_internal::Arg;
using template_internal::ArgKind;
using template_internal::Command;
using template_internal::Node;
using template_internal::Pipeline;
using template_internal::TemplateError;
using NodePtr = std::shared_ptr<Node>;
using StrMap = std::map<std::string, std::string>;

const std::vector<std::string_view>& FunctionNames() {
  static const std::vector<std::string_view> kNames = {"and",
                                                       "or",
                                                       "not",
                                                       "len",
                                                       "index",
                                                       "print",
                                                       "printf",
                                                       "println",
                                                       "eq",
                                                       "ne",
                                                       "lt",
                                                       "le",
                                                       "gt",
                                                       "ge",
                                                       "html",
                                                       "urlquery",
                                                       "js",
                                                       "humanize",
                                                       "humanize1024",
                                                       "humanizeDuration",
                                                       "humanizePercentage",
                                                       "humanizeTimestamp",
                                                       "toUpper",
                                                       "toLower",
                                                       "title",
                                                       "reReplaceAll",
                                                       "match",
                                                       "safeHtml",
                                                       "parseDuration",
                                                       "query",
                                                       "first",
                                                       "label",
                                                       "value",
                                                       "strvalue",
                                                       "sortByLabel",
                                                       "graphLink",
                                                       "tableLink",
                                                       "externalURL",
                                                       "pathPrefix"};
  return kNames;
}

bool IsFunction(std::string_view n) {
  const auto& names = FunctionNames();
  return std::find(names.begin(), names.end(), n) != names.end();
}

// ---- Lexer --------------------------------------------------------------------------------

enum class Tok {
  kIdent,
  kField,
  kDot,
  kVar,
  kString,
  kNumber,
  kPipe,
  kLParen,
  kRParen,
  kDeclare,
  kAssign,
  kComma
};

struct Token {
  Tok type;
  std::string text;       // identifier, field name (no dot), variable ("$x"), unquoted string,
                          // number text
  bool adjacent = false;  // no space before it
  int line = 1, col = 1;
};

struct Segment {
  bool is_text = true;
  std::string text;
  std::vector<Token> tokens;
  std::string source;  // the action's text between the delimiters
  int line = 1, col = 1;
};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool IsAlnum(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}

class Lexer {
 public:
  Lexer(std::string_view name, std::string_view text) : name_(name), s_(text) {}

  std::vector<Segment> Run() {
    std::vector<Segment> out;
    bool trim_next = false;
    while (pos_ < s_.size()) {
      size_t k = s_.find("{{", pos_);
      std::string text(s_.substr(pos_, k == std::string_view::npos ? s_.size() - pos_ : k - pos_));
      if (trim_next) {
        size_t b = 0;
        while (b < text.size() && IsSpace(text[b])) ++b;
        text.erase(0, b);
      }
      trim_next = false;
      const bool trim_left = k != std::string_view::npos && k + 3 < s_.size() && s_[k + 2] == '-' &&
                             IsSpace(s_[k + 3]);
      if (trim_left) {
        while (!text.empty() && IsSpace(text.back())) text.pop_back();
      }
      if (!text.empty()) {
        Segment t;
        t.text = std::move(text);
        out.push_back(std::move(t));
      }
      if (k == std::string_view::npos) break;
      Advance(k - pos_);
      Segment a;
      a.is_text = false;
      a.line = line_;
      a.col = col_;
      Advance(2);
      if (trim_left) Advance(1);
      const size_t start = pos_;
      // A comment: {{/* ... */}} with optional trim markers.
      size_t p = pos_;
      while (trim_left && p < s_.size() && IsSpace(s_[p])) ++p;
      if (s_.substr(p, 2) == "/*") {
        size_t e = s_.find("*/", p + 2);
        if (e == std::string_view::npos) Fail(a.line, a.col, "unclosed comment");
        Advance(e + 2 - pos_);
        if (s_.substr(pos_, 4) == " -}}") {
          trim_next = true;
          Advance(4);
        } else if (s_.substr(pos_, 2) == "}}") {
          Advance(2);
        } else {
          Fail(line_, col_, "comment ends before closing delimiter");
        }
        continue;
      }
      size_t end = 0;
      a.tokens = Action(&trim_next, &end);
      a.source = std::string(s_.substr(start, end - start));
      while (!a.source.empty() && IsSpace(a.source.back())) a.source.pop_back();
      while (!a.source.empty() && IsSpace(a.source.front())) a.source.erase(0, 1);
      if (a.tokens.empty()) Fail(a.line, a.col, "missing value for command");
      out.push_back(std::move(a));
    }
    return out;
  }

 private:
  [[noreturn]] void Fail(int line, int col, const std::string& msg) {
    throw TemplateError{"template: " + std::string(name_) + ":" + std::to_string(line) + ":" +
                        std::to_string(col) + ": " + msg};
  }
  void Advance(size_t n) {
    for (size_t i = 0; i < n && pos_ < s_.size(); ++i, ++pos_) {
      if (s_[pos_] == '\n') {
        ++line_;
        col_ = 1;
      } else {
        ++col_;
      }
    }
  }
  char At(size_t i) const { return i < s_.size() ? s_[i] : '\0'; }

  // Tokens of one action; stops after "}}" (or " -}}", which sets *trim_next). *end is the
  // offset where the closing delimiter starts.
  std::vector<Token> Action(bool* trim_next, size_t* end) {
    std::vector<Token> toks;
    bool space_before = true;
    while (true) {
      if (pos_ >= s_.size()) Fail(line_, col_, "unclosed action");
      char c = s_[pos_];
      if (IsSpace(c)) {
        if (At(pos_ + 1) == '-' && At(pos_ + 2) == '}' && At(pos_ + 3) == '}') {
          *end = pos_;
          *trim_next = true;
          Advance(4);
          return toks;
        }
        Advance(1);
        space_before = true;
        continue;
      }
      if (c == '}' && At(pos_ + 1) == '}') {
        *end = pos_;
        Advance(2);
        return toks;
      }
      Token t;
      t.adjacent = !space_before;
      t.line = line_;
      t.col = col_;
      space_before = false;
      if (c == '|') {
        t.type = Tok::kPipe;
        Advance(1);
      } else if (c == '(') {
        t.type = Tok::kLParen;
        Advance(1);
      } else if (c == ')') {
        t.type = Tok::kRParen;
        Advance(1);
      } else if (c == ',') {
        t.type = Tok::kComma;
        Advance(1);
      } else if (c == ':' && At(pos_ + 1) == '=') {
        t.type = Tok::kDeclare;
        Advance(2);
      } else if (c == '=') {
        t.type = Tok::kAssign;
        Advance(1);
      } else if (c == '"') {
        t.type = Tok::kString;
        t.text = QuotedString();
      } else if (c == '`') {
        t.type = Tok::kString;
        size_t e = s_.find('`', pos_ + 1);
        if (e == std::string_view::npos) Fail(line_, col_, "unterminated raw quoted string");
        t.text = std::string(s_.substr(pos_ + 1, e - pos_ - 1));
        Advance(e + 1 - pos_);
      } else if (c == '.' && !IsAlnum(At(pos_ + 1))) {
        t.type = Tok::kDot;
        Advance(1);
      } else if (c == '.' && std::isdigit(static_cast<unsigned char>(At(pos_ + 1)))) {
        t.type = Tok::kNumber;
        t.text = Number();
      } else if (c == '.') {
        t.type = Tok::kField;
        Advance(1);
        t.text = Word();
      } else if (c == '$') {
        t.type = Tok::kVar;
        Advance(1);
        t.text = "$" + Word();
      } else if (std::isdigit(static_cast<unsigned char>(c)) ||
                 ((c == '-' || c == '+') &&
                  (std::isdigit(static_cast<unsigned char>(At(pos_ + 1))) ||
                   At(pos_ + 1) == '.'))) {
        t.type = Tok::kNumber;
        t.text = Number();
      } else if (IsAlnum(c)) {
        t.type = Tok::kIdent;
        t.text = Word();
      } else if (c == '\'') {
        // A character constant is a Go int.
        size_t e = s_.find('\'', pos_ + 1);
        if (e == std::string_view::npos || e < pos_ + 2)
          Fail(line_, col_, "bad character constant");
        t.type = Tok::kNumber;
        t.text = std::to_string(static_cast<unsigned char>(s_[pos_ + 1]));
        Advance(e + 1 - pos_);
      } else {
        Fail(line_, col_, std::string("unexpected \"") + c + "\" in command");
      }
      toks.push_back(std::move(t));
    }
  }

  std::string Word() {
    size_t b = pos_;
    while (pos_ < s_.size() && IsAlnum(s_[pos_])) Advance(1);
    return std::string(s_.substr(b, pos_ - b));
  }

  std::string Number() {
    size_t b = pos_;
    if (At(pos_) == '+' || At(pos_) == '-') Advance(1);
    while (pos_ < s_.size() && (IsAlnum(s_[pos_]) || s_[pos_] == '.' ||
                                ((s_[pos_] == '+' || s_[pos_] == '-') &&
                                 (s_[pos_ - 1] == 'e' || s_[pos_ - 1] == 'E' ||
                                  s_[pos_ - 1] == 'p' || s_[pos_ - 1] == 'P')))) {
      Advance(1);
    }
    return std::string(s_.substr(b, pos_ - b));
  }

  std::string QuotedString() {
    const int line = line_, col = col_;
    std::string out;
    Advance(1);
    while (true) {
      if (pos_ >= s_.size() || s_[pos_] == '\n') Fail(line, col, "unterminated quoted string");
      char c = s_[pos_];
      if (c == '"') {
        Advance(1);
        return out;
      }
      if (c != '\\') {
        out.push_back(c);
        Advance(1);
        continue;
      }
      char e = At(pos_ + 1);
      Advance(2);
      switch (e) {
        case 'n':
          out.push_back('\n');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 'a':
          out.push_back('\a');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'v':
          out.push_back('\v');
          break;
        case '\\':
        case '"':
        case '\'':
          out.push_back(e);
          break;
        case 'x': {
          std::string hex(s_.substr(pos_, 2));
          char* endp = nullptr;
          long v = std::strtol(hex.c_str(), &endp, 16);
          if (hex.size() != 2 || *endp != '\0') Fail(line, col, "invalid syntax in quoted string");
          out.push_back(static_cast<char>(v));
          Advance(2);
          break;
        }
        default:
          Fail(line, col, "invalid syntax in quoted string");
      }
    }
  }

  std::string_view name_;
  std::string_view s_;
  size_t pos_ = 0;
  int line_ = 1, col_ = 1;
};

// ---- Parser ---------------------------------------------------------------------------------

class Parser {
 public:
  Parser(std::string_view name, std::vector<Segment> segs) : name_(name), segs_(std::move(segs)) {
    vars_ = {"$", "$labels", "$externalLabels", "$externalURL", "$value"};
  }

  NodePtr Run() {
    auto root = std::make_shared<Node>();
    std::string ended;
    root->list = List(&ended);
    if (!ended.empty()) Fail(last_line_, last_col_, "unexpected {{" + ended + "}}");
    return root;
  }

 private:
  [[noreturn]] void Fail(int line, int col, const std::string& msg) {
    throw TemplateError{"template: " + std::string(name_) + ":" + std::to_string(line) + ":" +
                        std::to_string(col) + ": " + msg};
  }

  // Parses nodes until {{end}}, {{else ...}} or the end of input. *ended is "end", "else"
  // or "" (end of input); for "else", else_tokens_ holds the tokens after the keyword.
  std::vector<NodePtr> List(std::string* ended) {
    std::vector<NodePtr> out;
    while (i_ < segs_.size()) {
      Segment& s = segs_[i_++];
      if (s.is_text) {
        auto n = std::make_shared<Node>();
        n->kind = Node::Kind::kText;
        n->text = std::move(s.text);
        out.push_back(std::move(n));
        continue;
      }
      last_line_ = s.line;
      last_col_ = s.col;
      const Token& first = s.tokens[0];
      if (first.type == Tok::kIdent) {
        const std::string& kw = first.text;
        if (kw == "end") {
          if (s.tokens.size() > 1) Fail(s.line, s.col, "unexpected token in end");
          *ended = "end";
          return out;
        }
        if (kw == "else") {
          *ended = "else";
          else_tokens_.assign(s.tokens.begin() + 1, s.tokens.end());
          else_line_ = s.line;
          else_col_ = s.col;
          return out;
        }
        if (kw == "if" || kw == "with" || kw == "range") {
          std::vector<Token> rest(s.tokens.begin() + 1, s.tokens.end());
          out.push_back(Control(kw, rest, s.line, s.col, s.source));
          continue;
        }
        if (kw == "define" || kw == "template" || kw == "block" || kw == "break" ||
            kw == "continue") {
          Fail(s.line, s.col, "{{" + kw + "}} is not supported");
        }
      }
      auto n = std::make_shared<Node>();
      n->kind = Node::Kind::kAction;
      n->line = s.line;
      n->col = s.col;
      n->pipe = ParsePipeline(s.tokens, s.line, s.col, s.source, /*allow_decl=*/true, false);
      out.push_back(std::move(n));
    }
    *ended = "";
    return out;
  }

  NodePtr Control(const std::string& kw, const std::vector<Token>& toks, int line, int col,
                  const std::string& source) {
    auto n = std::make_shared<Node>();
    n->kind = kw == "if" ? Node::Kind::kIf : kw == "with" ? Node::Kind::kWith : Node::Kind::kRange;
    n->line = line;
    n->col = col;
    const size_t mark = vars_.size();
    if (toks.empty()) Fail(line, col, "missing value for " + kw);
    n->pipe = ParsePipeline(toks, line, col, source, true, kw == "range");
    std::string ended;
    n->list = List(&ended);
    if (ended.empty()) Fail(line, col, "unexpected EOF: {{" + kw + "}} has no {{end}}");
    if (ended == "else") {
      std::vector<Token> et = std::move(else_tokens_);
      else_tokens_.clear();
      if (!et.empty() && et[0].type == Tok::kIdent &&
          (et[0].text == "if" || et[0].text == "with") && kw == et[0].text) {
        // {{else if ...}}: a nested control structure sharing this one's {{end}}.
        std::vector<Token> rest(et.begin() + 1, et.end());
        n->else_list.push_back(Control(et[0].text, rest, else_line_, else_col_, source));
      } else {
        if (!et.empty()) Fail(else_line_, else_col_, "unexpected token in else");
        n->else_list = List(&ended);
        if (ended != "end") Fail(line, col, "expected {{end}} for {{" + kw + "}}");
      }
    }
    vars_.resize(mark);
    return n;
  }

  Pipeline ParsePipeline(const std::vector<Token>& toks, int line, int col,
                         const std::string& source, bool allow_decl, bool range) {
    Pipeline p;
    size_t k = 0;
    // Declarations: $x := / $x = / $k, $v :=
    if (allow_decl && !toks.empty() && toks[0].type == Tok::kVar) {
      size_t j = 0;
      std::vector<std::string> names;
      while (j < toks.size() && toks[j].type == Tok::kVar) {
        names.push_back(toks[j].text);
        ++j;
        if (j < toks.size() && toks[j].type == Tok::kComma && range && names.size() < 2) {
          ++j;
          continue;
        }
        break;
      }
      if (j < toks.size() && (toks[j].type == Tok::kDeclare || toks[j].type == Tok::kAssign)) {
        p.assign = toks[j].type == Tok::kAssign;
        p.decl = names;
        k = j + 1;
        if (p.assign) {
          for (const auto& v : names) CheckVar(v, toks[0].line, toks[0].col);
        }
      }
    }
    pos_toks_ = &toks;
    pos_ = k;
    if (pos_ >= toks.size()) Fail(line, col, "missing value for command");
    while (true) {
      p.cmds.push_back(ParseCommand(line, col));
      if (pos_ >= toks.size()) break;
      if (toks[pos_].type == Tok::kPipe) {
        ++pos_;
        if (pos_ >= toks.size()) Fail(line, col, "missing command after |");
        continue;
      }
      Fail(toks[pos_].line, toks[pos_].col, "unexpected token in operand");
    }
    for (auto& c : p.cmds) {
      if (c.source.empty()) c.source = source;
    }
    if (!p.assign) {
      for (const auto& v : p.decl) vars_.push_back(v);
    }
    return p;
  }

  // Parses a command from the current token list position (stops at `|`, `)` or the end).
  Command ParseCommand(int line, int col) {
    const std::vector<Token>& toks = *pos_toks_;
    Command c;
    while (pos_ < toks.size() && toks[pos_].type != Tok::kPipe && toks[pos_].type != Tok::kRParen) {
      c.args.push_back(ParseOperand());
    }
    if (c.args.empty()) Fail(line, col, "missing value for command");
    if (c.args[0].kind == ArgKind::kNil) Fail(line, col, "nil is not a command");
    if (c.args[0].kind == ArgKind::kFunc) {
      c.source = c.args[0].name;
    } else {
      c.source = "";
    }
    return c;
  }

  void CheckVar(const std::string& v, int line, int col) {
    if (std::find(vars_.begin(), vars_.end(), v) == vars_.end()) {
      Fail(line, col, "undefined variable \"" + v + "\"");
    }
  }

  Arg ParseOperand() {
    const std::vector<Token>& toks = *pos_toks_;
    const Token& t = toks[pos_++];
    Arg a;
    switch (t.type) {
      case Tok::kIdent:
        if (t.text == "true" || t.text == "false") {
          a.kind = ArgKind::kBool;
          a.b = t.text == "true";
        } else if (t.text == "nil") {
          a.kind = ArgKind::kNil;
        } else if (IsFunction(t.text)) {
          a.kind = ArgKind::kFunc;
          a.name = t.text;
        } else {
          Fail(t.line, t.col, "function \"" + t.text + "\" not defined");
        }
        break;
      case Tok::kDot:
        a.kind = ArgKind::kDot;
        break;
      case Tok::kField:
        a.kind = ArgKind::kField;
        a.chain.push_back(t.text);
        break;
      case Tok::kVar:
        CheckVar(t.text, t.line, t.col);
        a.kind = ArgKind::kVar;
        a.name = t.text;
        break;
      case Tok::kString:
        a.kind = ArgKind::kString;
        a.name = t.text;
        break;
      case Tok::kNumber:
        ParseNumber(t, &a);
        break;
      case Tok::kLParen: {
        auto pipe = std::make_shared<Pipeline>();
        while (true) {
          if (pos_ >= toks.size()) Fail(t.line, t.col, "unclosed left paren");
          pipe->cmds.push_back(ParseCommand(t.line, t.col));
          if (pos_ < toks.size() && toks[pos_].type == Tok::kPipe) {
            ++pos_;
            continue;
          }
          break;
        }
        if (pos_ >= toks.size() || toks[pos_].type != Tok::kRParen) {
          Fail(t.line, t.col, "unclosed left paren");
        }
        ++pos_;
        a.kind = ArgKind::kPipe;
        a.pipe = std::move(pipe);
        break;
      }
      default:
        Fail(t.line, t.col, "unexpected token in operand");
    }
    // Field chain glued to the operand: $labels.x, .Labels.x, (pipeline).X
    while (pos_ < toks.size() && toks[pos_].type == Tok::kField && toks[pos_].adjacent) {
      if (a.kind != ArgKind::kField && a.kind != ArgKind::kVar && a.kind != ArgKind::kPipe &&
          a.kind != ArgKind::kDot) {
        Fail(toks[pos_].line, toks[pos_].col, "unexpected . after term");
      }
      a.chain.push_back(toks[pos_].text);
      ++pos_;
    }
    return a;
  }

  void ParseNumber(const Token& t, Arg* a) {
    const std::string& s = t.text;
    std::string digits = s;
    digits.erase(std::remove(digits.begin(), digits.end(), '_'), digits.end());
    const bool is_hex =
        digits.find("0x") != std::string::npos || digits.find("0X") != std::string::npos;
    const bool floaty = !is_hex && digits.find_first_of(".eE") != std::string::npos;
    char* end = nullptr;
    if (!floaty) {
      errno = 0;
      long long v = std::strtoll(digits.c_str(), &end, 0);
      if (*end == '\0' && errno == 0) {
        a->kind = ArgKind::kInt;
        a->i = v;
        return;
      }
    }
    double d = std::strtod(digits.c_str(), &end);
    if (digits.empty() || *end != '\0') Fail(t.line, t.col, "bad number syntax: \"" + s + "\"");
    a->kind = ArgKind::kFloat;
    a->f = d;
  }

  std::string_view name_;
  std::vector<Segment> segs_;
  size_t i_ = 0;
  std::vector<std::string> vars_;
  std::vector<Token> else_tokens_;
  int else_line_ = 1, else_col_ = 1;
  int last_line_ = 1, last_col_ = 1;
  const std::vector<Token>* pos_toks_ = nullptr;
  size_t pos_ = 0;
};

// ---- Values and evaluation ----------------------------------------------------------------

struct Value {
  enum class Kind { kNil, kBool, kInt, kFloat, kString, kMap, kData, kResult, kSample };
  Kind kind = Kind::kNil;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::shared_ptr<const StrMap> map;
  const TemplateData* data = nullptr;
  std::shared_ptr<const std::vector<TemplateSample>> result;
  std::shared_ptr<const TemplateSample> sample;

  static Value Bool(bool v) {
    Value x;
    x.kind = Kind::kBool;
    x.b = v;
    return x;
  }
  static Value Int(int64_t v) {
    Value x;
    x.kind = Kind::kInt;
    x.i = v;
    return x;
  }
  static Value Float(double v) {
    Value x;
    x.kind = Kind::kFloat;
    x.f = v;
    return x;
  }
  static Value Str(std::string v) {
    Value x;
    x.kind = Kind::kString;
    x.s = std::move(v);
    return x;
  }
  static Value Map(const StrMap& m) {
    Value x;
    x.kind = Kind::kMap;
    x.map = std::make_shared<const StrMap>(m);
    return x;
  }
};

const char* TypeName(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNil:
      return "<nil>";
    case Value::Kind::kBool:
      return "bool";
    case Value::Kind::kInt:
      return "int";
    case Value::Kind::kFloat:
      return "float64";
    case Value::Kind::kString:
      return "string";
    case Value::Kind::kMap:
      return "map[string]string";
    case Value::Kind::kData:
      return "*template.tmplData";
    case Value::Kind::kResult:
      return "template.queryResult";
    case Value::Kind::kSample:
      return "*template.sample";
  }
  return "?";
}

std::string MapString(const StrMap& m) {
  std::string out = "map[";
  bool first = true;
  for (const auto& [k, v] : m) {
    if (!first) out += " ";
    first = false;
    out += k + ":" + v;
  }
  return out + "]";
}

std::string Print(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNil:
      return "<no value>";
    case Value::Kind::kBool:
      return v.b ? "true" : "false";
    case Value::Kind::kInt:
      return std::to_string(v.i);
    case Value::Kind::kFloat:
      return GoFloatString(v.f);
    case Value::Kind::kString:
      return v.s;
    case Value::Kind::kMap:
      return MapString(*v.map);
    case Value::Kind::kData:
      return "{" + MapString(v.data->labels) + " " + MapString(v.data->external_labels) + " " +
             v.data->external_url + " " + GoFloatString(v.data->value) + "}";
    case Value::Kind::kResult: {
      std::string out = "[";
      for (size_t k = 0; k < v.result->size(); ++k) {
        if (k) out += " ";
        out += "0x" + std::to_string(k);
      }
      return out + "]";
    }
    case Value::Kind::kSample:
      return "{" + MapString(v.sample->labels) + " " + GoFloatString(v.sample->value) + "}";
  }
  return "";
}

bool Truth(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNil:
      return false;
    case Value::Kind::kBool:
      return v.b;
    case Value::Kind::kInt:
      return v.i != 0;
    case Value::Kind::kFloat:
      return v.f != 0;
    case Value::Kind::kString:
      return !v.s.empty();
    case Value::Kind::kMap:
      return !v.map->empty();
    case Value::Kind::kResult:
      return !v.result->empty();
    default:
      return true;
  }
}

// Go's strconv.ParseFloat on the subset that matters (decimal, exponent, Inf, NaN, hex).
std::optional<double> ParseGoFloat(const std::string& s) {
  if (s.empty()) return std::nullopt;
  std::string t = s;
  std::string lower;
  for (char c : t) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  std::string_view l = lower;
  if (!l.empty() && (l[0] == '+' || l[0] == '-')) l.remove_prefix(1);
  if (l == "inf" || l == "infinity") return t[0] == '-' ? -INFINITY : INFINITY;
  if (l == "nan") return NAN;
  if (l.find_first_not_of("0123456789.e+-xp_abcdef") != std::string_view::npos) return std::nullopt;
  char* end = nullptr;
  double d = std::strtod(t.c_str(), &end);
  if (*end != '\0') return std::nullopt;
  return d;
}

struct Scope {
  std::vector<std::pair<std::string, Value>> vars;
};

class Exec {
 public:
  Exec(std::string_view name, const TemplateData& data) : name_(name), data_(data) {
    Value root;
    root.kind = Value::Kind::kData;
    root.data = &data;
    root_ = root;
    vars_.push_back({"$", root});
    vars_.push_back({"$labels", Value::Map(data.labels)});
    vars_.push_back({"$externalLabels", Value::Map(data.external_labels)});
    vars_.push_back({"$externalURL", Value::Str(data.external_url)});
    vars_.push_back({"$value", Value::Float(data.value)});
  }

  void Walk(const std::vector<NodePtr>& list, const Value& dot) {
    const size_t mark = vars_.size();
    for (const NodePtr& n : list) WalkNode(*n, dot);
    vars_.resize(mark);
  }

  std::string out;

 private:
  [[noreturn]] void Fail(const Node& n, const std::string& what, const std::string& msg) {
    throw TemplateError{"template: " + std::string(name_) + ":" + std::to_string(n.line) + ":" +
                        std::to_string(n.col) + ": executing \"" + std::string(name_) + "\" at <" +
                        what + ">: " + msg};
  }

  void WalkNode(const Node& n, const Value& dot) {
    cur_ = &n;
    switch (n.kind) {
      case Node::Kind::kText:
        out += n.text;
        return;
      case Node::Kind::kAction: {
        Value v = EvalPipeline(n.pipe, dot);
        if (n.pipe.decl.empty()) out += Print(v);
        return;
      }
      case Node::Kind::kIf:
      case Node::Kind::kWith: {
        const size_t mark = vars_.size();
        Value v = EvalPipeline(n.pipe, dot);
        if (Truth(v)) {
          Walk(n.list, n.kind == Node::Kind::kWith ? v : dot);
        } else {
          Walk(n.else_list, dot);
        }
        vars_.resize(mark);
        return;
      }
      case Node::Kind::kRange: {
        const size_t mark = vars_.size();
        Pipeline p = n.pipe;
        std::vector<std::string> decl = p.decl;
        p.decl.clear();
        Value v = EvalPipeline(p, dot);
        std::vector<std::pair<Value, Value>> items;
        if (v.kind == Value::Kind::kMap) {
          for (const auto& [k, x] : *v.map) items.push_back({Value::Str(k), Value::Str(x)});
        } else if (v.kind == Value::Kind::kResult) {
          for (size_t k = 0; k < v.result->size(); ++k) {
            Value s;
            s.kind = Value::Kind::kSample;
            s.sample = std::make_shared<const TemplateSample>((*v.result)[k]);
            items.push_back({Value::Int(static_cast<int64_t>(k)), s});
          }
        } else if (v.kind == Value::Kind::kInt) {
          for (int64_t k = 0; k < v.i; ++k) items.push_back({Value::Int(k), Value::Int(k)});
        } else if (v.kind != Value::Kind::kNil) {
          Fail(n, "range", std::string("range can't iterate over ") + Print(v));
        }
        if (items.empty()) {
          Walk(n.else_list, dot);
        }
        for (const auto& [key, elem] : items) {
          const size_t inner = vars_.size();
          if (decl.size() == 1) vars_.push_back({decl[0], elem});
          if (decl.size() == 2) {
            vars_.push_back({decl[0], key});
            vars_.push_back({decl[1], elem});
          }
          Walk(n.list, elem);
          vars_.resize(inner);
        }
        vars_.resize(mark);
        return;
      }
      case Node::Kind::kList:
        Walk(n.list, dot);
        return;
    }
  }

  Value* FindVar(const std::string& name) {
    for (auto it = vars_.rbegin(); it != vars_.rend(); ++it) {
      if (it->first == name) return &it->second;
    }
    return nullptr;
  }

  Value EvalPipeline(const Pipeline& p, const Value& dot) {
    Value v;
    bool has = false;
    for (const Command& c : p.cmds) {
      v = EvalCommand(c, dot, has ? &v : nullptr);
      has = true;
    }
    for (const std::string& d : p.decl) {
      if (p.assign) {
        if (Value* x = FindVar(d)) *x = v;
      } else {
        vars_.push_back({d, v});
      }
    }
    return v;
  }

  Value Field(Value base, const std::vector<std::string>& chain, const std::string& what) {
    for (const std::string& f : chain) {
      switch (base.kind) {
        case Value::Kind::kMap: {
          auto it = base.map->find(f);
          base = it == base.map->end() ? Value{} : Value::Str(it->second);
          break;
        }
        case Value::Kind::kData:
          if (f == "Labels") {
            base = Value::Map(base.data->labels);
          } else if (f == "ExternalLabels") {
            base = Value::Map(base.data->external_labels);
          } else if (f == "ExternalURL") {
            base = Value::Str(base.data->external_url);
          } else if (f == "Value") {
            base = Value::Float(base.data->value);
          } else {
            Fail(*cur_, what, "can't evaluate field " + f + " in type *template.tmplData");
          }
          break;
        case Value::Kind::kSample:
          if (f == "Labels") {
            base = Value::Map(base.sample->labels);
          } else if (f == "Value") {
            base = Value::Float(base.sample->value);
          } else {
            Fail(*cur_, what, "can't evaluate field " + f + " in type *template.sample");
          }
          break;
        case Value::Kind::kNil:
          Fail(*cur_, what, "nil pointer evaluating interface {}." + f);
        default:
          Fail(*cur_, what, "can't evaluate field " + f + " in type " + TypeName(base));
      }
    }
    return base;
  }

  Value EvalArg(const Arg& a, const Value& dot, const std::string& what) {
    switch (a.kind) {
      case ArgKind::kDot:
        return Field(dot, a.chain, what);
      case ArgKind::kField:
        return Field(dot, a.chain, what);
      case ArgKind::kVar: {
        Value* v = FindVar(a.name);
        if (v == nullptr) Fail(*cur_, what, "undefined variable: " + a.name);
        return Field(*v, a.chain, what);
      }
      case ArgKind::kString:
        return Value::Str(a.name);
      case ArgKind::kInt:
        return Value::Int(a.i);
      case ArgKind::kFloat:
        return Value::Float(a.f);
      case ArgKind::kBool:
        return Value::Bool(a.b);
      case ArgKind::kNil:
        return Value{};
      case ArgKind::kPipe:
        return Field(EvalPipeline(*a.pipe, dot), a.chain, what);
      case ArgKind::kFunc: {
        Command c;
        c.args.push_back(a);
        c.source = a.name;
        return EvalCommand(c, dot, nullptr);
      }
    }
    return Value{};
  }

  Value EvalCommand(const Command& c, const Value& dot, const Value* final) {
    const Arg& first = c.args[0];
    if (first.kind != ArgKind::kFunc) {
      if (c.args.size() > 1 || final != nullptr) {
        Fail(*cur_, Describe(first), "can't give argument to non-function " + Describe(first));
      }
      return EvalArg(first, dot, Describe(first));
    }
    const std::string& fn = first.name;
    const std::string what = c.source.empty() ? fn : c.source;
    // and/or evaluate lazily, as Go 1.18+.
    if (fn == "and" || fn == "or") {
      const size_t n = c.args.size() - 1 + (final ? 1 : 0);
      if (n < 1) Fail(*cur_, what, "wrong number of args for " + fn + ": want at least 1 got 0");
      Value v;
      for (size_t k = 1; k <= n; ++k) {
        v = k < c.args.size() ? EvalArg(c.args[k], dot, what) : *final;
        if ((fn == "and") != Truth(v)) return v;
      }
      return v;
    }
    std::vector<Value> args;
    for (size_t k = 1; k < c.args.size(); ++k) args.push_back(EvalArg(c.args[k], dot, what));
    if (final) args.push_back(*final);
    return Call(fn, args, what);
  }

  static std::string Describe(const Arg& a) {
    std::string s;
    switch (a.kind) {
      case ArgKind::kVar:
        s = a.name;
        break;
      case ArgKind::kString:
        s = promql::QuoteString(a.name);
        break;
      case ArgKind::kInt:
        s = std::to_string(a.i);
        break;
      case ArgKind::kFloat:
        s = GoFloatString(a.f);
        break;
      case ArgKind::kBool:
        s = a.b ? "true" : "false";
        break;
      case ArgKind::kDot:
        s = ".";
        break;
      default:
        break;
    }
    for (const auto& f : a.chain) s += "." + f;
    return s;
  }

  void Arity(const std::string& fn, const std::vector<Value>& args, size_t want,
             const std::string& what) {
    if (args.size() != want) {
      Fail(*cur_, what,
           "wrong number of args for " + fn + ": want " + std::to_string(want) + " got " +
               std::to_string(args.size()));
    }
  }

  std::string Str(const std::string& fn, const Value& v, const std::string& what) {
    if (v.kind == Value::Kind::kString) return v.s;
    if (v.kind == Value::Kind::kNil) {
      Fail(*cur_, what, "error calling " + fn + ": invalid value; expected string");
    }
    Fail(*cur_, what, std::string("wrong type for value; expected string; got ") + TypeName(v));
  }

  double ToFloat(const std::string& fn, const Value& v, const std::string& what) {
    switch (v.kind) {
      case Value::Kind::kFloat:
        return v.f;
      case Value::Kind::kInt:
        return static_cast<double>(v.i);
      case Value::Kind::kString: {
        auto d = ParseGoFloat(v.s);
        if (!d) {
          Fail(*cur_, what,
               "error calling " + fn + ": strconv.ParseFloat: parsing " + promql::QuoteString(v.s) +
                   ": invalid syntax");
        }
        return *d;
      }
      default:
        Fail(*cur_, what, "error calling " + fn + ": can't convert " + TypeName(v) + " to float");
    }
  }

  std::shared_ptr<const TemplateSample> SampleArg(const std::string& fn, const Value& v,
                                                  const std::string& what) {
    if (v.kind == Value::Kind::kSample) return v.sample;
    if (v.kind == Value::Kind::kNil) return nullptr;
    Fail(*cur_, what,
         std::string("wrong type for value; expected *template.sample; got ") + TypeName(v));
  }

  enum class Cmp { kBool, kInt, kFloat, kString, kOther, kInvalid };
  static Cmp CmpKind(const Value& v) {
    switch (v.kind) {
      case Value::Kind::kBool:
        return Cmp::kBool;
      case Value::Kind::kInt:
        return Cmp::kInt;
      case Value::Kind::kFloat:
        return Cmp::kFloat;
      case Value::Kind::kString:
        return Cmp::kString;
      case Value::Kind::kNil:
        return Cmp::kInvalid;
      default:
        return Cmp::kOther;
    }
  }

  bool Eq(const Value& a, const Value& b, const std::string& fn, const std::string& what) {
    Cmp ka = CmpKind(a), kb = CmpKind(b);
    if (ka != kb) {
      if (ka != Cmp::kInvalid && kb != Cmp::kInvalid) {
        Fail(*cur_, what, "error calling " + fn + ": incompatible types for comparison");
      }
      return false;
    }
    switch (ka) {
      case Cmp::kBool:
        return a.b == b.b;
      case Cmp::kInt:
        return a.i == b.i;
      case Cmp::kFloat:
        return a.f == b.f;
      case Cmp::kString:
        return a.s == b.s;
      case Cmp::kInvalid:
        return true;
      default:
        Fail(*cur_, what, "error calling " + fn + ": non-comparable types");
    }
  }

  bool Lt(const Value& a, const Value& b, const std::string& fn, const std::string& what) {
    Cmp ka = CmpKind(a), kb = CmpKind(b);
    if (ka == Cmp::kInvalid || ka == Cmp::kOther || kb == Cmp::kInvalid || kb == Cmp::kOther) {
      Fail(*cur_, what, "error calling " + fn + ": invalid type for comparison");
    }
    if (ka != kb) Fail(*cur_, what, "error calling " + fn + ": incompatible types for comparison");
    switch (ka) {
      case Cmp::kInt:
        return a.i < b.i;
      case Cmp::kFloat:
        return a.f < b.f;
      case Cmp::kString:
        return a.s < b.s;
      default:
        Fail(*cur_, what, "error calling " + fn + ": invalid type for comparison");
    }
  }

  GoArg ToGoArg(const Value& v) {
    switch (v.kind) {
      case Value::Kind::kBool:
        return v.b;
      case Value::Kind::kInt:
        return v.i;
      case Value::Kind::kFloat:
        return v.f;
      default:
        return Print(v);
    }
  }

  // Go's fmt.Sprint: a space between operands when neither is a string.
  std::string Sprint(const std::vector<Value>& args) {
    std::string out;
    for (size_t k = 0; k < args.size(); ++k) {
      if (k > 0 && args[k].kind != Value::Kind::kString &&
          args[k - 1].kind != Value::Kind::kString) {
        out += " ";
      }
      out += Print(args[k]);
    }
    return out;
  }

  Value Call(const std::string& fn, std::vector<Value>& args, const std::string& what) {
    auto num_arg = [&](size_t want) { Arity(fn, args, want, what); };
    if (fn == "not") {
      num_arg(1);
      return Value::Bool(!Truth(args[0]));
    }
    if (fn == "len") {
      num_arg(1);
      const Value& v = args[0];
      if (v.kind == Value::Kind::kString) return Value::Int(static_cast<int64_t>(v.s.size()));
      if (v.kind == Value::Kind::kMap) return Value::Int(static_cast<int64_t>(v.map->size()));
      if (v.kind == Value::Kind::kResult) {
        return Value::Int(static_cast<int64_t>(v.result->size()));
      }
      Fail(*cur_, what, std::string("error calling len: len of type ") + TypeName(v));
    }
    if (fn == "index") {
      if (args.empty()) Fail(*cur_, what, "wrong number of args for index: want at least 1 got 0");
      Value v = args[0];
      for (size_t k = 1; k < args.size(); ++k) {
        if (v.kind == Value::Kind::kMap) {
          std::string key = Str(fn, args[k], what);
          auto it = v.map->find(key);
          v = it == v.map->end() ? Value::Str("") : Value::Str(it->second);
        } else if (v.kind == Value::Kind::kResult && args[k].kind == Value::Kind::kInt) {
          if (args[k].i < 0 || args[k].i >= static_cast<int64_t>(v.result->size())) {
            Fail(*cur_, what,
                 "error calling index: index out of range: " + std::to_string(args[k].i));
          }
          Value s;
          s.kind = Value::Kind::kSample;
          s.sample = std::make_shared<const TemplateSample>((*v.result)[args[k].i]);
          v = s;
        } else {
          Fail(*cur_, what,
               std::string("error calling index: can't index item of type ") + TypeName(v));
        }
      }
      return v;
    }
    if (fn == "print") return Value::Str(Sprint(args));
    if (fn == "println") {
      std::string out;
      for (size_t k = 0; k < args.size(); ++k) {
        if (k) out += " ";
        out += Print(args[k]);
      }
      return Value::Str(out + "\n");
    }
    if (fn == "printf") {
      if (args.empty()) {
        Fail(*cur_, what, "wrong number of args for printf: want at least 1 got 0");
      }
      std::string format = Str(fn, args[0], what);
      std::vector<GoArg> rest;
      for (size_t k = 1; k < args.size(); ++k) rest.push_back(ToGoArg(args[k]));
      return Value::Str(GoSprintf(format, rest));
    }
    if (fn == "eq" || fn == "ne") {
      if (args.size() < 2) {
        Fail(*cur_, what, "error calling " + fn + ": missing argument for comparison");
      }
      if (fn == "ne") {
        num_arg(2);
        return Value::Bool(!Eq(args[0], args[1], fn, what));
      }
      for (size_t k = 1; k < args.size(); ++k) {
        if (Eq(args[0], args[k], fn, what)) return Value::Bool(true);
      }
      return Value::Bool(false);
    }
    if (fn == "lt" || fn == "le" || fn == "gt" || fn == "ge") {
      num_arg(2);
      const bool lt = Lt(args[0], args[1], fn, what);
      if (fn == "lt") return Value::Bool(lt);
      if (fn == "ge") return Value::Bool(!lt);
      const bool le = lt || Eq(args[0], args[1], fn, what);
      return Value::Bool(fn == "le" ? le : !le);
    }
    if (fn == "html") {
      std::string s = Sprint(args), out;
      for (char c : s) {
        switch (c) {
          case '<':
            out += "&lt;";
            break;
          case '>':
            out += "&gt;";
            break;
          case '&':
            out += "&amp;";
            break;
          case '"':
            out += "&#34;";
            break;
          case '\'':
            out += "&#39;";
            break;
          default:
            out.push_back(c);
        }
      }
      return Value::Str(out);
    }
    if (fn == "urlquery") return Value::Str(QueryEscape(Sprint(args)));
    if (fn == "js") {
      std::string s = Sprint(args), out;
      for (char c : s) {
        switch (c) {
          case '\\':
            out += "\\\\";
            break;
          case '\'':
            out += "\\'";
            break;
          case '"':
            out += "\\\"";
            break;
          case '<':
            out += "\\u003C";
            break;
          case '>':
            out += "\\u003E";
            break;
          case '&':
            out += "\\u0026";
            break;
          case '=':
            out += "\\u003D";
            break;
          case '\n':
            out += "\\u000A";
            break;
          default:
            out.push_back(c);
        }
      }
      return Value::Str(out);
    }
    if (fn == "humanize" || fn == "humanize1024" || fn == "humanizeDuration" ||
        fn == "humanizePercentage" || fn == "humanizeTimestamp") {
      num_arg(1);
      double v = ToFloat(fn, args[0], what);
      if (fn == "humanize") return Value::Str(Humanize(v));
      if (fn == "humanize1024") return Value::Str(Humanize1024(v));
      if (fn == "humanizeDuration") return Value::Str(HumanizeDuration(v));
      if (fn == "humanizePercentage") return Value::Str(HumanizePercentage(v));
      if (std::isnan(v) || std::isinf(v)) return Value::Str(GoFormatFloat(v, 'g', 4));
      if (std::fabs(v * 1e9) > 9.2e18) {
        Fail(*cur_, what,
             "error calling humanizeTimestamp: " + GoFloatString(v) +
                 " cannot be represented as a nanoseconds timestamp since it overflows int64");
      }
      return Value::Str(FormatGoTimeString(static_cast<int64_t>(std::floor(v * 1000))));
    }
    if (fn == "toUpper" || fn == "toLower" || fn == "title" || fn == "safeHtml") {
      num_arg(1);
      std::string s = Str(fn, args[0], what);
      if (fn == "toUpper") {
        for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      } else if (fn == "toLower") {
        for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      } else if (fn == "title") {
        // strings.Title: upper-cases letters that follow a separator (ASCII subset).
        bool prev_sep = true;
        for (char& c : s) {
          const auto u = static_cast<unsigned char>(c);
          if (prev_sep) c = static_cast<char>(std::toupper(u));
          prev_sep = !(std::isalnum(u) || c == '_' || u >= 0x80);
        }
      }
      return Value::Str(s);
    }
    if (fn == "reReplaceAll" || fn == "match") {
      num_arg(fn == "match" ? 2 : 3);
      std::string pattern = Str(fn, args[0], what);
      return fn == "match" ? Value::Bool(Match(pattern, Str(fn, args[1], what), what))
                           : Value::Str(ReplaceAll(pattern, Str(fn, args[1], what),
                                                   Str(fn, args[2], what), what));
    }
    if (fn == "parseDuration") {
      num_arg(1);
      auto d = promql::ParseDuration(Str(fn, args[0], what));
      if (!d.ok()) Fail(*cur_, what, "error calling parseDuration: " + d.status().message());
      return Value::Float(static_cast<double>(*d) / 1000.0);
    }
    if (fn == "query") {
      num_arg(1);
      std::string q = Str(fn, args[0], what);
      if (!data_.query) Fail(*cur_, what, "error calling query: no query engine available");
      auto r = data_.query(q);
      if (!r.ok()) Fail(*cur_, what, "error calling query: " + r.status().message());
      Value v;
      v.kind = Value::Kind::kResult;
      v.result = std::make_shared<const std::vector<TemplateSample>>(std::move(*r));
      return v;
    }
    if (fn == "first") {
      num_arg(1);
      if (args[0].kind != Value::Kind::kResult) {
        Fail(*cur_, what,
             std::string("wrong type for value; expected template.queryResult; got ") +
                 TypeName(args[0]));
      }
      if (args[0].result->empty()) {
        Fail(*cur_, what, "error calling first: first() called on vector with no elements");
      }
      Value s;
      s.kind = Value::Kind::kSample;
      s.sample = std::make_shared<const TemplateSample>(args[0].result->front());
      return s;
    }
    if (fn == "label") {
      num_arg(2);
      std::string l = Str(fn, args[0], what);
      auto s = SampleArg(fn, args[1], what);
      if (!s) return Value::Str("");
      auto it = s->labels.find(l);
      return Value::Str(it == s->labels.end() ? "" : it->second);
    }
    if (fn == "value") {
      num_arg(1);
      auto s = SampleArg(fn, args[0], what);
      return Value::Float(s ? s->value : 0);
    }
    if (fn == "strvalue") {
      num_arg(1);
      auto s = SampleArg(fn, args[0], what);
      if (!s) return Value::Str("");
      auto it = s->labels.find("__value__");
      return Value::Str(it == s->labels.end() ? "" : it->second);
    }
    if (fn == "sortByLabel") {
      num_arg(2);
      std::string l = Str(fn, args[0], what);
      if (args[1].kind != Value::Kind::kResult) {
        Fail(*cur_, what,
             std::string("wrong type for value; expected template.queryResult; got ") +
                 TypeName(args[1]));
      }
      auto sorted = *args[1].result;
      std::stable_sort(sorted.begin(), sorted.end(), [&](const auto& a, const auto& b) {
        auto ia = a.labels.find(l), ib = b.labels.find(l);
        std::string va = ia == a.labels.end() ? "" : ia->second;
        std::string vb = ib == b.labels.end() ? "" : ib->second;
        return va < vb;
      });
      Value v;
      v.kind = Value::Kind::kResult;
      v.result = std::make_shared<const std::vector<TemplateSample>>(std::move(sorted));
      return v;
    }
    if (fn == "graphLink" || fn == "tableLink") {
      num_arg(1);
      return Value::Str(ExpressionLink(Str(fn, args[0], what), fn == "tableLink"));
    }
    if (fn == "externalURL") {
      num_arg(0);
      return Value::Str(data_.external_url);
    }
    if (fn == "pathPrefix") {
      num_arg(0);
      // The path of the external URL: what follows scheme://host.
      std::string_view u = data_.external_url;
      size_t scheme = u.find("://");
      size_t path = u.find('/', scheme == std::string_view::npos ? 0 : scheme + 3);
      return Value::Str(path == std::string_view::npos ? "" : std::string(u.substr(path)));
    }
    Fail(*cur_, what, "function \"" + fn + "\" not defined");
  }

  std::shared_ptr<const promql::Regex> SearchRegex(const std::string& pattern,
                                                   const std::string& what, const char* fn) {
    // Unanchored search with the full-match engine: a lazy prefix finds the leftmost start,
    // the pattern (group 1) keeps its own greediness, the rest of the input is skipped.
    auto re = promql::Regex::Compile("(?s:.*?)(" + pattern + ")(?s:.*)");
    if (!re.ok()) {
      Fail(*cur_, what,
           std::string("error calling ") + fn + ": error parsing regexp: " + re.status().message());
    }
    return *re;
  }

  bool Match(const std::string& pattern, const std::string& text, const std::string& what) {
    return SearchRegex(pattern, what, "match")->FullMatch(text);
  }

  // Go's Regexp.ReplaceAllString: every non-overlapping leftmost match replaced by `repl`
  // with $1/${name} expanded; an empty match right after a previous match is skipped.
  std::string ReplaceAll(const std::string& pattern, const std::string& repl,
                         const std::string& text, const std::string& what) {
    auto re = SearchRegex(pattern, what, "reReplaceAll");
    std::string out;
    size_t pos = 0;
    bool prev_match_end_here = false;
    std::vector<int> caps;
    while (pos <= text.size()) {
      std::string_view rest(text.data() + pos, text.size() - pos);
      if (!re->FullMatchCaptures(rest, &caps) || caps.size() < 4 || caps[2] < 0) {
        break;
      }
      const size_t ms = pos + caps[2], me = pos + caps[3];
      if (ms == me && ms == pos && prev_match_end_here) {
        // Empty match abutting the previous one: move on by one character.
        if (pos >= text.size()) break;
        size_t step = 1;
        while (pos + step < text.size() &&
               (static_cast<unsigned char>(text[pos + step]) & 0xC0) == 0x80) {
          ++step;
        }
        out.append(text, pos, step);
        pos += step;
        prev_match_end_here = false;
        continue;
      }
      out.append(text, pos, ms - pos);
      out += Expand(*re, repl, rest, caps);
      if (me == ms) {
        if (ms >= text.size()) {
          pos = text.size() + 1;
          break;
        }
        size_t step = 1;
        while (ms + step < text.size() &&
               (static_cast<unsigned char>(text[ms + step]) & 0xC0) == 0x80) {
          ++step;
        }
        out.append(text, ms, step);
        pos = ms + step;
        prev_match_end_here = false;
      } else {
        pos = me;
        prev_match_end_here = true;
      }
    }
    if (pos < text.size()) out.append(text, pos, std::string::npos);
    return out;
  }

  // Expands $n/${n}/$name/${name}/$$ with the user's group numbers (one less than in the
  // wrapped pattern).
  static std::string Expand(const promql::Regex& re, const std::string& tmpl,
                            std::string_view input, const std::vector<int>& caps) {
    std::string out;
    size_t i = 0;
    while (i < tmpl.size()) {
      if (tmpl[i] != '$' || i + 1 >= tmpl.size()) {
        out.push_back(tmpl[i++]);
        continue;
      }
      if (tmpl[i + 1] == '$') {
        out.push_back('$');
        i += 2;
        continue;
      }
      size_t b = i + 1;
      bool brace = tmpl[b] == '{';
      if (brace) ++b;
      size_t e = b;
      while (e < tmpl.size() && IsAlnum(tmpl[e])) ++e;
      if (e == b || (brace && (e >= tmpl.size() || tmpl[e] != '}'))) {
        out.push_back(tmpl[i++]);
        continue;
      }
      std::string name = tmpl.substr(b, e - b);
      i = brace ? e + 1 : e;
      bool numeric = std::all_of(name.begin(), name.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
      });
      if (numeric) {
        int g = std::atoi(name.c_str()) + 1;
        if (g < re.num_groups() + 1 && 2 * g + 1 < static_cast<int>(caps.size()) &&
            caps[2 * g] >= 0) {
          out.append(input.substr(caps[2 * g], caps[2 * g + 1] - caps[2 * g]));
        }
      } else {
        out += re.Expand("${" + name + "}", input, caps);
      }
    }
    return out;
  }

  std::string_view name_;
  const TemplateData& data_;
  Value root_;
  std::vector<std::pair<std::string, Value>> vars_;
  const Node* cur_ = nullptr;
};

}  // namespace

Template::Template() : root_(std::make_shared<Node>()) {}

core::Result<Template> Template::Parse(std::string_view name, std::string_view text) {
  Template t;
  t.name_ = std::string(name);
  t.text_ = std::string(text);
  t.literal_ = text.find("{{") == std::string_view::npos;
  try {
    Lexer lexer(t.name_, t.text_);
    Parser parser(t.name_, lexer.Run());
    t.root_ = parser.Run();
  } catch (const TemplateError& e) {
    return core::InvalidArgument(e.message);
  }
  return t;
}

core::Result<std::string> Template::Execute(const TemplateData& data) const {
  if (literal_) return text_;
  try {
    Exec exec(name_, data);
    Value dot;
    dot.kind = Value::Kind::kData;
    dot.data = &data;
    exec.Walk(root_->list, dot);
    return std::move(exec.out);
  } catch (const TemplateError& e) {
    return core::InvalidArgument(e.message);
  }
}

std::string Template::Expand(const TemplateData& data) const {
  auto r = Execute(data);
  if (!r.ok()) return "<error expanding template: " + r.status().message() + ">";
  return std::move(*r);
}

std::string QueryEscape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else if (c == ' ') {
      out.push_back('+');
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string ExpressionLink(std::string_view expr, bool table) {
  return "/graph?g0.expr=" + QueryEscape(expr) + "&g0.tab=" + (table ? "1" : "0");
}

}  // namespace llmscope::alerts
