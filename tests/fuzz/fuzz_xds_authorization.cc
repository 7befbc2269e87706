// Fuzz target: an xDS Authorization resource (istio.security.Authorization)
// as istiod pushes it, through the real adapter
// (agent/xds_adapters ConvertAuthorization → mesh::Policy).
// Properties: conversion never crashes; a rejection names what is wrong; an
// accepted policy keeps its name, namespace, action and rule count.
#include <cstddef>
#include <cstdint>

#include <google/protobuf/stubs/logging.h>

#include "common/mesh/xds_adapters/convert.h"
#include "proto/authorization.pb.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);  // invalid UTF-8 is logged otherwise
    return true;
  }();
  (void)quiet;
  istio::security::Authorization a;
  if (!a.ParseFromArray(data, static_cast<int>(size))) return 0;
  auto p = ambit::xds_adapters::ConvertAuthorization(a);
  if (!p.ok()) {
    FUZZ_CHECK(!p.status().message().empty());
    return 0;
  }
  FUZZ_CHECK(p->name == a.name());
  FUZZ_CHECK(p->ns == a.namespace_());
  FUZZ_CHECK(p->Key() == a.namespace_() + "/" + a.name());
  FUZZ_CHECK((p->action == ambit::mesh::PolicyAction::kDeny) ==
             (a.action() == istio::security::DENY));
  FUZZ_CHECK(p->rules.size() <= static_cast<size_t>(a.rules_size()));
  return 0;
}
