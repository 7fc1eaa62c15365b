#include "promql/parser.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <vector>

#include "core/ascii.h"

namespace llmscope::promql {
namespace {

// Internal unwinding for parse errors: thrown only inside this file and always caught in
// ParseExpr, so nothing crosses the module boundary (a recursive-descent parser would
// otherwise thread a Status through every production).
struct ParseFailure {
  int pos;
  std::string msg;
};

enum class Tok {
  kEof,
  kIdent,
  kNumber,
  kDuration,
  kString,
  kLBrace,
  kRBrace,
  kLParen,
  kRParen,
  kLBracket,
  kRBracket,
  kComma,
  kColon,
  kAssign,
  kEqlRegex,
  kNeqRegex,
  kEql,
  kNeq,
  kLss,
  kGtr,
  kLte,
  kGte,
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kPow,
  kAt,
};

struct Token {
  Tok type = Tok::kEof;
  int pos = 0;
  int end = 0;
  std::string text;  // identifier, raw number/duration text, or decoded string
  double num = 0;
  int64_t dur_ms = 0;
};

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlnum(char c) { return IsAlpha(c) || IsDigit(c); }

// Scans a duration like 1h30m at s; returns its length or 0 when none.
size_t ScanDuration(std::string_view s, int64_t* ms) {
  static constexpr struct {
    const char* unit;
    int64_t ms;
  } kUnits[] = {{"y", 365LL * 24 * 3600 * 1000},
                {"w", 7LL * 24 * 3600 * 1000},
                {"d", 24LL * 3600 * 1000},
                {"h", 3600LL * 1000},
                {"m", 60LL * 1000},
                {"s", 1000},
                {"ms", 1}};
  size_t i = 0;
  int last_unit = -1;
  int64_t total = 0;
  while (i < s.size() && IsDigit(s[i])) {
    size_t start = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    int64_t n = 0;
    auto r = std::from_chars(s.data() + start, s.data() + i, n);
    if (r.ec != std::errc()) return 0;
    // Longest unit first so "ms" wins over "m".
    int unit = -1;
    if (s.substr(i, 2) == "ms") {
      unit = 6;
    } else if (i < s.size()) {
      for (int u = 0; u < 6; ++u) {
        if (s[i] == kUnits[u].unit[0]) unit = u;
      }
    }
    if (unit < 0 || unit <= last_unit) return 0;
    i += unit == 6 ? 2 : 1;
    last_unit = unit;
    if (n > INT64_MAX / kUnits[unit].ms || total > INT64_MAX - n * kUnits[unit].ms) return 0;
    total += n * kUnits[unit].ms;
  }
  if (last_unit < 0) return 0;
  *ms = total;
  return i;
}

class Lexer {
 public:
  explicit Lexer(std::string_view q) : q_(q) {}

  std::vector<Token> Run() {
    std::vector<Token> out;
    while (true) {
      SkipSpace();
      Token t;
      t.pos = static_cast<int>(i_);
      if (i_ >= q_.size()) {
        t.type = Tok::kEof;
        t.end = t.pos;
        out.push_back(t);
        return out;
      }
      char c = q_[i_];
      if (IsDigit(c) || (c == '.' && i_ + 1 < q_.size() && IsDigit(q_[i_ + 1]))) {
        LexNumber(&t);
      } else if (c == ':' && brackets_ > 0) {
        // Inside [...] a colon separates a subquery's range and step.
        t.type = Tok::kColon;
        ++i_;
      } else if (IsAlpha(c) || c == ':') {
        size_t s = i_;
        while (i_ < q_.size() && (IsAlnum(q_[i_]) || q_[i_] == ':')) ++i_;
        t.text = std::string(q_.substr(s, i_ - s));
        std::string low = core::AsciiLower(t.text);
        if (low == "inf" || low == "nan") {
          t.type = Tok::kNumber;
          t.num = low == "inf" ? HUGE_VAL : std::nan("");
        } else {
          t.type = Tok::kIdent;
        }
      } else if (c == '"' || c == '\'' || c == '`') {
        LexString(&t);
      } else {
        LexOperator(&t);
      }
      t.end = static_cast<int>(i_);
      out.push_back(std::move(t));
    }
  }

 private:
  void SkipSpace() {
    while (i_ < q_.size()) {
      char c = q_[i_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++i_;
      } else if (c == '#') {
        while (i_ < q_.size() && q_[i_] != '\n') ++i_;
      } else {
        break;
      }
    }
  }

