#include "promql/regex.h"

#include <algorithm>
#include <cwctype>
#include <utility>

namespace llmscope::promql {
namespace {

constexpr int kMaxRepeat = 1000;       // RE2's limit for {n,m}
constexpr size_t kMaxProgram = 50000;  // instructions; bounds memory and match time

enum AssertKind : uint8_t {
  kBeginText = 1,
  kEndText,
  kBeginLine,
  kEndLine,
  kWordBoundary,
  kNotWordBoundary
};

// Decodes one UTF-8 code point at s[i]; invalid bytes decode as U+FFFD of length 1 (as RE2).
uint32_t DecodeUtf8(std::string_view s, size_t i, size_t* len) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    *len = 1;
    return b0;
  }
  int n = 0;
  uint32_t cp = 0;
  if ((b0 & 0xE0) == 0xC0) {
    n = 1;
    cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 2;
    cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 3;
    cp = b0 & 0x07;
  } else {
    *len = 1;
    return 0xFFFD;
  }
  for (int k = 1; k <= n; ++k) {
    if (i + k >= s.size()) {
      *len = 1;
      return 0xFFFD;
    }
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      *len = 1;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  *len = n + 1;
  return cp;
}

uint32_t FoldLower(uint32_t c) {
  if (c < 128) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  return static_cast<uint32_t>(std::towlower(static_cast<wint_t>(c)));
}

bool IsWordChar(uint32_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

struct Node {
  enum Kind { kEmpty, kLit, kAny, kClass, kCat, kAlt, kRepeat, kAssert, kCapture } kind = kEmpty;
  uint32_t c = 0;
  bool fold = false;
  bool dotall = true;
  bool negate = false;
  int cls = -1;
  int min = 0, max = 0;  // kRepeat; max -1 = unbounded
  bool greedy = true;    // kRepeat
  int group = 0;         // kCapture
  uint8_t assert_kind = 0;
  std::vector<std::unique_ptr<Node>> kids;
};

struct Flags {
  bool fold = false;
  bool dotall = true;  // Prometheus wraps every pattern in (?s:...)
  bool multiline = false;
};

}  // namespace

// Parses the pattern into a tree and emits the Pike VM program.
class RegexCompiler {
 public:
  RegexCompiler(std::string_view p, Regex* re) : p_(p), re_(re) {}

  core::Status Run() {
    Flags flags;
    auto root = ParseAlt(&flags, 0);
    if (!err_.empty()) return Fail();
    if (pos_ < p_.size()) {
      err_ = "unexpected )";
      return Fail();
    }
    Emit(*root);
    if (!err_.empty()) return Fail();
    Regex::Inst m{};
    m.op = Regex::Op::kMatch;
    re_->prog_.push_back(m);
    return core::Status::Ok();
  }

 private:
  core::Status Fail() {
    return core::InvalidArgument("error parsing regexp: " + err_ + ": `" + std::string(p_) + "`");
  }

  bool More() const { return pos_ < p_.size(); }
  char Peek() const { return p_[pos_]; }

  uint32_t NextRune() {
    size_t len = 1;
    uint32_t c = DecodeUtf8(p_, pos_, &len);
    pos_ += len;
    return c;
  }

  std::unique_ptr<Node> ParseAlt(Flags* flags, int depth) {
    if (depth > 200) {
      err_ = "expression nests too deeply";
      return std::make_unique<Node>();
    }
    std::vector<std::unique_ptr<Node>> alts;
    alts.push_back(ParseCat(flags, depth));
    while (err_.empty() && More() && Peek() == '|') {
      ++pos_;
      alts.push_back(ParseCat(flags, depth));
    }
    if (alts.size() == 1) return std::move(alts[0]);
    auto n = std::make_unique<Node>();
    n->kind = Node::kAlt;
    n->kids = std::move(alts);
    return n;
  }

