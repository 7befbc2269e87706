// Shared pieces: network addresses, gateways, port maps.
#include <arpa/inet.h>
#include <fmt/format.h>

#include <charconv>

#include "common/config/parse_sections.h"

namespace ambit::config {
namespace {

bool IsIp(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace

Status ParseNetworkAddress(const YamlReader& r, const YAML::Node& n, std::string_view path,
                           bool cidr, NetworkAddressConfig* out) {
  std::string text;
  RETURN_IF_ERROR(r.ToString(n, path, &text));
  std::string_view rest = text;
  out->network.clear();
  out->prefix_len.reset();
  if (cidr) {
    size_t slash = rest.rfind('/');
    if (slash == std::string_view::npos) {
      return r.Error(n, path, fmt::format("'{}' is not network/ip/prefix", text));
    }
    std::string_view len = rest.substr(slash + 1);
    unsigned v = 0;
    auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), v);
    if (ec != std::errc() || end != len.data() + len.size() || len.empty() || v > 128) {
      return r.Error(n, path, fmt::format("'{}' has an invalid prefix length", text));
    }
    out->prefix_len = static_cast<uint8_t>(v);
    rest = rest.substr(0, slash);
  }
  size_t slash = rest.find('/');
  if (slash != std::string_view::npos) {
    out->network = std::string(rest.substr(0, slash));
    rest = rest.substr(slash + 1);
  }
  out->ip = std::string(rest);
  if (!IsIp(out->ip)) {
    return r.Error(n, path, fmt::format("'{}' is not an IP address", out->ip));
  }
  if (out->prefix_len && *out->prefix_len > (out->ip.find(':') != std::string::npos ? 128 : 32)) {
    return r.Error(n, path, fmt::format("'{}' has an invalid prefix length", text));
  }
  return absl::OkStatus();
}

Status ParseGateway(const YamlReader& r, const YAML::Node& n, std::string_view path,
                    GatewayConfig* out) {
  RETURN_IF_ERROR(r.ExpectMap(n, path));
  RETURN_IF_ERROR(r.CheckKeys(n, path, {"destination", "hboneMtlsPort"}));
  if (!Has(n, "destination")) {
    return r.Error(n, Sub(path, "destination"), "required field is missing");
  }
  const YAML::Node d = n["destination"];
  std::string dpath = Sub(path, "destination");
  if (d.IsScalar()) {
    NetworkAddressConfig a;
    RETURN_IF_ERROR(ParseNetworkAddress(r, d, dpath, false, &a));
    out->address = a;
  } else {
    RETURN_IF_ERROR(r.ExpectMap(d, dpath));
    RETURN_IF_ERROR(r.CheckKeys(d, dpath, {"namespace", "hostname"}));
    RETURN_IF_ERROR(r.ReqString(d, dpath, "namespace", &out->hostname_namespace));
    RETURN_IF_ERROR(r.ReqString(d, dpath, "hostname", &out->hostname));
  }
  if (Has(n, "hboneMtlsPort")) {
    RETURN_IF_ERROR(r.ToPort(n["hboneMtlsPort"], Sub(path, "hboneMtlsPort"),
                             &out->hbone_mtls_port));
  }
  return absl::OkStatus();
}

Status ParsePortMap(const YamlReader& r, const YAML::Node& n, std::string_view path,
                    bool allow_zero_target, PortMap* out) {
  RETURN_IF_ERROR(r.ExpectMap(n, path));
  for (const auto& kv : n) {
    uint16_t sp = 0, tp = 0;
    std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
    RETURN_IF_ERROR(r.ToPort(kv.first, Sub(path, key), &sp));
    if (allow_zero_target && kv.second.IsScalar() && kv.second.Scalar() == "0") {
      tp = 0;
    } else {
      RETURN_IF_ERROR(r.ToPort(kv.second, Sub(path, key), &tp));
    }
    if (!out->emplace(sp, tp).second) {
      return r.Error(kv.first, Sub(path, key), "duplicate port");
    }
  }
  return absl::OkStatus();
}

Status ParseLabels(const YamlReader& r, const YAML::Node& n, std::string_view path,
                   LabelMap* out) {
  RETURN_IF_ERROR(r.ExpectMap(n, path));
  for (const auto& kv : n) {
    std::string k, v;
    RETURN_IF_ERROR(r.ToString(kv.first, path, &k));
    RETURN_IF_ERROR(r.ToString(kv.second, Sub(path, k), &v));
    (*out)[k] = v;
  }
  return absl::OkStatus();
}

}  // namespace ambit::config