  void LexNumber(Token* t) {
    size_t s = i_;
    // A duration first: digits followed by a unit.
    int64_t ms = 0;
    size_t dlen = ScanDuration(q_.substr(s), &ms);
    if (dlen > 0 && !(s + dlen < q_.size() && (IsAlnum(q_[s + dlen]) || q_[s + dlen] == '.'))) {
      i_ = s + dlen;
      t->type = Tok::kDuration;
      t->dur_ms = ms;
      t->text = std::string(q_.substr(s, dlen));
      return;
    }
    if (q_.substr(s, 2) == "0x" || q_.substr(s, 2) == "0X") {
      i_ = s + 2;
      while (i_ < q_.size() && std::isxdigit(static_cast<unsigned char>(q_[i_]))) ++i_;
      uint64_t v = 0;
      auto r = std::from_chars(q_.data() + s + 2, q_.data() + i_, v, 16);
      if (r.ec != std::errc() || i_ == s + 2) Bad(s);
      t->num = static_cast<double>(v);
    } else {
      while (i_ < q_.size() && IsDigit(q_[i_])) ++i_;
      if (i_ < q_.size() && q_[i_] == '.') {
        ++i_;
        while (i_ < q_.size() && IsDigit(q_[i_])) ++i_;
      }
      if (i_ < q_.size() && (q_[i_] == 'e' || q_[i_] == 'E')) {
        size_t e = i_ + 1;
        if (e < q_.size() && (q_[e] == '+' || q_[e] == '-')) ++e;
        if (e < q_.size() && IsDigit(q_[e])) {
          i_ = e;
          while (i_ < q_.size() && IsDigit(q_[i_])) ++i_;
        }
      }
      std::string text(q_.substr(s, i_ - s));
      char* endp = nullptr;
      t->num = std::strtod(text.c_str(), &endp);
    }
    if (i_ < q_.size() && (IsAlnum(q_[i_]) || q_[i_] == '.')) Bad(s);
    t->type = Tok::kNumber;
    t->text = std::string(q_.substr(s, i_ - s));
  }

  [[noreturn]] void Bad(size_t s) {
    size_t e = s;
    while (e < q_.size() && (IsAlnum(q_[e]) || q_[e] == '.')) ++e;
    throw ParseFailure{static_cast<int>(s), "bad number or duration syntax: \"" +
                                                std::string(q_.substr(s, e - s)) + "\""};
  }

  static int Hex(char h) {
    if (h >= '0' && h <= '9') return h - '0';
    if (h >= 'a' && h <= 'f') return h - 'a' + 10;
    if (h >= 'A' && h <= 'F') return h - 'A' + 10;
    return -1;
  }

  static void AppendUtf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out += static_cast<char>(0xC0 | (cp >> 6));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      *out += static_cast<char>(0xE0 | (cp >> 12));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      *out += static_cast<char>(0xF0 | (cp >> 18));
      *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  void LexString(Token* t) {
    char quote = q_[i_];
    size_t s = i_++;
    t->type = Tok::kString;
    if (quote == '`') {
      size_t e = q_.find('`', i_);
      if (e == std::string_view::npos)
        throw ParseFailure{static_cast<int>(s), "unterminated raw string"};
      t->text = std::string(q_.substr(i_, e - i_));
      i_ = e + 1;
      return;
    }
    std::string out;
    while (true) {
      if (i_ >= q_.size() || q_[i_] == '\n') {
        throw ParseFailure{static_cast<int>(s), "unterminated quoted string"};
      }
      char c = q_[i_];
      if (c == quote) {
        ++i_;
        break;
      }
      if (c != '\\') {
        out += c;
        ++i_;
        continue;
      }
      size_t esc = i_;
      ++i_;
      if (i_ >= q_.size()) throw ParseFailure{static_cast<int>(s), "unterminated quoted string"};
      char e = q_[i_++];
      switch (e) {
        case 'a':
          out += '\a';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'v':
          out += '\v';
          break;
        case '\\':
          out += '\\';
          break;
        case '\'':
        case '"':
          out += e;
          break;
        case 'x':
        case 'u':
        case 'U': {
          int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t v = 0;
          for (int k = 0; k < n; ++k) {
            int h = i_ < q_.size() ? Hex(q_[i_]) : -1;
            if (h < 0) throw ParseFailure{static_cast<int>(esc), "invalid escape sequence"};
            v = v * 16 + h;
            ++i_;
          }
          if (e == 'x') {
            out += static_cast<char>(v);
          } else {
            AppendUtf8(&out, v);
          }
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t v = e - '0';
            for (int k = 0; k < 2; ++k) {
              if (i_ >= q_.size() || q_[i_] < '0' || q_[i_] > '7') {
                throw ParseFailure{static_cast<int>(esc), "invalid escape sequence"};
              }
              v = v * 8 + (q_[i_++] - '0');
            }
            if (v > 255) throw ParseFailure{static_cast<int>(esc), "invalid escape sequence"};
            out += static_cast<char>(v);
            break;
          }
          throw ParseFailure{static_cast<int>(esc), "unknown escape sequence"};
      }
    }
    t->text = std::move(out);
  }