  std::unique_ptr<Node> ParseCat(Flags* flags, int depth) {
    auto cat = std::make_unique<Node>();
    cat->kind = Node::kCat;
    while (err_.empty() && More() && Peek() != '|' && Peek() != ')') {
      auto atom = ParseAtom(flags, depth);
      if (!err_.empty()) break;
      if (!atom) continue;  // a flag group like (?i) yields nothing
      atom = ParseRepeat(std::move(atom));
      cat->kids.push_back(std::move(atom));
    }
    return cat;
  }

  std::unique_ptr<Node> ParseRepeat(std::unique_ptr<Node> atom) {
    while (err_.empty() && More()) {
      int min = 0, max = 0;
      char c = Peek();
      if (c == '*') {
        min = 0, max = -1;
        ++pos_;
      } else if (c == '+') {
        min = 1, max = -1;
        ++pos_;
      } else if (c == '?') {
        min = 0, max = 1;
        ++pos_;
      } else if (c == '{') {
        size_t save = pos_;
        if (!ParseBraces(&min, &max)) {
          pos_ = save;  // a literal '{', as in RE2
          return atom;
        }
      } else {
        return atom;
      }
      bool greedy = true;
      if (More() && Peek() == '?') {
        ++pos_;
        greedy = false;
      }
      if (More() && (Peek() == '*' || Peek() == '+')) {
        err_ = "bad repetition operator";
        return atom;
      }
      if (atom->kind == Node::kAssert || atom->kind == Node::kEmpty) {
        // Repeating an empty-width item changes nothing.
        continue;
      }
      auto r = std::make_unique<Node>();
      r->kind = Node::kRepeat;
      r->min = min;
      r->max = max;
      r->greedy = greedy;
      r->kids.push_back(std::move(atom));
      atom = std::move(r);
    }
    return atom;
  }

  bool ParseInt(int* out) {
    size_t start = pos_;
    long v = 0;
    while (More() && Peek() >= '0' && Peek() <= '9') {
      v = v * 10 + (Peek() - '0');
      if (v > 100000) v = 100000;
      ++pos_;
    }
    *out = static_cast<int>(v);
    return pos_ > start;
  }

  bool ParseBraces(int* min, int* max) {
    ++pos_;  // '{'
    if (!ParseInt(min)) return false;
    if (More() && Peek() == '}') {
      ++pos_;
      *max = *min;
    } else if (More() && Peek() == ',') {
      ++pos_;
      if (More() && Peek() == '}') {
        ++pos_;
        *max = -1;
      } else {
        if (!ParseInt(max)) return false;
        if (!More() || Peek() != '}') return false;
        ++pos_;
      }
    } else {
      return false;
    }
    if (*min > kMaxRepeat || *max > kMaxRepeat || (*max != -1 && *max < *min)) {
      err_ = "invalid repeat count";
    }
    return true;
  }

  std::unique_ptr<Node> Lit(uint32_t c, const Flags& f) {
    auto n = std::make_unique<Node>();
    n->kind = Node::kLit;
    n->c = f.fold ? FoldLower(c) : c;
    n->fold = f.fold;
    return n;
  }

  std::unique_ptr<Node> ClassNode(std::vector<Regex::Range> ranges, bool negate, const Flags& f) {
    auto n = std::make_unique<Node>();
    n->kind = Node::kClass;
    n->negate = negate;
    n->fold = f.fold;
    if (f.fold) {
      // Add the other case of every letter so matching folds only the input.
      std::vector<Regex::Range> extra;
      for (const auto& r : ranges) {
        for (uint32_t c = r.lo; c <= r.hi && c < 0x10000 && c - r.lo < 0x3000; ++c) {
          uint32_t l = FoldLower(c);
          if (l != c) extra.push_back({l, l});
        }
      }
      ranges.insert(ranges.end(), extra.begin(), extra.end());
    }
    n->cls = static_cast<int>(re_->classes_.size());
    re_->classes_.push_back(std::move(ranges));
    return n;
  }

