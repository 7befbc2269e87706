// Small builders for state tests.
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "common/mesh/lb.h"
#include "common/mesh/snapshot.h"

namespace ambit::mesh::testing {

inline IpAddress Ip(const std::string& s) {
  auto ip = IpAddress::Parse(s);
  REQUIRE_MESSAGE(ip.ok(), s);
  return *ip;
}

inline net::SocketAddress Sock(const std::string& s) {
  auto a = net::SocketAddress::Parse(s);
  REQUIRE_MESSAGE(a.ok(), s);
  return *a;
}

inline Workload Pod(const std::string& ns, const std::string& name, const std::string& ip,
                    TunnelProtocol proto = TunnelProtocol::kHbone,
                    const std::string& sa = "default") {
  Workload w;
  w.uid = "c1//Pod/" + ns + "/" + name;
  w.name = name;
  w.ns = ns;
  w.addresses.push_back(Ip(ip));
  w.protocol = proto;
  w.trust_domain = "cluster.local";
  w.service_account = sa;
  return w;
}

inline Service Svc(const std::string& ns, const std::string& name, const std::string& vip,
                   uint16_t port, uint16_t target) {
  Service s;
  s.name = name;
  s.ns = ns;
  s.hostname = name + "." + ns + ".svc.cluster.local";
  if (!vip.empty()) {
    IpAddress ip = Ip(vip);
    s.vips.push_back({"", ip, static_cast<uint8_t>(ip.is_v4() ? 32 : 128)});
  }
  s.ports[port] = target;
  return s;
}

inline void Join(Workload& w, const Service& s, PortMap ports = {}) {
  w.services[s.Key()] = std::move(ports);
}

// Returns the given values in turn (mod n), then repeats.
class ScriptedRng final : public Rng {
 public:
  explicit ScriptedRng(std::vector<uint64_t> v = {0}) : v_(std::move(v)) {}
  uint64_t Below(uint64_t n) override { return v_[i_++ % v_.size()] % n; }

 private:
  std::vector<uint64_t> v_;
  size_t i_ = 0;
};

}  // namespace ambit::mesh::testing