  void LexOperator(Token* t) {
    char c = q_[i_];
    char n = i_ + 1 < q_.size() ? q_[i_ + 1] : '\0';
    auto two = [&](Tok tok) {
      t->type = tok;
      i_ += 2;
    };
    auto one = [&](Tok tok) {
      t->type = tok;
      i_ += 1;
    };
    switch (c) {
      case '{':
        return one(Tok::kLBrace);
      case '}':
        return one(Tok::kRBrace);
      case '(':
        return one(Tok::kLParen);
      case ')':
        return one(Tok::kRParen);
      case '[':
        ++brackets_;
        return one(Tok::kLBracket);
      case ']':
        --brackets_;
        return one(Tok::kRBracket);
      case ',':
        return one(Tok::kComma);
      case '+':
        return one(Tok::kAdd);
      case '-':
        return one(Tok::kSub);
      case '*':
        return one(Tok::kMul);
      case '/':
        return one(Tok::kDiv);
      case '%':
        return one(Tok::kMod);
      case '^':
        return one(Tok::kPow);
      case '@':
        return one(Tok::kAt);
      case '=':
        if (n == '=') return two(Tok::kEql);
        if (n == '~') return two(Tok::kEqlRegex);
        return one(Tok::kAssign);
      case '!':
        if (n == '=') return two(Tok::kNeq);
        if (n == '~') return two(Tok::kNeqRegex);
        break;
      case '<':
        if (n == '=') return two(Tok::kLte);
        return one(Tok::kLss);
      case '>':
        if (n == '=') return two(Tok::kGte);
        return one(Tok::kGtr);
      default:
        break;
    }
    std::string ch(1, c);
    throw ParseFailure{static_cast<int>(i_), "unexpected character: " + QuoteString(ch)};
  }

  std::string_view q_;
  size_t i_ = 0;
  int brackets_ = 0;
};

struct AggName {
  const char* name;
  AggOp op;
};
constexpr AggName kAggregators[] = {
    {"sum", AggOp::kSum},
    {"avg", AggOp::kAvg},
    {"count", AggOp::kCount},
    {"min", AggOp::kMin},
    {"max", AggOp::kMax},
    {"group", AggOp::kGroup},
    {"stddev", AggOp::kStddev},
    {"stdvar", AggOp::kStdvar},
    {"topk", AggOp::kTopk},
    {"bottomk", AggOp::kBottomk},
    {"count_values", AggOp::kCountValues},
    {"quantile", AggOp::kQuantile},
};

bool FindAggregator(std::string_view word, AggOp* op) {
  std::string low = core::AsciiLower(word);
  for (const auto& a : kAggregators) {
    if (low == a.name) {
      *op = a.op;
      return true;
    }
  }
  return false;
}

bool IsKeyword(std::string_view word) {
  static constexpr const char* kWords[] = {
      "and",      "or",         "unless",      "atan2", "by",     "without", "on",
      "ignoring", "group_left", "group_right", "bool",  "offset", "limitk",  "limit_ratio"};
  std::string low = core::AsciiLower(word);
  AggOp op;
  if (FindAggregator(low, &op)) return true;
  for (const char* w : kWords) {
    if (low == w) return true;
  }
  return false;
}

class Parser {
 public:
  Parser(std::string_view q, std::vector<Token> toks, const ParseOptions& opts)
      : q_(q), toks_(std::move(toks)), opts_(opts) {}

  std::unique_ptr<Expr> Run() {
    auto e = ParseBinary(0);
    if (Cur().type != Tok::kEof) Unexpected("");
    return e;
  }

 private:
  const Token& Cur() const { return toks_[i_]; }
  const Token& PeekTok(int k = 1) const { return toks_[std::min(i_ + k, toks_.size() - 1)]; }
  void Advance() {
    if (i_ + 1 < toks_.size()) ++i_;
  }
  bool IsWord(std::string_view w) const {
    return Cur().type == Tok::kIdent && core::AsciiLower(Cur().text) == w;
  }

  [[noreturn]] void Fail(int pos, std::string msg) { throw ParseFailure{pos, std::move(msg)}; }

  std::string Describe(const Token& t) const {
    switch (t.type) {
      case Tok::kEof:
        return "end of input";
      case Tok::kIdent:
        if (IsKeyword(t.text)) return "<" + core::AsciiLower(t.text) + ">";
        return "identifier " + QuoteString(t.text);
      case Tok::kNumber:
        return "number " + QuoteString(t.text);
      case Tok::kDuration:
        return "duration " + QuoteString(t.text);
      case Tok::kString:
        return "string " + QuoteString(std::string(q_.substr(t.pos, t.end - t.pos)));
      default:
        return QuoteString(std::string(q_.substr(t.pos, t.end - t.pos)));
    }
  }