  static void PerlClass(char k, std::vector<Regex::Range>* out, bool* negate) {
    switch (k) {
      case 'D':
        *negate = true;
        [[fallthrough]];
      case 'd':
        out->push_back({'0', '9'});
        break;
      case 'S':
        *negate = true;
        [[fallthrough]];
      case 's':
        out->push_back({'\t', '\n'});
        out->push_back({'\f', '\r'});
        out->push_back({' ', ' '});
        break;
      case 'W':
        *negate = true;
        [[fallthrough]];
      case 'w':
        out->push_back({'0', '9'});
        out->push_back({'A', 'Z'});
        out->push_back({'_', '_'});
        out->push_back({'a', 'z'});
        break;
    }
  }

  // Parses an escape after '\'; sets *rune for a single character, or fills *cls.
  bool ParseEscape(uint32_t* rune, std::vector<Regex::Range>* cls, bool* negate, bool in_class,
                   uint8_t* assert_kind) {
    if (!More()) {
      err_ = "trailing backslash at end of expression";
      return false;
    }
    char c = Peek();
    ++pos_;
    switch (c) {
      case 'd':
      case 'D':
      case 's':
      case 'S':
      case 'w':
      case 'W':
        PerlClass(c, cls, negate);
        return true;
      case 'n':
        *rune = '\n';
        return true;
      case 't':
        *rune = '\t';
        return true;
      case 'r':
        *rune = '\r';
        return true;
      case 'f':
        *rune = '\f';
        return true;
      case 'v':
        *rune = '\v';
        return true;
      case 'a':
        *rune = 7;
        return true;
      case 'x': {
        uint32_t v = 0;
        auto hex = [](char h) -> int {
          if (h >= '0' && h <= '9') return h - '0';
          if (h >= 'a' && h <= 'f') return h - 'a' + 10;
          if (h >= 'A' && h <= 'F') return h - 'A' + 10;
          return -1;
        };
        if (More() && Peek() == '{') {
          ++pos_;
          int digits = 0;
          while (More() && Peek() != '}') {
            int h = hex(Peek());
            if (h < 0 || ++digits > 8) break;
            v = v * 16 + h;
            ++pos_;
          }
          if (!More() || Peek() != '}' || digits == 0) {
            err_ = "invalid escape sequence";
            return false;
          }
          ++pos_;
        } else {
          for (int k = 0; k < 2; ++k) {
            int h = More() ? hex(Peek()) : -1;
            if (h < 0) {
              err_ = "invalid escape sequence";
              return false;
            }
            v = v * 16 + h;
            ++pos_;
          }
        }
        *rune = v;
        return true;
      }
      case 'A':
      case 'z':
      case 'b':
      case 'B':
        if (in_class || assert_kind == nullptr) {
          err_ = "invalid escape sequence";
          return false;
        }
        *assert_kind = c == 'A'   ? kBeginText
                       : c == 'z' ? kEndText
                       : c == 'b' ? kWordBoundary
                                  : kNotWordBoundary;
        return true;
      case 'p':
      case 'P':
        err_ = "unsupported Unicode class escape \\" + std::string(1, c);
        return false;
      default:
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
          err_ = std::string("invalid escape sequence: \\") + c;
          return false;
        }
        --pos_;
        *rune = NextRune();  // escaped punctuation or any non-word rune
        return true;
    }
  }

