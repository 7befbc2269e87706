// Istio ServiceEntry (networking.istio.io) in the standalone YAML, expanded
// the way istiod does for ambient (pilot ambient/serviceentry.go): one
// service per host (name/namespace of the ServiceEntry, VIPs = addresses,
// ports, subjectAltNames) and one workload per endpoint. With
// `resolution: DNS` / `DNS_ROUND_ROBIN` an endpoint whose address is a
// hostname becomes a hostname-only workload (resolved on demand by the
// agent), and a ServiceEntry without endpoints gets one per host (the host
// itself is resolved). Unsupported fields are reported as warnings.
#include <arpa/inet.h>
#include <fmt/format.h>

#include <cctype>

#include "common/config/parse_sections.h"

namespace ambit::config {

namespace {

bool IsIp(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

enum Resolution : int { kNone = 0, kStatic = 1, kDns = 2, kDnsRoundRobin = 3 };

struct SePort {
  std::string name;
  uint16_t number = 0, target = 0;
  std::string protocol;
};

// Istio port protocol → the appProtocol the mesh reads; empty = by name.
std::string AppProtocolOf(std::string p) {
  for (char& c : p) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::string_view k : {"http", "http2", "grpc", "tcp", "tls", "https"}) {
    if (p == k) return p;
  }
  return {};
}

}  // namespace

Status ParseServiceEntry(const YamlReader& r, const YAML::Node& n, std::string_view path,
                         std::string name, std::string ns, LocalConfig* out) {
  if (ns.empty()) ns = "default";
  const std::string spath = Sub(path, "spec");
  if (!Has(n, "spec")) return r.Error(n, spath, "required field is missing");
  const YAML::Node spec = n["spec"];
  RETURN_IF_ERROR(r.ExpectMap(spec, spath));
  RETURN_IF_ERROR(r.CheckKeys(spec, spath,
                              {"hosts", "addresses", "ports", "location", "resolution",
                               "endpoints", "workloadSelector", "exportTo", "subjectAltNames"}));
  const int line = YamlReader::Line(n);
  auto warn = [&](const YAML::Node& at, std::string_view field, std::string_view msg) {
    out->warnings.push_back(fmt::format("{}:{}: ServiceEntry {}/{}: {}: {}", r.file(),
                                        YamlReader::Line(at), ns, name, field, msg));
  };
  std::vector<std::string> hosts;
  if (!Has(spec, "hosts")) return r.Error(spec, Sub(spath, "hosts"), "required field is missing");
  RETURN_IF_ERROR(r.ToStringList(spec["hosts"], Sub(spath, "hosts"), &hosts));
  if (hosts.empty()) return r.Error(spec, Sub(spath, "hosts"), "needs at least one host");
  int resolution = kNone;
  if (Has(spec, "resolution")) {
    RETURN_IF_ERROR(r.ToEnum(spec["resolution"], Sub(spath, "resolution"),
                             {"NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"}, &resolution));
  }
  if (Has(spec, "location")) {
    int loc = 0;  // MESH_EXTERNAL / MESH_INTERNAL: no effect on the data path (as in ztunnel)
    RETURN_IF_ERROR(
        r.ToEnum(spec["location"], Sub(spath, "location"), {"MESH_EXTERNAL", "MESH_INTERNAL"}, &loc));
  }
  if (Has(spec, "workloadSelector")) {
    warn(spec["workloadSelector"], "spec.workloadSelector",
         "not supported in the standalone config; ignored (list the endpoints)");
  }
  if (Has(spec, "exportTo")) {
    warn(spec["exportTo"], "spec.exportTo", "not supported; the entry is visible everywhere");
  }
  std::vector<std::string> sans;
  if (Has(spec, "subjectAltNames")) {
    RETURN_IF_ERROR(r.ToStringList(spec["subjectAltNames"], Sub(spath, "subjectAltNames"), &sans));
  }
  std::vector<NetworkAddressConfig> vips, cidrs;
  if (Has(spec, "addresses")) {
    std::vector<std::string> addrs;
    RETURN_IF_ERROR(r.ToStringList(spec["addresses"], Sub(spath, "addresses"), &addrs));
    for (size_t i = 0; i < addrs.size(); ++i) {
      const std::string& a = addrs[i];
      NetworkAddressConfig v;
      size_t slash = a.find('/');
      v.ip = a.substr(0, slash);
      if (!IsIp(v.ip)) {
        return r.Error(spec["addresses"][i], Idx(Sub(spath, "addresses"), i),
                       fmt::format("'{}' is not an IP address or CIDR", a));
      }
      if (slash == std::string::npos) {
        vips.push_back(v);
        continue;
      }
      uint64_t len = 0;
      RETURN_IF_ERROR(r.ToUint(YAML::Node(a.substr(slash + 1)), Idx(Sub(spath, "addresses"), i),
                               v.ip.find(':') != std::string::npos ? 128 : 32, &len));
      v.prefix_len = static_cast<uint8_t>(len);
      cidrs.push_back(v);
    }
  }
  std::vector<SePort> ports;
  if (Has(spec, "ports")) {
    const YAML::Node list = spec["ports"];
    RETURN_IF_ERROR(r.ExpectSeq(list, Sub(spath, "ports")));
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string p = Idx(Sub(spath, "ports"), i);
      RETURN_IF_ERROR(r.ExpectMap(list[i], p));
      RETURN_IF_ERROR(r.CheckKeys(list[i], p, {"number", "protocol", "name", "targetPort"}));
      SePort sp;
      if (!Has(list[i], "number")) return r.Error(list[i], Sub(p, "number"), "required field is missing");
      RETURN_IF_ERROR(r.ToPort(list[i]["number"], Sub(p, "number"), &sp.number));
      sp.target = sp.number;
      if (Has(list[i], "targetPort")) {
        RETURN_IF_ERROR(r.ToPort(list[i]["targetPort"], Sub(p, "targetPort"), &sp.target));
      }
      RETURN_IF_ERROR(r.OptString(list[i], p, "name", &sp.name));
      RETURN_IF_ERROR(r.OptString(list[i], p, "protocol", &sp.protocol));
      ports.push_back(std::move(sp));
    }
  }
  for (const std::string& host : hosts) {
    ServiceConfig s;
    s.line = line;
    s.name = name;
    s.ns = ns;
    s.hostname = host;
    s.vips = vips;
    s.cidr_vips = cidrs;
    s.subject_alt_names = sans;
    for (const SePort& p : ports) {
      s.ports[p.number] = p.target;
      ServicePortDetail d;
      d.name = p.name;
      if (std::string ap = AppProtocolOf(p.protocol); !ap.empty()) d.app_protocol = ap;
      if (!d.name.empty() || d.app_protocol) s.port_details[p.number] = d;
    }
    if (resolution == kNone) {
      LoadBalancerConfig lb;
      lb.mode = LbMode::kPassthrough;
      s.load_balancer = lb;
    }
    out->services.push_back(std::move(s));
  }
  auto workload = [&](const std::string& address, int wline) {
    WorkloadConfig w;
    w.line = wline;
    w.uid = fmt::format("Kubernetes/networking.istio.io/ServiceEntry/{}/{}/{}", ns, name, address);
    w.name = name;
    w.ns = ns;
    w.workload_name = name;
    w.service_account = "default";
    if (IsIp(address)) {
      w.workload_ips.push_back(address);
    } else {
      w.hostname = address;
    }
    return w;
  };
  auto join = [&](WorkloadConfig& w, const std::map<std::string, uint16_t>& named,
                  const std::string* only) {
    for (const std::string& host : hosts) {
      if (only != nullptr && host != *only) continue;
      PortMap pm;
      for (const SePort& p : ports) {
        auto it = named.find(p.name);
        if (!p.name.empty() && it != named.end()) pm[p.number] = it->second;
      }
      w.services[ns + "/" + host] = pm;
    }
  };
  const bool dns = resolution == kDns || resolution == kDnsRoundRobin;
  if (Has(spec, "endpoints")) {
    const YAML::Node list = spec["endpoints"];
    RETURN_IF_ERROR(r.ExpectSeq(list, Sub(spath, "endpoints")));
    if (resolution == kNone && list.size() > 0) {
      warn(list, "spec.endpoints", "ignored with resolution NONE (passthrough)");
    }
    for (size_t i = 0; resolution != kNone && i < list.size(); ++i) {
      const std::string p = Idx(Sub(spath, "endpoints"), i);
      const YAML::Node ep = list[i];
      RETURN_IF_ERROR(r.ExpectMap(ep, p));
      RETURN_IF_ERROR(r.CheckKeys(ep, p, {"address", "ports", "labels", "network", "locality",
                                          "weight", "serviceAccount"}));
      std::string address;
      RETURN_IF_ERROR(r.ReqString(ep, p, "address", &address));
      if (!IsIp(address) && !dns) {
        return r.Error(ep["address"], Sub(p, "address"),
                       fmt::format("'{}' is not an IP address (hostnames need resolution DNS)",
                                   address));
      }
      WorkloadConfig w = workload(address, YamlReader::Line(ep));
      std::map<std::string, uint16_t> named;
      if (Has(ep, "ports")) {
        const YAML::Node pm = ep["ports"];
        RETURN_IF_ERROR(r.ExpectMap(pm, Sub(p, "ports")));
        for (const auto& kv : pm) {
          uint16_t v = 0;
          RETURN_IF_ERROR(r.ToPort(kv.second, Sub(Sub(p, "ports"), kv.first.as<std::string>()), &v));
          named[kv.first.as<std::string>()] = v;
        }
      }
      if (Has(ep, "labels")) RETURN_IF_ERROR(ParseLabels(r, ep["labels"], Sub(p, "labels"), &w.labels));
      RETURN_IF_ERROR(r.OptString(ep, p, "network", &w.network));
      RETURN_IF_ERROR(r.OptString(ep, p, "serviceAccount", &w.service_account));
      if (Has(ep, "weight")) {
        uint64_t weight = 1;
        RETURN_IF_ERROR(r.ToUint(ep["weight"], Sub(p, "weight"), UINT32_MAX, &weight));
        w.capacity = static_cast<uint32_t>(weight);
      }
      if (Has(ep, "locality")) {
        std::string loc;
        RETURN_IF_ERROR(r.OptString(ep, p, "locality", &loc));
        size_t a = loc.find('/');
        w.locality.region = loc.substr(0, a);
        if (a != std::string::npos) {
          size_t b = loc.find('/', a + 1);
          w.locality.zone = loc.substr(a + 1, b == std::string::npos ? b : b - a - 1);
          if (b != std::string::npos) w.locality.subzone = loc.substr(b + 1);
        }
      }
      join(w, named, nullptr);
      out->workloads.push_back(std::move(w));
    }
  } else if (dns) {
    for (const std::string& host : hosts) {  // resolve the host itself
      WorkloadConfig w = workload(host, line);
      join(w, {}, &host);
      out->workloads.push_back(std::move(w));
    }
  }
  return absl::OkStatus();
}

}  // namespace ambit::config