  [[noreturn]] void Unexpected(std::string_view context) {
    std::string msg = "unexpected " + Describe(Cur());
    if (!context.empty()) msg += " in " + std::string(context);
    Fail(Cur().pos, msg);
  }

  void Expect(Tok t, std::string_view context) {
    if (Cur().type != t) Unexpected(context);
    Advance();
  }

  struct DepthGuard {
    Parser* p;
    explicit DepthGuard(Parser* parser, int pos) : p(parser) {
      if (++p->depth_ > p->opts_.max_depth) {
        p->Fail(pos, "expression nesting depth exceeds the limit of " +
                         std::to_string(p->opts_.max_depth));
      }
    }
    ~DepthGuard() { --p->depth_; }
  };

  // Binary operator at the cursor and its precedence (0: none).
  int BinaryPrecedence(BinOp* op) const {
    const Token& t = Cur();
    switch (t.type) {
      case Tok::kAdd:
        *op = BinOp::kAdd;
        return 4;
      case Tok::kSub:
        *op = BinOp::kSub;
        return 4;
      case Tok::kMul:
        *op = BinOp::kMul;
        return 5;
      case Tok::kDiv:
        *op = BinOp::kDiv;
        return 5;
      case Tok::kMod:
        *op = BinOp::kMod;
        return 5;
      case Tok::kPow:
        *op = BinOp::kPow;
        return 6;
      case Tok::kEql:
        *op = BinOp::kEql;
        return 3;
      case Tok::kNeq:
        *op = BinOp::kNeq;
        return 3;
      case Tok::kGtr:
        *op = BinOp::kGtr;
        return 3;
      case Tok::kLss:
        *op = BinOp::kLss;
        return 3;
      case Tok::kGte:
        *op = BinOp::kGte;
        return 3;
      case Tok::kLte:
        *op = BinOp::kLte;
        return 3;
      case Tok::kIdent: {
        std::string low = core::AsciiLower(t.text);
        if (low == "and") {
          *op = BinOp::kAnd;
          return 2;
        }
        if (low == "unless") {
          *op = BinOp::kUnless;
          return 2;
        }
        if (low == "or") {
          *op = BinOp::kOr;
          return 1;
        }
        if (low == "atan2") {
          *op = BinOp::kAtan2;
          return 5;
        }
        return 0;
      }
      default:
        return 0;
    }
  }

  std::vector<std::string> ParseLabelList(std::string_view context) {
    std::vector<std::string> out;
    Expect(Tok::kLParen, context);
    while (Cur().type != Tok::kRParen) {
      if (Cur().type == Tok::kIdent || Cur().type == Tok::kString) {
        if (Cur().type == Tok::kString && !IsValidLabelName(Cur().text)) {
          Fail(Cur().pos, "invalid label name " + QuoteString(Cur().text));
        }
        out.push_back(Cur().text);
        Advance();
      } else {
        Unexpected(context);
      }
      if (Cur().type == Tok::kComma) {
        Advance();
      } else if (Cur().type != Tok::kRParen) {
        Unexpected(context);
      }
    }
    Advance();
    return out;
  }

