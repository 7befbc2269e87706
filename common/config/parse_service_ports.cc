// services[].ports: ztunnel's {servicePort: targetPort} map, and the
// Kubernetes Service port forms that carry a port name and appProtocol:
//   ports: {80: 8080, 9090: {targetPort: 9090, appProtocol: grpc, name: grpc-api}}
//   ports: [80, {port: 8443, targetPort: https-port, appProtocol: https, name: tls}]
// targetPort defaults to the port (as in Kubernetes); a named targetPort is
// kept as target 0 (the endpoint's own port map decides, as istiod sends it).
#include <fmt/format.h>

#include <cctype>

#include "common/config/parse_sections.h"

namespace ambit::config {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// RFC 1123 label: what Kubernetes requires of a Service port name.
bool IsDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!IsLowerAlnum(c) && c != '-') return false;
  }
  return IsLowerAlnum(s.front()) && IsLowerAlnum(s.back());
}

// IANA_SVC_NAME: what Kubernetes requires of a named targetPort.
bool IsIanaServiceName(std::string_view s) {
  if (s.empty() || s.size() > 15 || s.front() == '-' || s.back() == '-') return false;
  bool letter = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!IsLowerAlnum(s[i]) && s[i] != '-') return false;
    if (s[i] == '-' && i > 0 && s[i - 1] == '-') return false;
    letter = letter || (s[i] >= 'a' && s[i] <= 'z');
  }
  return letter;
}

bool IsAppProtocolText(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c)) || std::iscntrl(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

// targetPort: a port number (0 only where ztunnel's form allows it) or a name.
Status ParseTargetPort(const YamlReader& r, const YAML::Node& n, std::string_view path,
                       uint16_t* out) {
  if (!n.IsScalar()) return r.Error(n, path, "expected a port number or a port name");
  const std::string& text = n.Scalar();
  if (!text.empty() && std::isdigit(static_cast<unsigned char>(text[0]))) {
    return r.ToPort(n, path, out);
  }
  if (!IsIanaServiceName(text)) {
    return r.Error(n, path,
                   fmt::format("'{}' is neither a port number nor a port name (1-15 of "
                               "a-z, 0-9, '-', with a letter)",
                               text));
  }
  *out = 0;  // named port: resolved per endpoint
  return absl::OkStatus();
}

struct OnePort {
  uint16_t port = 0, target = 0;
  ServicePortDetail detail;
};

// {targetPort, appProtocol, name}, plus `port` in the list form.
Status ParsePortObject(const YamlReader& r, const YAML::Node& n, std::string_view path,
                       bool list_form, OnePort* out) {
  RETURN_IF_ERROR(list_form ? r.CheckKeys(n, path, {"port", "targetPort", "appProtocol", "name"})
                            : r.CheckKeys(n, path, {"targetPort", "appProtocol", "name"}));
  if (list_form) {
    if (!Has(n, "port")) return r.Error(n, Sub(path, "port"), "required field is missing");
    RETURN_IF_ERROR(r.ToPort(n["port"], Sub(path, "port"), &out->port));
  }
  out->target = out->port;
  if (Has(n, "targetPort")) {
    RETURN_IF_ERROR(ParseTargetPort(r, n["targetPort"], Sub(path, "targetPort"), &out->target));
  }
  if (Has(n, "name")) {
    RETURN_IF_ERROR(r.ToString(n["name"], Sub(path, "name"), &out->detail.name));
    if (!IsDnsLabel(out->detail.name)) {
      return r.Error(n["name"], Sub(path, "name"),
                     fmt::format("'{}' is not a valid port name (lower-case letters, digits "
                                 "and '-', at most 63, starting and ending alphanumeric)",
                                 out->detail.name));
    }
  }
  if (n["appProtocol"].IsDefined()) {
    std::string ap;
    if (!n["appProtocol"].IsScalar()) {
      return r.Error(n["appProtocol"], Sub(path, "appProtocol"), "expected a string");
    }
    ap = n["appProtocol"].Scalar();
    if (!IsAppProtocolText(ap)) {
      return r.Error(n["appProtocol"], Sub(path, "appProtocol"),
                     fmt::format("'{}' is not a valid appProtocol (a non-empty name without "
                                 "spaces, e.g. http, http2, grpc, tcp, tls, kubernetes.io/h2c)",
                                 ap));
    }
    out->detail.app_protocol = std::move(ap);
  }
  return absl::OkStatus();
}

Status Add(const YamlReader& r, const YAML::Node& at, std::string_view path, OnePort&& p,
           ServiceConfig* out) {
  if (!out->ports.emplace(p.port, p.target).second) {
    return r.Error(at, path, fmt::format("duplicate port {}", p.port));
  }
  if (!p.detail.name.empty() || p.detail.app_protocol) {
    out->port_details[p.port] = std::move(p.detail);
  }
  return absl::OkStatus();
}

}  // namespace

Status ParseServicePorts(const YamlReader& r, const YAML::Node& n, std::string_view path,
                         ServiceConfig* out) {
  if (n.IsSequence()) {
    for (size_t i = 0; i < n.size(); ++i) {
      std::string ipath = Idx(path, i);
      OnePort p;
      if (n[i].IsScalar()) {
        RETURN_IF_ERROR(r.ToPort(n[i], ipath, &p.port));
        p.target = p.port;
      } else {
        RETURN_IF_ERROR(r.ExpectMap(n[i], ipath));
        RETURN_IF_ERROR(ParsePortObject(r, n[i], ipath, true, &p));
      }
      RETURN_IF_ERROR(Add(r, n[i], ipath, std::move(p), out));
    }
    return absl::OkStatus();
  }
  if (!n.IsMap()) return r.Error(n, path, "expected a mapping {port: targetPort} or a list");
  for (const auto& kv : n) {
    std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
    std::string kpath = Sub(path, key);
    OnePort p;
    RETURN_IF_ERROR(r.ToPort(kv.first, kpath, &p.port));
    if (kv.second.IsMap()) {
      RETURN_IF_ERROR(ParsePortObject(r, kv.second, kpath, false, &p));
    } else if (kv.second.IsScalar() && kv.second.Scalar() == "0") {
      p.target = 0;  // ztunnel's form: named port
    } else {
      RETURN_IF_ERROR(r.ToPort(kv.second, kpath, &p.target));
    }
    RETURN_IF_ERROR(Add(r, kv.first, kpath, std::move(p), out));
  }
  return absl::OkStatus();
}

}  // namespace ambit::config
