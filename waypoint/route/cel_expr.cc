#include "waypoint/route/cel_expr.h"

#include "waypoint/route/cel_expr_internal.h"

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <optional>

#include "common/base/ascii.h"

namespace ambit::waypoint::route::cel {

namespace {

enum class Type : uint8_t { kDyn, kBool, kInt, kString, kList, kNull };

std::string_view TypeName(Type t) {
  switch (t) {
    case Type::kBool: return "bool";
    case Type::kInt: return "int";
    case Type::kString: return "string";
    case Type::kList: return "list";
    case Type::kNull: return "null";
    case Type::kDyn: break;
  }
  return "dyn";
}

struct AttrInfo {
  std::string_view name;
  Attr attr;
  Type type;
};

constexpr std::array<AttrInfo, 31> kAttrs = {{
    {"response.code", Attr::kResponseCode, Type::kInt},
    {"response.flags", Attr::kResponseFlags, Type::kString},
    {"response.grpc_status", Attr::kResponseGrpcStatus, Type::kString},
    {"response.size", Attr::kResponseSize, Type::kInt},
    {"response.code_details", Attr::kResponseCodeDetails, Type::kString},
    {"request.method", Attr::kRequestMethod, Type::kString},
    {"request.path", Attr::kRequestPath, Type::kString},
    {"request.url_path", Attr::kRequestUrlPath, Type::kString},
    {"request.host", Attr::kRequestHost, Type::kString},
    {"request.scheme", Attr::kRequestScheme, Type::kString},
    {"request.protocol", Attr::kRequestProtocol, Type::kString},
    {"request.id", Attr::kRequestId, Type::kString},
    {"request.useragent", Attr::kRequestUserAgent, Type::kString},
    {"request.size", Attr::kRequestSize, Type::kInt},
    {"request.headers", Attr::kRequestHeader, Type::kString},
    {"connection.mtls", Attr::kConnectionMtls, Type::kBool},
    {"connection.requested_server_name", Attr::kConnectionSni, Type::kString},
    {"source.address", Attr::kSourceAddress, Type::kString},
    {"source.port", Attr::kSourcePort, Type::kInt},
    {"source.principal", Attr::kSourcePrincipal, Type::kString},
    {"source.namespace", Attr::kSourceNamespace, Type::kString},
    {"source.workload.name", Attr::kSourceWorkload, Type::kString},
    {"destination.address", Attr::kDestinationAddress, Type::kString},
    {"destination.port", Attr::kDestinationPort, Type::kInt},
    {"destination.service.host", Attr::kDestinationService, Type::kString},
    {"destination.service", Attr::kDestinationService, Type::kString},
    {"destination.service.namespace", Attr::kDestinationNamespace, Type::kString},
    {"upstream.address", Attr::kUpstreamAddress, Type::kString},
    {"upstream.port", Attr::kUpstreamPort, Type::kInt},
    {"xds.route_name", Attr::kRouteName, Type::kString},
    {"xds.cluster_name", Attr::kClusterName, Type::kString},
}};

const AttrInfo* FindAttr(std::string_view name) {
  for (const AttrInfo& a : kAttrs) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

}  // namespace

std::string_view AttrName(Attr a) {
  for (const AttrInfo& i : kAttrs) {
    if (i.attr == a) return i.name;
  }
  return "?";
}

std::optional<std::string> Value::AsTag() const {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (const auto* b = std::get_if<bool>(&v)) return std::string(*b ? "true" : "false");
  return std::nullopt;
}

namespace {

using NodePtr = std::shared_ptr<const Node>;

struct Token {
  enum Kind : uint8_t { kEnd, kIdent, kInt, kString, kPunct } kind = kEnd;
  std::string text;  // identifier / decoded string / punctuation
  int64_t number = 0;
  size_t col = 0;
};

}  // namespace

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  StatusOr<Expr> Run() {
    if (s_.size() > 4096) return Fail(0, "expression longer than 4096 bytes");
    RETURN_IF_ERROR(Next());
    auto root = ParseOr();
    if (!root.ok()) return root.status();
    if (tok_.kind != Token::kEnd) return Fail(tok_.col, fmt::format("unexpected '{}'", tok_.text));
    auto type = Check(**root);
    if (!type.ok()) return type.status();
    if (*type != Type::kDyn && *type != Type::kBool && *type != Type::kString &&
        *type != Type::kInt) {
      return Fail(0, fmt::format("the expression is a {}", TypeName(*type)));
    }
    Expr e;
    e.root_ = *root;
    e.text_ = std::string(s_);
    e.headers_ = std::move(headers_);
    return e;
  }