  std::unique_ptr<Expr> ParseBinary(int min_prec) {
    DepthGuard guard(this, Cur().pos);
    auto lhs = ParseUnary();
    while (true) {
      BinOp op = BinOp::kAdd;
      int prec = BinaryPrecedence(&op);
      if (prec == 0 || prec < min_prec) return lhs;
      int op_pos = Cur().pos;
      Advance();
      auto e = std::make_unique<Expr>();
      e->kind = Expr::Kind::kBinary;
      e->bin = op;
      if (IsWord("bool")) {
        e->return_bool = true;
        Advance();
      }
      VectorMatching vm;
      bool have_matching_labels = false;
      if (IsWord("on") || IsWord("ignoring")) {
        vm.on = IsWord("on");
        Advance();
        vm.labels = ParseLabelList("grouping opts");
        have_matching_labels = true;
        if (IsWord("group_left") || IsWord("group_right")) {
          vm.card = IsWord("group_left") ? Cardinality::kManyToOne : Cardinality::kOneToMany;
          Advance();
          if (Cur().type == Tok::kLParen) vm.include = ParseLabelList("grouping opts");
        }
      }
      auto rhs = ParseBinary(op == BinOp::kPow ? prec : prec + 1);
      e->pos = lhs->pos;
      e->end = rhs->end;
      ValueType lt = lhs->type(), rt = rhs->type();
      if (e->return_bool && !IsComparison(op)) {
        Fail(op_pos, "bool modifier can only be used on comparison operators");
      }
      if ((lt != ValueType::kScalar && lt != ValueType::kVector) ||
          (rt != ValueType::kScalar && rt != ValueType::kVector)) {
        Fail(e->pos, "binary expression must contain only scalar and instant vector types");
      }
      if (IsComparison(op) && !e->return_bool && lt == ValueType::kScalar &&
          rt == ValueType::kScalar) {
        Fail(e->pos, "comparisons between scalars must use BOOL modifier");
      }
      if (IsSetOp(op)) {
        if (lt == ValueType::kScalar || rt == ValueType::kScalar) {
          Fail(e->pos, std::string("set operator ") + QuoteString(BinOpName(op)) +
                           " not allowed in binary scalar expression");
        }
        if (vm.card == Cardinality::kManyToOne || vm.card == Cardinality::kOneToMany) {
          Fail(op_pos,
               std::string("no grouping allowed for ") + QuoteString(BinOpName(op)) + " operation");
        }
        vm.card = Cardinality::kManyToMany;
      }
      for (const auto& l : vm.include) {
        if (vm.on && std::find(vm.labels.begin(), vm.labels.end(), l) != vm.labels.end()) {
          Fail(op_pos,
               "label " + QuoteString(l) + " must not occur in ON and GROUP clause at once");
        }
      }
      if (lt == ValueType::kVector && rt == ValueType::kVector) {
        e->matching = std::move(vm);
      } else if (have_matching_labels && !vm.labels.empty()) {
        Fail(e->pos, "vector matching only allowed between instant vectors");
      }
      e->args.push_back(std::move(lhs));
      e->args.push_back(std::move(rhs));
      lhs = std::move(e);
    }
  }

  std::unique_ptr<Expr> ParseUnary() {
    if (Cur().type == Tok::kAdd || Cur().type == Tok::kSub) {
      bool neg = Cur().type == Tok::kSub;
      int pos = Cur().pos;
      Advance();
      DepthGuard guard(this, pos);
      auto operand = ParseBinary(6);
      ValueType t = operand->type();
      if (t != ValueType::kScalar && t != ValueType::kVector) {
        Fail(pos, std::string("unary expression only allowed on expressions of type scalar or "
                              "instant vector, got ") +
                      QuoteString(ValueTypeDocName(t)));
      }
      if (operand->kind == Expr::Kind::kNumber) {
        if (neg) operand->number = -operand->number;
        operand->pos = pos;
        return operand;
      }
      if (!neg) return operand;
      auto e = std::make_unique<Expr>();
      e->kind = Expr::Kind::kUnary;
      e->negate = true;
      e->pos = pos;
      e->end = operand->end;
      e->args.push_back(std::move(operand));
      return e;
    }
    return ParsePostfix(ParsePrimary());
  }

  int64_t ParseDurationToken(std::string_view context) {
    const Token& t = Cur();
    int64_t ms;
    if (t.type == Tok::kDuration) {
      ms = t.dur_ms;
    } else if (t.type == Tok::kNumber && std::isfinite(t.num)) {
      // Prometheus accepts a plain number of seconds where a duration is expected.
      if (std::fabs(t.num) > 9.2e15) Fail(t.pos, "duration out of range");
      ms = static_cast<int64_t>(std::llround(t.num * 1000));
    } else {
      Unexpected(context);
    }
    Advance();
    return ms;
  }

