// Shared helpers for the authz unit tests.
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "common/authz/match.h"
#include "common/mesh/policy.h"
#include "common/identity/identity.h"
#include "common/net/address.h"

namespace ambit::authz::testing {

using K = mesh::StringMatch::Kind;

inline mesh::StringMatch Exact(std::string v) { return {K::kExact, std::move(v)}; }
inline mesh::StringMatch Prefix(std::string v) { return {K::kPrefix, std::move(v)}; }
inline mesh::StringMatch Suffix(std::string v) { return {K::kSuffix, std::move(v)}; }
inline mesh::StringMatch Presence() { return {K::kPresence, {}}; }

inline net::IpAddress Ip(std::string_view s) {
  auto ip = net::IpAddress::Parse(s);
  REQUIRE(ip.ok());
  return *ip;
}
inline net::Cidr Cidr(std::string_view s) {
  auto c = net::Cidr::Parse(s);
  REQUIRE(c.ok());
  return *c;
}
inline identity::Identity Id(std::string_view uri) {
  auto id = identity::Identity::Parse(uri);
  REQUIRE(id.ok());
  return *id;
}

// The identity most tests use as the peer.
inline const identity::Identity& Frontend() {
  static const identity::Identity id = Id("spiffe://cluster.local/ns/default/sa/frontend");
  return id;
}

inline ConnectionInfo Conn(const identity::Identity* peer, std::string_view src = "10.0.0.5",
                           std::string_view dst = "10.0.1.7", uint16_t port = 8080) {
  ConnectionInfo c;
  c.src_ip = Ip(src);
  c.dst_ip = Ip(dst);
  c.dst_port = port;
  c.peer = peer;
  return c;
}

// A policy with one rule of one clause of one match.
inline mesh::Policy OneMatch(std::string ns, std::string name, mesh::PolicyAction action,
                              mesh::Match m,
                              mesh::PolicyScope scope = mesh::PolicyScope::kNamespace) {
  mesh::Policy p;
  p.ns = std::move(ns);
  p.name = std::move(name);
  p.action = action;
  p.scope = scope;
  p.rules.push_back(mesh::Rule{{mesh::Clause{{std::move(m)}}}});
  return p;
}

}  // namespace ambit::authz::testing
