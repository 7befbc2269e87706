#include "common/mesh/app_protocol.h"

#include <strings.h>

#include <string>

namespace ambit::mesh {
namespace {

// Istio's protocol names (pkg/config/protocol), as far as this model needs.
enum class Istio : uint8_t {
  kUnsupported, kTcp, kUdp, kGrpc, kGrpcWeb, kHttp, kHttpProxy, kHttp2, kHttps, kTls, kMongo,
  kRedis, kMysql
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

Istio ParseIstio(std::string_view name) {
  struct Entry {
    std::string_view text;
    Istio protocol;
  };
  static constexpr Entry kNames[] = {
      {"tcp", Istio::kTcp},     {"udp", Istio::kUdp},           {"grpc", Istio::kGrpc},
      {"http", Istio::kHttp},   {"http_proxy", Istio::kHttpProxy}, {"http2", Istio::kHttp2},
      {"https", Istio::kHttps}, {"tls", Istio::kTls},           {"mongo", Istio::kMongo},
      {"redis", Istio::kRedis}, {"mysql", Istio::kMysql},
  };
  for (const Entry& e : kNames) {
    if (EqualsIgnoreCase(name, e.text)) return e.protocol;
  }
  return Istio::kUnsupported;
}

// Kubernetes' appProtocol values, then grpc-web*, then the prefix before '-'.
Istio Classify(std::string_view text, bool is_app_protocol) {
  if (is_app_protocol) {
    if (text == "kubernetes.io/h2c") return Istio::kHttp2;
    if (text == "kubernetes.io/ws") return Istio::kHttp;
    if (text == "kubernetes.io/wss") return Istio::kHttps;
  }
  constexpr std::string_view kGrpcWeb = "grpc-web";
  if (text.size() >= kGrpcWeb.size() && EqualsIgnoreCase(text.substr(0, kGrpcWeb.size()), kGrpcWeb)) {
    return Istio::kGrpcWeb;
  }
  size_t dash = text.find('-');
  if (dash != std::string_view::npos) text = text.substr(0, dash);
  return ParseIstio(text);
}

bool IsWellKnownTcpPort(uint16_t port) {
  return port == 25 || port == 53 || port == 3306 || port == 27017;
}

}  // namespace

AppProtocol ProtocolFromKubernetes(uint16_t service_port, std::string_view port_name,
                                   const std::string* app_protocol) {
  Istio p = app_protocol != nullptr ? Classify(*app_protocol, true) : Classify(port_name, false);
  switch (p) {
    case Istio::kHttp: return AppProtocol::kHttp11;
    case Istio::kHttp2: return AppProtocol::kHttp2;
    case Istio::kGrpc: return AppProtocol::kGrpc;
    case Istio::kTls:
    case Istio::kHttps: return AppProtocol::kTls;
    case Istio::kTcp: return AppProtocol::kTcp;
    case Istio::kUnsupported:
      return IsWellKnownTcpPort(service_port) ? AppProtocol::kTcp : AppProtocol::kUnknown;
    default: return AppProtocol::kUnknown;  // grpc-web, http_proxy, udp, mongo, redis, mysql
  }
}

bool IsKnownIstioProtocol(std::string_view text) {
  return Classify(text, true) != Istio::kUnsupported;
}

std::string_view AppProtocolName(AppProtocol p) {
  switch (p) {
    case AppProtocol::kUnknown: return "UNKNOWN";
    case AppProtocol::kHttp11: return "HTTP11";
    case AppProtocol::kHttp2: return "HTTP2";
    case AppProtocol::kGrpc: return "GRPC";
    case AppProtocol::kTcp: return "TCP";
    case AppProtocol::kTls: return "TLS";
  }
  return "UNKNOWN";
}

}  // namespace ambit::mesh