  std::unique_ptr<Expr> ParsePostfix(std::unique_ptr<Expr> e) {
    bool has_offset = false, has_at = false;
    while (true) {
      if (Cur().type == Tok::kLBracket) {
        int pos = Cur().pos;
        Advance();
        int64_t range = ParseDurationToken("subquery or range");
        if (Cur().type == Tok::kColon) {
          Advance();
          int64_t step = 0;
          if (Cur().type != Tok::kRBracket) step = ParseDurationToken("subquery or range");
          int end = Cur().end;
          Expect(Tok::kRBracket, "subquery or range");
          if (e->type() != ValueType::kVector) {
            Fail(e->pos, std::string("subquery is only allowed on instant vector, got ") +
                             ValueTypeDocName(e->type()) + " instead");
          }
          if (range <= 0) Fail(pos, "duration must be greater than 0");
          if (step < 0) Fail(pos, "step must be greater than 0");
          auto sq = std::make_unique<Expr>();
          sq->kind = Expr::Kind::kSubquery;
          sq->pos = e->pos;
          sq->end = end;
          sq->range_ms = range;
          sq->step_ms = step;
          sq->args.push_back(std::move(e));
          e = std::move(sq);
          has_offset = has_at = false;
          continue;
        }
        int end = Cur().end;
        Expect(Tok::kRBracket, "subquery or range");
        if (e->kind != Expr::Kind::kVectorSelector) {
          Fail(e->pos, "ranges only allowed for vector selectors");
        }
        if (has_offset || has_at) Fail(pos, "no offset modifiers allowed before range");
        if (range <= 0) Fail(pos, "duration must be greater than 0");
        e->kind = Expr::Kind::kMatrixSelector;
        e->range_ms = range;
        e->end = end;
        continue;
      }
      if (IsWord("offset")) {
        int pos = Cur().pos;
        Advance();
        bool neg = false;
        if (Cur().type == Tok::kSub || Cur().type == Tok::kAdd) {
          neg = Cur().type == Tok::kSub;
          Advance();
        }
        int end = Cur().end;
        int64_t off = ParseDurationToken("offset");
        if (!IsSelectorLike(*e)) {
          Fail(pos,
               "offset modifier must be preceded by an instant vector selector or range vector "
               "selector or a subquery");
        }
        if (has_offset) Fail(pos, "offset may not be set multiple times");
        has_offset = true;
        e->offset_ms = neg ? -off : off;
        e->end = end;
        continue;
      }
      if (Cur().type == Tok::kAt) {
        int pos = Cur().pos;
        Advance();
        if (!IsSelectorLike(*e)) {
          Fail(pos,
               "@ modifier must be preceded by an instant vector selector or range vector "
               "selector or a subquery");
        }
        if (has_at) Fail(pos, "@ <timestamp> may not be set multiple times");
        has_at = true;
        if (IsWord("start") || IsWord("end")) {
          e->at = IsWord("start") ? AtKind::kStart : AtKind::kEnd;
          Advance();
          Expect(Tok::kLParen, "@ modifier");
          e->end = Cur().end;
          Expect(Tok::kRParen, "@ modifier");
          continue;
        }
        bool neg = false;
        if (Cur().type == Tok::kSub || Cur().type == Tok::kAdd) {
          neg = Cur().type == Tok::kSub;
          Advance();
        }
        if (Cur().type != Tok::kNumber && Cur().type != Tok::kDuration) Unexpected("@ modifier");
        double secs = Cur().type == Tok::kNumber ? Cur().num : Cur().dur_ms / 1000.0;
        if (neg) secs = -secs;
        if (!std::isfinite(secs) || std::fabs(secs) > 9.2e12) {
          Fail(Cur().pos, "timestamp out of bounds for @ modifier: " + Cur().text);
        }
        e->at = AtKind::kTime;
        e->at_ms = static_cast<int64_t>(std::llround(secs * 1000));
        e->end = Cur().end;
        Advance();
        continue;
      }
      return e;
    }
  }

  static bool IsSelectorLike(const Expr& e) {
    return e.kind == Expr::Kind::kVectorSelector || e.kind == Expr::Kind::kMatrixSelector ||
           e.kind == Expr::Kind::kSubquery;
  }

  std::unique_ptr<Expr> ParsePrimary() {
    const Token& t = Cur();
    auto e = std::make_unique<Expr>();
    e->pos = t.pos;
    e->end = t.end;
    switch (t.type) {
      case Tok::kNumber:
        e->kind = Expr::Kind::kNumber;
        e->number = t.num;
        Advance();
        return e;
      case Tok::kDuration:
        e->kind = Expr::Kind::kNumber;
        e->number = static_cast<double>(t.dur_ms) / 1000.0;
        Advance();
        return e;
      case Tok::kString:
        e->kind = Expr::Kind::kString;
        e->str = t.text;
        Advance();
        return e;
      case Tok::kLParen: {
        Advance();
        auto inner = ParseBinary(0);
        e->end = Cur().end;
        Expect(Tok::kRParen, "paren expression");
        e->kind = Expr::Kind::kParen;
        e->args.push_back(std::move(inner));
        return e;
      }
      case Tok::kLBrace:
        e->kind = Expr::Kind::kVectorSelector;
        ParseMatchers(e.get());
        CheckSelector(*e);
        return e;
      case Tok::kIdent:
        break;
      default:
        Unexpected("");
    }
    AggOp agg;
    if (FindAggregator(t.text, &agg) &&
        (PeekTok().type == Tok::kLParen ||
         (PeekTok().type == Tok::kIdent && (core::AsciiLower(PeekTok().text) == "by" ||
                                            core::AsciiLower(PeekTok().text) == "without")))) {
      return ParseAggregate(agg);
    }
    if (PeekTok().type == Tok::kLParen) return ParseCall();
    if (IsKeyword(t.text)) Unexpected("");
    e->kind = Expr::Kind::kVectorSelector;
    e->name = t.text;
    auto m = LabelMatcher::Make(MatchType::kEqual, std::string(kMetricName), t.text);
    e->matchers.push_back(std::move(*m));
    Advance();
    if (Cur().type == Tok::kLBrace) ParseMatchers(e.get());
    CheckSelector(*e);
    return e;
  }

