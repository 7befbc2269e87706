// A CEL subset for Telemetry `accessLogging.filter.expression` and metrics
// `tagOverrides.value` (what users write against Envoy's attributes):
// int/string/bool/null literals, lists `[...]`, attributes (`response.code`,
// `request.headers['x-user']`, `connection.mtls`, `source.address`, ...),
// `== != < <= > >=`, `in`, `&& || !`, unary `-`, parentheses and the string
// methods startsWith / endsWith / contains. Anything else is a parse error
// (the compiler reports it; nothing is silently dropped). Evaluation follows
// CEL's rules where the subset reaches them: a missing header or a type
// mismatch is an error value; `false && error` is false, `true || error` is
// true; a filter whose result is not `true` does not log (as Envoy's
// expression filter). Pure: the waypoint supplies attribute values per
// request through AttributeSource.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/base/status.h"

namespace ambit::waypoint::route::cel {

// The attributes the waypoint knows (Envoy attribute names).
enum class Attr : uint8_t {
  kResponseCode,       // int
  kResponseFlags,      // string ("-" when none; Envoy's short form)
  kResponseGrpcStatus, // string (grpc-status, "" when none) — ambit extension over int
  kResponseSize,       // int: response body bytes
  kResponseCodeDetails,// string
  kRequestMethod,      // string
  kRequestPath,        // string (with query)
  kRequestUrlPath,     // string (without query)
  kRequestHost,        // string (:authority)
  kRequestScheme,      // string
  kRequestProtocol,    // string ("HTTP/1.1", "HTTP/2")
  kRequestId,          // string (x-request-id)
  kRequestUserAgent,   // string
  kRequestSize,        // int: request body bytes
  kRequestHeader,      // string, keyed: request.headers['name']
  kConnectionMtls,     // bool
  kConnectionSni,      // string (connection.requested_server_name)
  kSourceAddress,      // string (ip)
  kSourcePort,         // int
  kSourcePrincipal,    // string (SPIFFE id; "" when plaintext)
  kSourceNamespace,    // string (source workload's)
  kSourceWorkload,     // string
  kDestinationAddress, // string (the VIP / authority ip)
  kDestinationPort,    // int
  kDestinationService, // string (service hostname) — destination.service.host too
  kDestinationNamespace,  // string (service namespace)
  kUpstreamAddress,    // string (endpoint ip)
  kUpstreamPort,       // int
  kRouteName,          // string (xds.route_name)
  kClusterName,        // string (xds.cluster_name)
};

// The attribute's name as written (for /config_dump and errors).
std::string_view AttrName(Attr a);

struct Value;
using List = std::vector<Value>;

// An evaluation result. `Error` carries no message (hot path): where it came
// from is known at compile time.
struct Error {
  bool operator==(const Error&) const = default;
};
struct Null {
  bool operator==(const Null&) const = default;
};
struct Value {
  std::variant<Error, Null, bool, int64_t, std::string, List> v;
  bool is_error() const { return std::holds_alternative<Error>(v); }
  bool is_true() const { return std::holds_alternative<bool>(v) && std::get<bool>(v); }
  // A tag value: ints in decimal, bools true/false, strings as is;
  // error/null/list → nullopt.
  std::optional<std::string> AsTag() const;
};

// Supplies one request's attributes. `key` is the header name (lower case)
// for kRequestHeader, empty otherwise. Missing → Error{}.
class AttributeSource {
 public:
  virtual ~AttributeSource() = default;
  virtual Value Get(Attr attr, std::string_view key) const = 0;
};

struct Node;

// A parsed expression (immutable; shared by workers).
class Expr {
 public:
  // Parses `text`; InvalidArgument "column N: ..." on anything outside the
  // subset, or a type mismatch visible without a request (e.g.
  // `response.code >= "400"`). Bounded: 4 KiB of text, 64 levels of nesting.
  static StatusOr<Expr> Parse(std::string_view text);
  Value Eval(const AttributeSource& src) const;
  // true only when the expression evaluates to boolean true.
  bool Matches(const AttributeSource& src) const { return Eval(src).is_true(); }
  const std::string& text() const { return text_; }
  // Request headers the expression reads (lower case), for capture.
  const std::vector<std::string>& headers() const { return headers_; }

 private:
  std::shared_ptr<const Node> root_;
  std::string text_;
  std::vector<std::string> headers_;
  friend class Parser;
};

}  // namespace ambit::waypoint::route::cel