 private:
  static Status Fail(size_t col, std::string msg) {
    return absl::InvalidArgumentError(fmt::format("column {}: {}", col + 1, msg));
  }

  Status Next() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    tok_ = Token{};
    tok_.col = pos_;
    if (pos_ >= s_.size()) return absl::OkStatus();
    const char c = s_[pos_];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t b = pos_;
      while (pos_ < s_.size() &&
             (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_')) {
        ++pos_;
      }
      tok_.kind = Token::kIdent;
      tok_.text = std::string(s_.substr(b, pos_ - b));
      return absl::OkStatus();
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      int64_t v = 0;
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
        if (v > (INT64_MAX - 9) / 10) return Fail(tok_.col, "integer out of range");
        v = v * 10 + (s_[pos_++] - '0');
      }
      if (pos_ < s_.size() && (s_[pos_] == '.' || s_[pos_] == 'u' || s_[pos_] == 'e')) {
        return Fail(pos_, "only int literals are supported");
      }
      tok_.kind = Token::kInt;
      tok_.number = v;
      tok_.text = std::to_string(v);
      return absl::OkStatus();
    }
    if (c == '\'' || c == '"') {
      ++pos_;
      std::string out;
      while (pos_ < s_.size() && s_[pos_] != c) {
        char x = s_[pos_++];
        if (x == '\\') {
          if (pos_ >= s_.size()) break;
          const char e = s_[pos_++];
          switch (e) {
            case 'n': x = '\n'; break;
            case 't': x = '\t'; break;
            case '\\': case '\'': case '"': x = e; break;
            default: return Fail(pos_ - 2, fmt::format("escape \\{} is not supported", e));
          }
        }
        out.push_back(x);
      }
      if (pos_ >= s_.size()) return Fail(tok_.col, "unterminated string");
      ++pos_;
      tok_.kind = Token::kString;
      tok_.text = std::move(out);
      return absl::OkStatus();
    }
    static constexpr std::array<std::string_view, 8> kTwo = {"==", "!=", "<=", ">=", "&&", "||"};
    for (std::string_view p : kTwo) {
      if (!p.empty() && s_.substr(pos_, 2) == p) {
        tok_.kind = Token::kPunct;
        tok_.text = std::string(p);
        pos_ += 2;
        return absl::OkStatus();
      }
    }
    if (std::string_view("<>!()[].,-").find(c) != std::string_view::npos) {
      tok_.kind = Token::kPunct;
      tok_.text = std::string(1, c);
      ++pos_;
      return absl::OkStatus();
    }
    return Fail(pos_, fmt::format("unexpected character '{}'", c));
  }

  bool Is(std::string_view p) const { return tok_.kind == Token::kPunct && tok_.text == p; }

  Status Expect(std::string_view p) {
    if (!Is(p)) {
      return Fail(tok_.col, fmt::format("expected '{}'{}", p,
                                        tok_.kind == Token::kEnd ? " at the end" : ""));
    }
    return Next();
  }

  static NodePtr Make(Op op, std::vector<NodePtr> kids) {
    auto n = std::make_shared<Node>();
    n->op = op;
    n->kids = std::move(kids);
    return n;
  }

  StatusOr<NodePtr> Nested(StatusOr<NodePtr> (Parser::*f)()) {
    if (++depth_ > 64) return Fail(tok_.col, "nested more than 64 levels");
    auto r = (this->*f)();
    --depth_;
    return r;
  }

  StatusOr<NodePtr> ParseOr() {
    ASSIGN_OR_RETURN(NodePtr left, Nested(&Parser::ParseAnd));
    while (Is("||")) {
      RETURN_IF_ERROR(Next());
      ASSIGN_OR_RETURN(NodePtr right, Nested(&Parser::ParseAnd));
      left = Make(Op::kOr, {left, right});
    }
    return left;
  }

  StatusOr<NodePtr> ParseAnd() {
    ASSIGN_OR_RETURN(NodePtr left, Nested(&Parser::ParseCmp));
    while (Is("&&")) {
      RETURN_IF_ERROR(Next());
      ASSIGN_OR_RETURN(NodePtr right, Nested(&Parser::ParseCmp));
      left = Make(Op::kAnd, {left, right});
    }
    return left;
  }

  StatusOr<NodePtr> ParseCmp() {
    ASSIGN_OR_RETURN(NodePtr left, Nested(&Parser::ParseUnary));
    static constexpr std::array<std::pair<std::string_view, Op>, 6> kOps = {{
        {"==", Op::kEq}, {"!=", Op::kNe}, {"<=", Op::kLe}, {">=", Op::kGe}, {"<", Op::kLt},
        {">", Op::kGt},
    }};
    for (const auto& [p, op] : kOps) {
      if (Is(p)) {
        RETURN_IF_ERROR(Next());
        ASSIGN_OR_RETURN(NodePtr right, Nested(&Parser::ParseUnary));
        return Make(op, {left, right});
      }
    }
    if (tok_.kind == Token::kIdent && tok_.text == "in") {
      RETURN_IF_ERROR(Next());
      ASSIGN_OR_RETURN(NodePtr right, Nested(&Parser::ParseUnary));
      return Make(Op::kIn, {left, right});
    }
    return left;
  }

  StatusOr<NodePtr> ParseUnary() {
    if (Is("!")) {
      RETURN_IF_ERROR(Next());
      ASSIGN_OR_RETURN(NodePtr x, Nested(&Parser::ParseUnary));
      return Make(Op::kNot, {x});
    }
    if (Is("-")) {
      RETURN_IF_ERROR(Next());
      ASSIGN_OR_RETURN(NodePtr x, Nested(&Parser::ParseUnary));
      return Make(Op::kNeg, {x});
    }
    return ParsePostfix();
  }

  StatusOr<NodePtr> ParsePostfix() {
    ASSIGN_OR_RETURN(NodePtr x, ParsePrimary());
    while (Is(".")) {
      const size_t col = tok_.col;
      RETURN_IF_ERROR(Next());
      if (tok_.kind != Token::kIdent) return Fail(tok_.col, "expected a method name");
      const std::string name = tok_.text;
      RETURN_IF_ERROR(Next());
      Op op;
      if (name == "startsWith") op = Op::kStartsWith;
      else if (name == "endsWith") op = Op::kEndsWith;
      else if (name == "contains") op = Op::kContains;
      else return Fail(col, fmt::format("'{}' is not supported (startsWith, endsWith, contains)", name));
      RETURN_IF_ERROR(Expect("("));
      ASSIGN_OR_RETURN(NodePtr arg, Nested(&Parser::ParseOr));
      RETURN_IF_ERROR(Expect(")"));
      x = Make(op, {x, arg});
    }
    if (Is("[")) return Fail(tok_.col, "indexing is only supported on request.headers");
    return x;
  }

  StatusOr<NodePtr> ParsePrimary() {
    auto n = std::make_shared<Node>();
    const size_t col = tok_.col;
    switch (tok_.kind) {
      case Token::kInt:
        n->literal.v = tok_.number;
        RETURN_IF_ERROR(Next());
        return NodePtr(n);
      case Token::kString:
        n->literal.v = tok_.text;
        RETURN_IF_ERROR(Next());
        return NodePtr(n);
      case Token::kIdent: break;
      case Token::kPunct:
        if (Is("(")) {
          RETURN_IF_ERROR(Next());
          ASSIGN_OR_RETURN(NodePtr x, Nested(&Parser::ParseOr));
          RETURN_IF_ERROR(Expect(")"));
          return x;
        }
        if (Is("[")) {
          RETURN_IF_ERROR(Next());
          n->op = Op::kList;
          while (!Is("]")) {
            ASSIGN_OR_RETURN(NodePtr x, Nested(&Parser::ParseOr));
            n->kids.push_back(x);
            if (!Is(",")) break;
            RETURN_IF_ERROR(Next());
          }
          RETURN_IF_ERROR(Expect("]"));
          return NodePtr(n);
        }
        return Fail(col, fmt::format("unexpected '{}'", tok_.text));
      case Token::kEnd: return Fail(col, "expression ends early");
    }
    if (tok_.text == "true" || tok_.text == "false") {
      n->literal.v = tok_.text == "true";
      RETURN_IF_ERROR(Next());
      return NodePtr(n);
    }
    if (tok_.text == "null") {
      n->literal.v = Null{};
      RETURN_IF_ERROR(Next());
      return NodePtr(n);
    }
    // An attribute path: ident(.ident)* — stops before `.method(`.
    std::string path = tok_.text;
    RETURN_IF_ERROR(Next());
    if (Is("(")) return Fail(col, fmt::format("function '{}' is not supported", path));
    while (Is(".") && path != "request.headers") {
      const size_t save_pos = pos_;
      const Token save = tok_;
      RETURN_IF_ERROR(Next());
      if (tok_.kind != Token::kIdent) return Fail(tok_.col, "expected a field name");
      const std::string part = tok_.text;
      RETURN_IF_ERROR(Next());
      if (Is("(")) {  // a method on what came before: rewind to the '.'
        pos_ = save_pos;
        tok_ = save;
        break;
      }
      path += "." + part;
    }
    const AttrInfo* a = FindAttr(path);
    if (a == nullptr) return Fail(col, fmt::format("attribute '{}' is not supported", path));
    n->op = Op::kAttr;
    n->attr = a->attr;
    if (a->attr == Attr::kRequestHeader) {
      if (!Is("[")) return Fail(tok_.col, "request.headers needs ['name']");
      RETURN_IF_ERROR(Next());
      if (tok_.kind != Token::kString) return Fail(tok_.col, "a header name must be a string literal");
      n->key = base::ToLower(tok_.text);
      headers_.push_back(n->key);
      RETURN_IF_ERROR(Next());
      RETURN_IF_ERROR(Expect("]"));
    }
    return NodePtr(n);
  }

  // Static types, so a comparison that can never succeed is an error now.
  StatusOr<Type> Check(const Node& n) {
    auto same = [](Type a, Type b) { return a == Type::kDyn || b == Type::kDyn || a == b; };
    switch (n.op) {
      case Op::kLiteral:
        if (std::holds_alternative<bool>(n.literal.v)) return Type::kBool;
        if (std::holds_alternative<int64_t>(n.literal.v)) return Type::kInt;
        if (std::holds_alternative<std::string>(n.literal.v)) return Type::kString;
        return Type::kNull;
      case Op::kAttr:
        for (const AttrInfo& a : kAttrs) {
          if (a.attr == n.attr) return a.type;
        }
        return Type::kDyn;
      case Op::kList:
        for (const auto& k : n.kids) RETURN_IF_ERROR(Check(*k).status());
        return Type::kList;
      case Op::kNot: case Op::kNeg: {
        ASSIGN_OR_RETURN(Type t, Check(*n.kids[0]));
        const Type want = n.op == Op::kNot ? Type::kBool : Type::kInt;
        if (!same(t, want)) {
          return Fail(0, fmt::format("'{}' applied to a {}", n.op == Op::kNot ? "!" : "-",
                                     TypeName(t)));
        }
        return want;
      }
      case Op::kAnd: case Op::kOr: {
        for (const auto& k : n.kids) {
          ASSIGN_OR_RETURN(Type t, Check(*k));
          if (!same(t, Type::kBool)) {
            return Fail(0, fmt::format("'{}' needs bool operands, not {}",
                                       n.op == Op::kAnd ? "&&" : "||", TypeName(t)));
          }
        }
        return Type::kBool;
      }
      case Op::kEq: case Op::kNe: case Op::kLt: case Op::kLe: case Op::kGt: case Op::kGe: {
        ASSIGN_OR_RETURN(Type a, Check(*n.kids[0]));
        ASSIGN_OR_RETURN(Type b, Check(*n.kids[1]));
        const bool ordered = n.op != Op::kEq && n.op != Op::kNe;
        if (!same(a, b) && !(!ordered && (a == Type::kNull || b == Type::kNull))) {
          return Fail(0, fmt::format("cannot compare {} with {}", TypeName(a), TypeName(b)));
        }
        if (ordered && (a == Type::kBool || a == Type::kList || a == Type::kNull)) {
          return Fail(0, fmt::format("{} values are not ordered", TypeName(a)));
        }
        return Type::kBool;
      }
      case Op::kIn: {
        ASSIGN_OR_RETURN(Type a, Check(*n.kids[0]));
        ASSIGN_OR_RETURN(Type b, Check(*n.kids[1]));
        if (b != Type::kList) return Fail(0, "'in' needs a list on its right");
        for (const auto& k : n.kids[1]->kids) {
          ASSIGN_OR_RETURN(Type e, Check(*k));
          if (!same(a, e)) {
            return Fail(0, fmt::format("'in': a {} is never in a list of {}", TypeName(a),
                                       TypeName(e)));
          }
        }
        return Type::kBool;
      }
      case Op::kStartsWith: case Op::kEndsWith: case Op::kContains: {
        for (const auto& k : n.kids) {
          ASSIGN_OR_RETURN(Type t, Check(*k));
          if (!same(t, Type::kString)) {
            return Fail(0, fmt::format("string method on a {}", TypeName(t)));
          }
        }
        return Type::kBool;
      }
    }
    return Type::kDyn;
  }

  std::string_view s_;
  size_t pos_ = 0;
  Token tok_;
  int depth_ = 0;
  std::vector<std::string> headers_;
};

StatusOr<Expr> Expr::Parse(std::string_view text) { return Parser(text).Run(); }

}  // namespace ambit::waypoint::route::cel