  void ParseMatchers(Expr* e) {
    Advance();  // '{'
    while (Cur().type != Tok::kRBrace) {
      const Token& name_tok = Cur();
      if (name_tok.type != Tok::kIdent && name_tok.type != Tok::kString) {
        Unexpected("label matching");
      }
      std::string name = name_tok.text;
      int name_pos = name_tok.pos;
      Advance();
      if (name_tok.type == Tok::kString &&
          (Cur().type == Tok::kComma || Cur().type == Tok::kRBrace)) {
        // {"metric.name"}: the quoted metric name form.
        if (!e->name.empty()) {
          Fail(name_pos, "metric name must not be set twice: " + QuoteString(e->name) + " or " +
                             QuoteString(name));
        }
        e->name = name;
        e->matchers.push_back(
            *LabelMatcher::Make(MatchType::kEqual, std::string(kMetricName), name));
      } else {
        MatchType type = MatchType::kEqual;
        switch (Cur().type) {
          case Tok::kAssign:
            type = MatchType::kEqual;
            break;
          case Tok::kNeq:
            type = MatchType::kNotEqual;
            break;
          case Tok::kEqlRegex:
            type = MatchType::kRegexMatch;
            break;
          case Tok::kNeqRegex:
            type = MatchType::kRegexNoMatch;
            break;
          default:
            Unexpected("label matching, expected one of \"=\", \"!=\", \"=~\" or \"!~\"");
        }
        Advance();
        if (Cur().type != Tok::kString) Unexpected("label matching, expected string");
        int value_pos = Cur().pos;
        auto m = LabelMatcher::Make(type, name, Cur().text);
        if (!m.ok()) Fail(value_pos, m.status().message());
        if (name == kMetricName && type == MatchType::kEqual && !e->name.empty()) {
          Fail(name_pos, "metric name must not be set twice: " + QuoteString(e->name) + " or " +
                             QuoteString(Cur().text));
        }
        e->matchers.push_back(std::move(*m));
        Advance();
      }
      if (Cur().type == Tok::kComma) {
        Advance();
      } else if (Cur().type != Tok::kRBrace) {
        Unexpected("label matching, expected \",\" or \"}\"");
      }
    }
    e->end = Cur().end;
    Advance();
  }

  void CheckSelector(const Expr& e) {
    for (const auto& m : e.matchers) {
      if (!m.Matches("")) return;
    }
    Fail(e.pos, "vector selector must contain at least one non-empty matcher");
  }

  std::unique_ptr<Expr> ParseCall() {
    const Token& t = Cur();
    auto e = std::make_unique<Expr>();
    e->kind = Expr::Kind::kCall;
    e->pos = t.pos;
    e->func = LookupFunction(t.text);
    if (e->func == nullptr) Fail(t.pos, "unknown function with name " + QuoteString(t.text));
    Advance();
    Advance();  // '('
    while (Cur().type != Tok::kRParen) {
      e->args.push_back(ParseBinary(0));
      if (Cur().type == Tok::kComma) {
        Advance();
        if (Cur().type == Tok::kRParen) Unexpected("function call");
      } else if (Cur().type != Tok::kRParen) {
        Unexpected("function call, expected \",\" or \")\"");
      }
    }
    e->end = Cur().end;
    Advance();
    CheckCall(*e);
    return e;
  }

  void CheckCall(const Expr& e) {
    const FunctionInfo& f = *e.func;
    int nargs = static_cast<int>(f.arg_types.size());
    int got = static_cast<int>(e.args.size());
    std::string name = QuoteString(f.name);
    if (f.variadic == 0) {
      if (nargs != got) {
        Fail(e.pos, "expected " + std::to_string(nargs) + " argument(s) in call to " + name +
                        ", got " + std::to_string(got));
      }
    } else {
      int na = nargs - 1;
      if (na > got) {
        Fail(e.pos, "expected at least " + std::to_string(na) + " argument(s) in call to " + name +
                        ", got " + std::to_string(got));
      }
      int max = na + f.variadic;
      if (f.variadic > 0 && max < got) {
        Fail(e.pos, "expected at most " + std::to_string(max) + " argument(s) in call to " + name +
                        ", got " + std::to_string(got));
      }
    }
    for (int i = 0; i < got; ++i) {
      ValueType want = i < nargs ? f.arg_types[i] : f.arg_types.back();
      ValueType have = e.args[i]->type();
      if (want != have) {
        Fail(e.args[i]->pos, std::string("expected type ") + ValueTypeDocName(want) +
                                 " in call to function " + name + ", got " +
                                 ValueTypeDocName(have));
      }
    }
  }

