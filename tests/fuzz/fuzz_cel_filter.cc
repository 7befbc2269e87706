// Fuzz target: the Telemetry filter-expression parser and evaluator
// (waypoint/route/cel_expr.h) and the access-log format parser
// (waypoint/route/access_log_format.h). Byte 0 picks: even → CEL, odd →
// format string. Properties: a parsed expression evaluates (twice, the same
// result) against a request whose attributes all exist and one where every
// lookup fails; the format's literal segments never lose text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tests/fuzz/fuzz_util.h"
#include "waypoint/route/access_log_format.h"
#include "waypoint/route/cel_expr.h"

namespace cel = ambit::waypoint::route::cel;
namespace route = ambit::waypoint::route;

namespace {

class Present : public cel::AttributeSource {
 public:
  cel::Value Get(cel::Attr a, std::string_view key) const override {
    switch (a) {
      case cel::Attr::kResponseCode: case cel::Attr::kResponseSize: case cel::Attr::kRequestSize:
      case cel::Attr::kSourcePort: case cel::Attr::kDestinationPort: case cel::Attr::kUpstreamPort:
        return cel::Value{int64_t{503}};
      case cel::Attr::kConnectionMtls: return cel::Value{true};
      default: return cel::Value{std::string(key.empty() ? "GET" : key)};
    }
  }
};

class Missing : public cel::AttributeSource {
 public:
  cel::Value Get(cel::Attr, std::string_view) const override { return cel::Value{cel::Error{}}; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] % 2 == 0) {
    auto e = cel::Expr::Parse(text);
    if (!e.ok()) {
      FUZZ_CHECK(!e.status().message().empty());
      return 0;
    }
    FUZZ_CHECK(e->text() == text);
    const Present p;
    const bool a = e->Matches(p);
    FUZZ_CHECK(a == e->Matches(p));
    (void)e->Eval(p).AsTag();
    const Missing m;
    const bool b = e->Matches(m);
    FUZZ_CHECK(b == e->Matches(m));
    for (const auto& h : e->headers()) {
      for (char c : h) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
    }
    return 0;
  }
  std::vector<std::string> unknown;
  const route::LogFormat f = route::ParseLogFormat(text, &unknown);
  size_t literal = 0, ops = 0;
  for (const auto& s : f.segments) {
    if (s.op == route::LogOp::kLiteral) {
      FUZZ_CHECK(!s.text.empty());
      literal += s.text.size();
    } else {
      ++ops;
    }
  }
  FUZZ_CHECK(literal <= text.size());
  FUZZ_CHECK(unknown.size() <= ops);
  if (text.find('%') == std::string_view::npos) {
    FUZZ_CHECK(literal == text.size() && ops == 0);
  }
  return 0;
}
