// Port protocols: istiod's choice of a Kubernetes Service port's protocol
// (pkg/config/kube ConvertProtocol, then the ambient index's mapping onto
// workload.proto's AppProtocol), so the standalone YAML yields what istiod
// would have put into WDS for the same Service.
//
//  1. `appProtocol` wins over the port name when given. Kubernetes' own
//     values: `kubernetes.io/h2c` → HTTP2, `kubernetes.io/ws` → HTTP11,
//     `kubernetes.io/wss` → TLS (Istio's HTTPS).
//  2. Otherwise (and for any other appProtocol value) the text's prefix up to
//     the first '-' names the protocol, case-insensitively: `http` → HTTP11,
//     `http2` → HTTP2, `grpc` → GRPC, `tcp` → TCP, `tls` and `https` → TLS.
//     `grpc-web*`, `http_proxy`, `udp`, `mongo`, `redis`, `mysql` are Istio
//     protocols without an AppProtocol value → UNKNOWN.
//  3. Nothing recognised: TCP on the well-known ports 25, 53, 3306 and 27017
//     (istiod skips sniffing there), UNKNOWN elsewhere.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ambit::mesh {

// A service port's application protocol; values as workload.proto's
// AppProtocol (UNKNOWN 0, HTTP11 1, HTTP2 2, GRPC 3, TCP 4, TLS 5).
enum class AppProtocol : uint8_t { kUnknown, kHttp11, kHttp2, kGrpc, kTcp, kTls };

// app_protocol: null when the port has no appProtocol (an empty one counts
// as given, as in Kubernetes).
AppProtocol ProtocolFromKubernetes(uint16_t service_port, std::string_view port_name,
                                   const std::string* app_protocol);

// True when `text` (a port name or appProtocol) names a protocol Istio knows
// (rule 1 or 2 above), even one that maps to UNKNOWN.
bool IsKnownIstioProtocol(std::string_view text);

// workload.proto's enum names: UNKNOWN, HTTP11, HTTP2, GRPC, TCP, TLS.
std::string_view AppProtocolName(AppProtocol p);

}  // namespace ambit::mesh