  std::unique_ptr<Node> ParseClass(const Flags& f) {
    ++pos_;  // '['
    bool negate = false;
    if (More() && Peek() == '^') {
      negate = true;
      ++pos_;
    }
    std::vector<Regex::Range> ranges;
    bool first = true;
    while (true) {
      if (!More()) {
        err_ = "missing closing ]";
        return nullptr;
      }
      if (Peek() == ']' && !first) {
        ++pos_;
        break;
      }
      first = false;
      if (p_.substr(pos_, 2) == "[:") {
        size_t end = p_.find(":]", pos_ + 2);
        if (end != std::string_view::npos) {
          std::string_view name = p_.substr(pos_ + 2, end - pos_ - 2);
          bool neg = false;
          if (!name.empty() && name[0] == '^') {
            neg = true;
            name.remove_prefix(1);
          }
          std::vector<Regex::Range> r;
          if (name == "alpha") r = {{'A', 'Z'}, {'a', 'z'}};
          if (name == "digit") r = {{'0', '9'}};
          if (name == "alnum") r = {{'0', '9'}, {'A', 'Z'}, {'a', 'z'}};
          if (name == "upper") r = {{'A', 'Z'}};
          if (name == "lower") r = {{'a', 'z'}};
          if (name == "space") r = {{'\t', '\r'}, {' ', ' '}};
          if (name == "xdigit") r = {{'0', '9'}, {'A', 'F'}, {'a', 'f'}};
          if (name == "punct") r = {{'!', '/'}, {':', '@'}, {'[', '`'}, {'{', '~'}};
          if (name == "word") r = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
          if (r.empty()) {
            err_ = "invalid character class range";
            return nullptr;
          }
          if (neg) r = Negate(r);
          ranges.insert(ranges.end(), r.begin(), r.end());
          pos_ = end + 2;
          continue;
        }
      }
      uint32_t lo;
      if (Peek() == '\\') {
        ++pos_;
        std::vector<Regex::Range> cls;
        bool neg = false;
        uint32_t rune = 0;
        if (!ParseEscape(&rune, &cls, &neg, true, nullptr)) return nullptr;
        if (!cls.empty()) {
          if (neg) cls = Negate(cls);
          ranges.insert(ranges.end(), cls.begin(), cls.end());
          continue;
        }
        lo = rune;
      } else {
        lo = NextRune();
      }
      uint32_t hi = lo;
      if (pos_ + 1 < p_.size() && Peek() == '-' && p_[pos_ + 1] != ']') {
        ++pos_;
        if (Peek() == '\\') {
          ++pos_;
          std::vector<Regex::Range> cls;
          bool neg = false;
          if (!ParseEscape(&hi, &cls, &neg, true, nullptr)) return nullptr;
          if (!cls.empty()) {
            err_ = "invalid character class range";
            return nullptr;
          }
        } else {
          hi = NextRune();
        }
        if (hi < lo) {
          err_ = "invalid character class range";
          return nullptr;
        }
      }
      ranges.push_back({lo, hi});
    }
    return ClassNode(std::move(ranges), negate, f);
  }

  static std::vector<Regex::Range> Negate(std::vector<Regex::Range> r) {
    std::sort(r.begin(), r.end(), [](auto& a, auto& b) { return a.lo < b.lo; });
    std::vector<Regex::Range> out;
    uint32_t next = 0;
    for (const auto& x : r) {
      if (x.lo > next) out.push_back({next, x.lo - 1});
      next = std::max(next, x.hi + 1);
    }
    if (next <= 0x10FFFF) out.push_back({next, 0x10FFFF});
    return out;
  }

  // Parses "(?flags)" / "(?flags:" after "(?"; returns true when a group body follows.
  bool ParseFlags(Flags* f) {
    bool neg = false;
    while (More()) {
      char c = Peek();
      ++pos_;
      switch (c) {
        case 'i':
          f->fold = !neg;
          break;
        case 's':
          f->dotall = !neg;
          break;
        case 'm':
          f->multiline = !neg;
          break;
        case 'U':
          break;
        case '-':
          if (neg) {
            err_ = "invalid or unsupported Perl syntax";
            return false;
          }
          neg = true;
          break;
        case ')':
          return false;
        case ':':
          return true;
        default:
          err_ = "invalid or unsupported Perl syntax";
          return false;
      }
    }
    err_ = "missing closing )";
    return false;
  }