  std::unique_ptr<Expr> ParseAggregate(AggOp op) {
    auto e = std::make_unique<Expr>();
    e->kind = Expr::Kind::kAggregate;
    e->agg = op;
    e->pos = Cur().pos;
    Advance();
    bool have_grouping = false;
    auto grouping = [&]() {
      if (IsWord("by") || IsWord("without")) {
        if (have_grouping) Unexpected("aggregation");
        e->without = IsWord("without");
        Advance();
        e->grouping = ParseLabelList("grouping opts");
        have_grouping = true;
      }
    };
    grouping();
    if (Cur().type != Tok::kLParen) Unexpected("aggregation");
    Advance();
    std::vector<std::unique_ptr<Expr>> args;
    while (Cur().type != Tok::kRParen) {
      args.push_back(ParseBinary(0));
      if (Cur().type == Tok::kComma) {
        Advance();
      } else if (Cur().type != Tok::kRParen) {
        Unexpected("aggregation, expected \",\" or \")\"");
      }
    }
    e->end = Cur().end;
    Advance();
    grouping();
    bool wants_param = op == AggOp::kTopk || op == AggOp::kBottomk || op == AggOp::kQuantile ||
                       op == AggOp::kCountValues;
    size_t want = wants_param ? 2 : 1;
    if (args.size() != want) {
      Fail(e->pos, "wrong number of arguments for aggregate expression provided, expected " +
                       std::to_string(want) + ", got " + std::to_string(args.size()));
    }
    if (wants_param) {
      e->param = std::move(args[0]);
      ValueType pt = e->param->type();
      ValueType need = op == AggOp::kCountValues ? ValueType::kString : ValueType::kScalar;
      if (pt != need) {
        Fail(e->param->pos, std::string("expected type ") + ValueTypeDocName(need) +
                                " in aggregation parameter, got " + ValueTypeDocName(pt));
      }
    }
    auto& inner = args.back();
    if (inner->type() != ValueType::kVector) {
      Fail(inner->pos, std::string("expected type instant vector in aggregation expression, got ") +
                           ValueTypeDocName(inner->type()));
    }
    e->args.push_back(std::move(inner));
    return e;
  }

  std::string_view q_;
  std::vector<Token> toks_;
  const ParseOptions& opts_;
  size_t i_ = 0;
  int depth_ = 0;
};

std::string Position(std::string_view q, int pos) {
  int line = 1, col = 1;
  for (int i = 0; i < pos && i < static_cast<int>(q.size()); ++i) {
    if (q[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return std::to_string(line) + ":" + std::to_string(col);
}

}  // namespace

core::Result<std::unique_ptr<Expr>> ParseExpr(std::string_view query, const ParseOptions& options) {
  if (query.size() > options.max_query_bytes) {
    return core::InvalidArgument("query of " + std::to_string(query.size()) +
                                 " bytes exceeds the limit of " +
                                 std::to_string(options.max_query_bytes));
  }
  try {
    Lexer lexer(query);
    Parser parser(query, lexer.Run(), options);
    return parser.Run();
  } catch (const ParseFailure& f) {
    return core::InvalidArgument(Position(query, f.pos) + ": parse error: " + f.msg);
  } catch (const std::bad_alloc&) {
    return core::Status(core::StatusCode::kResourceExhausted, "out of memory parsing the query");
  }
}

core::Result<int64_t> ParseDuration(std::string_view s) {
  if (s == "0") return int64_t{0};
  int64_t ms = 0;
  size_t n = ScanDuration(s, &ms);
  if (n == 0 || n != s.size()) {
    return core::InvalidArgument("not a valid duration string: " + QuoteString(s));
  }
  return ms;
}

std::string FormatDuration(int64_t ms) {
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  static constexpr struct {
    const char* unit;
    int64_t ms;
  } kUnits[] = {{"y", 365LL * 24 * 3600 * 1000},
                {"w", 7LL * 24 * 3600 * 1000},
                {"d", 24LL * 3600 * 1000},
                {"h", 3600LL * 1000},
                {"m", 60LL * 1000},
                {"s", 1000},
                {"ms", 1}};
  for (const auto& u : kUnits) {
    if (ms >= u.ms) {
      out += std::to_string(ms / u.ms) + u.unit;
      ms %= u.ms;
    }
  }
  return out;
}

}  // namespace llmscope::promql
