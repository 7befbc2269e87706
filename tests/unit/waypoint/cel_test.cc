// The CEL subset of Telemetry filters and tag overrides (route/cel_expr.h):
// parse errors for what is outside the subset, and a truth table of the
// operators against a fixed request.
#include <doctest/doctest.h>

#include <map>

#include "waypoint/route/cel_expr.h"

namespace ambit::waypoint::route::cel {
namespace {

class Fake : public AttributeSource {
 public:
  int64_t code = 503;
  std::string method = "GET", path = "/api/v1/users?x=1", host = "echo.demo", flags = "UF";
  bool mtls = true;
  std::map<std::string, std::string> headers = {{"x-user", "alice"}, {"x-empty", ""}};
  Value Get(Attr a, std::string_view key) const override {
    switch (a) {
      case Attr::kResponseCode: return Value{code};
      case Attr::kRequestMethod: return Value{method};
      case Attr::kRequestPath: return Value{path};
      case Attr::kRequestHost: return Value{host};
      case Attr::kResponseFlags: return Value{flags};
      case Attr::kConnectionMtls: return Value{mtls};
      case Attr::kSourceNamespace: return Value{std::string("frontend")};
      case Attr::kDestinationPort: return Value{int64_t{80}};
      case Attr::kRequestHeader: {
        auto it = headers.find(std::string(key));
        if (it == headers.end()) return Value{Error{}};
        return Value{it->second};
      }
      default: return Value{Error{}};
    }
  }
};

bool Eval(std::string_view text, const Fake& f = Fake()) {
  auto e = Expr::Parse(text);
  REQUIRE_MESSAGE(e.ok(), text, ": ", e.status().ToString());
  return e->Matches(f);
}

std::string ParseError(std::string_view text) {
  auto e = Expr::Parse(text);
  if (e.ok()) return "";
  return std::string(e.status().message());
}

TEST_CASE("cel: the seed's filter logs only 4xx/5xx") {
  Fake f;
  for (int64_t code : {200, 204, 301, 399}) {
    f.code = code;
    CHECK_FALSE(Eval("response.code >= 400", f));
  }
  for (int64_t code : {400, 403, 404, 500, 503}) {
    f.code = code;
    CHECK(Eval("response.code >= 400", f));
  }
}

TEST_CASE("cel: comparison truth table") {
  // 503 against 400 / 503 / 600, each operator.
  struct Row {
    const char* expr;
    bool want;
  };
  const Row rows[] = {
      {"response.code == 503", true},  {"response.code == 400", false},
      {"response.code != 503", false}, {"response.code != 400", true},
      {"response.code < 600", true},   {"response.code < 503", false},
      {"response.code <= 503", true},  {"response.code <= 502", false},
      {"response.code > 400", true},   {"response.code > 503", false},
      {"response.code >= 503", true},  {"response.code >= 504", false},
      {"request.method == 'GET'", true}, {"request.method == \"POST\"", false},
      {"request.method < 'HEAD'", true},  // strings order bytewise
      {"-1 < 0", true},
      {"connection.mtls", true},       {"!connection.mtls", false},
      {"connection.mtls == true", true},
  };
  for (const Row& r : rows) {
    CAPTURE(r.expr);
    CHECK(Eval(r.expr) == r.want);
  }
}

TEST_CASE("cel: && || ! and parentheses, with CEL's error absorption") {
  CHECK(Eval("response.code >= 500 && request.method == 'GET'"));
  CHECK_FALSE(Eval("response.code >= 500 && request.method == 'POST'"));
  CHECK(Eval("response.code < 500 || request.method == 'GET'"));
  CHECK_FALSE(Eval("response.code < 500 || request.method == 'POST'"));
  CHECK(Eval("!(response.code < 500)"));
  CHECK(Eval("(response.code == 200 || response.code == 503) && !(request.method == 'PUT')"));
  CHECK(Eval("true || false && false"));  // && binds tighter
  CHECK_FALSE(Eval("(true || false) && false"));
  // A missing header is an error: false alone, absorbed by || true and && false.
  CHECK_FALSE(Eval("request.headers['x-missing'] == 'a'"));
  CHECK_FALSE(Eval("!(request.headers['x-missing'] == 'a')"));
  CHECK(Eval("request.headers['x-missing'] == 'a' || response.code == 503"));
  CHECK(Eval("response.code == 503 || request.headers['x-missing'] == 'a'"));
  CHECK_FALSE(Eval("request.headers['x-missing'] == 'a' && response.code == 503"));
  CHECK_FALSE(Eval("response.code == 400 && request.headers['x-missing'] == 'a'"));
}

TEST_CASE("cel: headers, in, startsWith/endsWith/contains") {
  CHECK(Eval("request.headers['x-user'] == 'alice'"));
  CHECK(Eval("request.headers['X-User'] == 'alice'"));  // names compare lower-case
  CHECK(Eval("request.headers['x-empty'] == ''"));
  CHECK(Eval("request.method in ['GET', 'HEAD']"));
  CHECK_FALSE(Eval("request.method in ['POST']"));
  CHECK(Eval("response.code in [500, 503]"));
  CHECK_FALSE(Eval("response.code in []"));
  CHECK(Eval("request.path.startsWith('/api/')"));
  CHECK_FALSE(Eval("request.path.startsWith('/health')"));
  CHECK(Eval("request.path.endsWith('x=1')"));
  CHECK(Eval("request.host.contains('demo')"));
  CHECK(Eval("request.headers['x-user'].startsWith('al')"));
  CHECK(Eval("response.flags == 'UF'"));
  CHECK(Eval("source.namespace == 'frontend' && destination.port == 80"));
}

TEST_CASE("cel: the headers an expression reads are listed for capture") {
  auto e = Expr::Parse("request.headers['X-A'] == 'a' || request.headers['x-b'] == 'b'");
  REQUIRE(e.ok());
  CHECK(e->headers() == std::vector<std::string>{"x-a", "x-b"});
}

TEST_CASE("cel: values as tags") {
  Fake f;
  auto e = Expr::Parse("request.host");
  REQUIRE(e.ok());
  CHECK(e->Eval(f).AsTag() == "echo.demo");
  e = Expr::Parse("response.code");
  REQUIRE(e.ok());
  CHECK(e->Eval(f).AsTag() == "503");
  e = Expr::Parse("request.headers['x-nope']");
  REQUIRE(e.ok());
  CHECK_FALSE(e->Eval(f).AsTag().has_value());
}

TEST_CASE("cel: outside the subset is a parse error with a column") {
  CHECK(ParseError("response.code >= ") .find("column") != std::string::npos);
  CHECK(ParseError("size(request.path) > 3").find("'size' is not supported") != std::string::npos);
  CHECK(ParseError("request.nope == 1").find("attribute 'request.nope'") != std::string::npos);
  CHECK(ParseError("request.path.matches('x')").find("'matches' is not supported") !=
        std::string::npos);
  CHECK(ParseError("response.code >= '400'").find("cannot compare int with string") !=
        std::string::npos);
  CHECK(ParseError("response.code && true").find("needs bool") != std::string::npos);
  CHECK(ParseError("request.headers.x == 'a'").find("request.headers needs") !=
        std::string::npos);
  CHECK(ParseError("1.5 < 2").find("only int") != std::string::npos);
  CHECK(ParseError("'open").find("unterminated") != std::string::npos);
  CHECK(ParseError("a ? b : c").find("unexpected") != std::string::npos);
  CHECK(ParseError("response.code in 3").find("needs a list") != std::string::npos);
  CHECK(ParseError("[1, 2]").find("list") != std::string::npos);
  CHECK_FALSE(ParseError(std::string(5000, '(')).empty());
  CHECK(ParseError(std::string(100, '(') + "true" + std::string(100, ')')).find("nested") !=
        std::string::npos);
  CHECK(ParseError(std::string(100, '!') + "true").find("nested") != std::string::npos);
}

}  // namespace
}  // namespace ambit::waypoint::route::cel