  std::unique_ptr<Node> ParseAtom(Flags* flags, int depth) {
    char c = Peek();
    switch (c) {
      case '(': {
        ++pos_;
        Flags inner = *flags;
        int group = -1;
        if (More() && Peek() == '?') {
          ++pos_;
          if (More() && (Peek() == 'P' || Peek() == '<')) {
            if (Peek() == 'P') ++pos_;
            size_t end = p_.find('>', pos_);
            if (!More() || Peek() != '<' || end == std::string_view::npos) {
              err_ = "invalid named capture";
              return nullptr;
            }
            group = ++re_->num_groups_;
            re_->group_names_.emplace_back(std::string(p_.substr(pos_ + 1, end - pos_ - 1)), group);
            pos_ = end + 1;
          } else {
            bool body = ParseFlags(&inner);
            if (!err_.empty()) return nullptr;
            if (!body) {
              *flags = inner;  // (?i) applies to the rest of the enclosing group
              return nullptr;
            }
          }
        } else {
          group = ++re_->num_groups_;
        }
        auto n = ParseAlt(&inner, depth + 1);
        if (!err_.empty()) return nullptr;
        if (!More() || Peek() != ')') {
          err_ = "missing closing )";
          return nullptr;
        }
        ++pos_;
        if (group < 0) return n;
        auto cap = std::make_unique<Node>();
        cap->kind = Node::kCapture;
        cap->group = group;
        cap->kids.push_back(std::move(n));
        return cap;
      }
      case ')':
        err_ = "unexpected )";
        return nullptr;
      case '[':
        return ParseClass(*flags);
      case '.': {
        ++pos_;
        auto n = std::make_unique<Node>();
        n->kind = Node::kAny;
        n->dotall = flags->dotall;
        return n;
      }
      case '^':
      case '$': {
        ++pos_;
        auto n = std::make_unique<Node>();
        n->kind = Node::kAssert;
        n->assert_kind = c == '^' ? (flags->multiline ? kBeginLine : kBeginText)
                                  : (flags->multiline ? kEndLine : kEndText);
        return n;
      }
      case '*':
      case '+':
      case '?':
        err_ = std::string("missing argument to repetition operator: ") + c;
        return nullptr;
      case '\\': {
        ++pos_;
        uint32_t rune = 0;
        std::vector<Regex::Range> cls;
        bool neg = false;
        uint8_t ak = 0;
        if (!ParseEscape(&rune, &cls, &neg, false, &ak)) return nullptr;
        if (ak != 0) {
          auto n = std::make_unique<Node>();
          n->kind = Node::kAssert;
          n->assert_kind = ak;
          return n;
        }
        if (!cls.empty()) return ClassNode(std::move(cls), neg, *flags);
        return Lit(rune, *flags);
      }
      default:
        return Lit(NextRune(), *flags);
    }
  }

  int Pc() const { return static_cast<int>(re_->prog_.size()); }
  int Add(Regex::Inst in) {
    if (re_->prog_.size() >= kMaxProgram) {
      err_ = "expression too large";
      return Pc() - 1;
    }
    re_->prog_.push_back(in);
    return Pc() - 1;
  }

  void Emit(const Node& n) {
    if (!err_.empty()) return;
    Regex::Inst in{};
    switch (n.kind) {
      case Node::kEmpty:
        return;
      case Node::kLit:
        in.op = Regex::Op::kChar;
        in.c = n.c;
        in.fold = n.fold;
        Add(in);
        return;
      case Node::kAny:
        in.op = n.dotall ? Regex::Op::kAny : Regex::Op::kAnyNotNl;
        Add(in);
        return;
      case Node::kClass:
        in.op = Regex::Op::kClass;
        in.cls = n.cls;
        in.negate = n.negate;
        in.fold = n.fold;
        Add(in);
        return;
      case Node::kAssert:
        in.op = Regex::Op::kAssert;
        in.assert_kind = n.assert_kind;
        Add(in);
        return;
      case Node::kCat:
        for (const auto& k : n.kids) Emit(*k);
        return;
      case Node::kCapture:
        in.op = Regex::Op::kSave;
        in.c = 2 * n.group;
        Add(in);
        Emit(*n.kids[0]);
        in.c = 2 * n.group + 1;
        Add(in);
        return;
      case Node::kAlt: {
        std::vector<int> jumps;
        for (size_t i = 0; i < n.kids.size(); ++i) {
          if (i + 1 < n.kids.size()) {
            in.op = Regex::Op::kSplit;
            int split = Add(in);
            re_->prog_[split].x = Pc();
            Emit(*n.kids[i]);
            in.op = Regex::Op::kJmp;
            jumps.push_back(Add(in));
            if (!err_.empty()) return;
            re_->prog_[split].y = Pc();
          } else {
            Emit(*n.kids[i]);
          }
        }
        if (!err_.empty()) return;
        for (int j : jumps) re_->prog_[j].x = Pc();
        return;
      }
      case Node::kRepeat: {
        const Node& body = *n.kids[0];
        for (int i = 0; i < n.min; ++i) Emit(body);
        if (n.max == -1) {
          in.op = Regex::Op::kSplit;
          int split = Add(in);
          re_->prog_[split].x = Pc();
          Emit(body);
          in.op = Regex::Op::kJmp;
          in.x = split;
          Add(in);
          if (!err_.empty()) return;
          re_->prog_[split].y = Pc();
          if (!n.greedy) std::swap(re_->prog_[split].x, re_->prog_[split].y);
        } else {
          std::vector<int> splits;
          for (int i = n.min; i < n.max; ++i) {
            in.op = Regex::Op::kSplit;
            int split = Add(in);
            if (!err_.empty()) return;
            re_->prog_[split].x = Pc();
            splits.push_back(split);
            Emit(body);
          }
          if (!err_.empty()) return;
          for (int s : splits) {
            re_->prog_[s].y = Pc();
            if (!n.greedy) std::swap(re_->prog_[s].x, re_->prog_[s].y);
          }
        }
        return;
      }
    }
  }

  std::string_view p_;
  Regex* re_;
  size_t pos_ = 0;
  std::string err_;
};

core::Result<std::shared_ptr<const Regex>> Regex::Compile(std::string_view pattern) {
  auto re = std::shared_ptr<Regex>(new Regex());
  re->pattern_ = std::string(pattern);
  bool literal = true;
  for (char c : pattern) {
    if (std::string_view("\\.+*?()|[]{}^$").find(c) != std::string_view::npos) {
      literal = false;
      break;
    }
  }
  if (literal) {
    re->is_literal_ = true;
    re->literal_ = std::string(pattern);
    return std::shared_ptr<const Regex>(std::move(re));
  }
  RegexCompiler compiler(pattern, re.get());
  core::Status st = compiler.Run();
  if (!st.ok()) return st;
  return std::shared_ptr<const Regex>(std::move(re));
}

bool Regex::ClassHas(const Inst& in, uint32_t c) const {
  const auto& ranges = classes_[in.cls];
  bool found = false;
  for (const auto& r : ranges) {
    if (c >= r.lo && c <= r.hi) {
      found = true;
      break;
    }
  }
  if (!found && in.fold) {
    uint32_t l = FoldLower(c);
    if (l != c) {
      for (const auto& r : ranges) {
        if (l >= r.lo && l <= r.hi) {
          found = true;
          break;
        }
      }
    }
  }
  return found != in.negate;
}

bool Regex::FullMatch(std::string_view input) const {
  if (is_literal_) return input == literal_;
  const int n = static_cast<int>(prog_.size());
  // Sparse sets of thread pcs for the current and next position.
  std::vector<int> cur, next, stack;
  std::vector<uint32_t> mark(n, 0);
  uint32_t gen = 0;
  cur.reserve(n);
  next.reserve(n);

  uint32_t prev_c = 0xFFFFFFFF;  // none
  size_t i = 0;
  auto add = [&](std::vector<int>& list, int start_pc, uint32_t c_next, bool at_end) {
    stack.clear();
    stack.push_back(start_pc);
    while (!stack.empty()) {
      int pc = stack.back();
      stack.pop_back();
      if (mark[pc] == gen) continue;
      mark[pc] = gen;
      const Inst& in = prog_[pc];
      switch (in.op) {
        case Op::kJmp:
          stack.push_back(in.x);
          break;
        case Op::kSave:
          stack.push_back(pc + 1);
          break;
        case Op::kSplit:
          stack.push_back(in.y);
          stack.push_back(in.x);
          break;
        case Op::kAssert: {
          bool ok = false;
          switch (in.assert_kind) {
            case kBeginText:
              ok = prev_c == 0xFFFFFFFF;
              break;
            case kEndText:
              ok = at_end;
              break;
            case kBeginLine:
              ok = prev_c == 0xFFFFFFFF || prev_c == '\n';
              break;
            case kEndLine:
              ok = at_end || c_next == '\n';
              break;
            case kWordBoundary:
            case kNotWordBoundary: {
              bool a = prev_c != 0xFFFFFFFF && IsWordChar(prev_c);
              bool b = !at_end && IsWordChar(c_next);
              ok = (a != b) == (in.assert_kind == kWordBoundary);
              break;
            }
          }
          if (ok) stack.push_back(pc + 1);
          break;
        }
        default:
          list.push_back(pc);
      }
    }
  };

  size_t len = 0;
  uint32_t c = input.empty() ? 0 : DecodeUtf8(input, 0, &len);
  ++gen;
  add(cur, 0, c, input.empty());
  while (i < input.size()) {
    if (cur.empty()) return false;
    size_t next_i = i + len;
    uint32_t c_after = 0;
    size_t len_after = 0;
    bool end_after = next_i >= input.size();
    if (!end_after) c_after = DecodeUtf8(input, next_i, &len_after);
    ++gen;
    next.clear();
    prev_c = c;  // the assertions evaluated in `add` look at the char before next_i
    for (int pc : cur) {
      const Inst& in = prog_[pc];
      bool ok = false;
      switch (in.op) {
        case Op::kChar:
          ok = in.fold ? FoldLower(c) == in.c : c == in.c;
          break;
        case Op::kAny:
          ok = true;
          break;
        case Op::kAnyNotNl:
          ok = c != '\n';
          break;
        case Op::kClass:
          ok = ClassHas(in, c);
          break;
        default:
          break;
      }
      if (ok) add(next, pc + 1, c_after, end_after);
    }
    std::swap(cur, next);
    i = next_i;
    c = c_after;
    len = len_after;
  }
  for (int pc : cur) {
    if (prog_[pc].op == Op::kMatch) return true;
  }
  return false;
}

bool Regex::FullMatchCaptures(std::string_view input, std::vector<int>* caps) const {
  const int ncap = 2 * (num_groups_ + 1);
  caps->assign(ncap, -1);
  if (is_literal_) {
    if (input != literal_) return false;
    (*caps)[0] = 0;
    (*caps)[1] = static_cast<int>(input.size());
    return true;
  }
  const int n = static_cast<int>(prog_.size());
  struct Thread {
    int pc;
    std::vector<int> caps;
  };
  std::vector<Thread> cur, next;
  std::vector<std::pair<int, std::vector<int>>> stack;
  std::vector<uint32_t> mark(n, 0);
  uint32_t gen = 0;
  uint32_t prev_c = 0xFFFFFFFF;
  auto add = [&](std::vector<Thread>& list, int start_pc, std::vector<int> start_caps, size_t at,
                 uint32_t c_next, bool at_end) {
    stack.clear();
    stack.emplace_back(start_pc, std::move(start_caps));
    while (!stack.empty()) {
      auto [pc, tc] = std::move(stack.back());
      stack.pop_back();
      if (mark[pc] == gen) continue;
      mark[pc] = gen;
      const Inst& in = prog_[pc];
      switch (in.op) {
        case Op::kJmp:
          stack.emplace_back(in.x, std::move(tc));
          break;
        case Op::kSplit:
          stack.emplace_back(in.y, tc);
          stack.emplace_back(in.x, std::move(tc));
          break;
        case Op::kSave:
          if (static_cast<int>(in.c) < ncap) tc[in.c] = static_cast<int>(at);
          stack.emplace_back(pc + 1, std::move(tc));
          break;
        case Op::kAssert: {
          bool ok = false;
          switch (in.assert_kind) {
            case kBeginText:
              ok = prev_c == 0xFFFFFFFF;
              break;
            case kEndText:
              ok = at_end;
              break;
            case kBeginLine:
              ok = prev_c == 0xFFFFFFFF || prev_c == '\n';
              break;
            case kEndLine:
              ok = at_end || c_next == '\n';
              break;
            default: {
              bool a = prev_c != 0xFFFFFFFF && IsWordChar(prev_c);
              bool b = !at_end && IsWordChar(c_next);
              ok = (a != b) == (in.assert_kind == kWordBoundary);
            }
          }
          if (ok) stack.emplace_back(pc + 1, std::move(tc));
          break;
        }
        default:
          list.push_back(Thread{pc, std::move(tc)});
      }
    }
  };
  size_t len = 0;
  size_t i = 0;
  uint32_t c = input.empty() ? 0 : DecodeUtf8(input, 0, &len);
  ++gen;
  std::vector<int> init(ncap, -1);
  init[0] = 0;
  add(cur, 0, init, 0, c, input.empty());
  while (i < input.size()) {
    if (cur.empty()) return false;
    size_t next_i = i + len;
    uint32_t c_after = 0;
    size_t len_after = 0;
    bool end_after = next_i >= input.size();
    if (!end_after) c_after = DecodeUtf8(input, next_i, &len_after);
    ++gen;
    next.clear();
    prev_c = c;
    for (auto& t : cur) {
      const Inst& in = prog_[t.pc];
      bool ok = false;
      switch (in.op) {
        case Op::kChar:
          ok = in.fold ? FoldLower(c) == in.c : c == in.c;
          break;
        case Op::kAny:
          ok = true;
          break;
        case Op::kAnyNotNl:
          ok = c != '\n';
          break;
        case Op::kClass:
          ok = ClassHas(in, c);
          break;
        default:
          break;
      }
      if (ok) add(next, t.pc + 1, std::move(t.caps), next_i, c_after, end_after);
    }
    std::swap(cur, next);
    i = next_i;
    c = c_after;
    len = len_after;
  }
  for (auto& t : cur) {
    if (prog_[t.pc].op == Op::kMatch) {
      *caps = std::move(t.caps);
      (*caps)[1] = static_cast<int>(input.size());
      return true;
    }
  }
  return false;
}

std::string Regex::Expand(std::string_view tmpl, std::string_view input,
                          const std::vector<int>& caps) const {
  std::string out;
  auto group_text = [&](std::string_view name) -> std::string_view {
    int g = -1;
    bool numeric = !name.empty();
    for (char ch : name) numeric = numeric && ch >= '0' && ch <= '9';
    if (numeric) {
      if (name.size() > 6) return {};
      g = std::stoi(std::string(name));
    } else {
      for (const auto& [nm, idx] : group_names_) {
        if (nm == name) {
          g = idx;
          break;
        }
      }
    }
    if (g < 0 || 2 * g + 1 >= static_cast<int>(caps.size()) || caps[2 * g] < 0) return {};
    return input.substr(caps[2 * g], caps[2 * g + 1] - caps[2 * g]);
  };
  auto is_name_char = [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_';
  };
  size_t i = 0;
  while (i < tmpl.size()) {
    char ch = tmpl[i];
    if (ch != '$' || i + 1 >= tmpl.size()) {
      out += ch;
      ++i;
      continue;
    }
    char nx = tmpl[i + 1];
    if (nx == '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (nx == '{') {
      size_t close = tmpl.find('}', i + 2);
      std::string_view name =
          close == std::string_view::npos ? std::string_view() : tmpl.substr(i + 2, close - i - 2);
      bool valid = !name.empty();
      for (char c2 : name) valid = valid && is_name_char(c2);
      if (!valid) {  // Go keeps a malformed reference literally
        out += ch;
        ++i;
        continue;
      }
      out += group_text(name);
      i = close + 1;
      continue;
    }
    size_t j = i + 1;
    while (j < tmpl.size() && is_name_char(tmpl[j])) ++j;
    if (j == i + 1) {
      out += ch;
      ++i;
      continue;
    }
    out += group_text(tmpl.substr(i + 1, j - i - 1));
    i = j;
  }
  return out;
}

}  // namespace llmscope::promql
