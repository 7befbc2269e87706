// Fuzz target: an xDS Address resource (istio.workload.Address) as it
// arrives from istiod, through the real adapter (agent/xds_adapters
// ConvertAddress → mesh::Workload | mesh::Service).
// Properties: conversion never crashes; a rejection names what is wrong; an
// accepted resource keeps its identity (uid / namespace+hostname), every
// address, and the adapter's defaults (ISTIO-COMPAT §5.2).
#include <cstddef>
#include <cstdint>
#include <variant>

#include <google/protobuf/stubs/logging.h>

#include "common/mesh/xds_adapters/convert.h"
#include "proto/workload.pb.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace pb = istio::workload;
namespace xa = ambit::xds_adapters;

void CheckWorkload(const pb::Workload& in, const ambit::mesh::Workload& w) {
  FUZZ_CHECK(w.uid == in.uid());
  FUZZ_CHECK(w.addresses.size() == static_cast<size_t>(in.addresses_size()));
  FUZZ_CHECK(!w.trust_domain.empty());
  FUZZ_CHECK(!w.service_account.empty());
  if (in.trust_domain().empty()) FUZZ_CHECK(w.trust_domain == xa::kDefaultTrustDomain);
  if (in.service_account().empty()) FUZZ_CHECK(w.service_account == xa::kDefaultServiceAccount);
}

void CheckService(const pb::Service& in, const ambit::mesh::Service& s) {
  FUZZ_CHECK(s.ns == in.namespace_());
  FUZZ_CHECK(s.hostname == in.hostname());
  FUZZ_CHECK(s.vips.size() == static_cast<size_t>(in.addresses_size()));
  FUZZ_CHECK(s.ports.size() <= static_cast<size_t>(in.ports_size()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);  // invalid UTF-8 is logged otherwise
    return true;
  }();
  (void)quiet;
  pb::Address address;
  if (!address.ParseFromArray(data, static_cast<int>(size))) return 0;
  auto got = xa::ConvertAddress(address);
  if (!got.ok()) {
    FUZZ_CHECK(!got.status().message().empty());
    return 0;
  }
  if (auto* w = std::get_if<ambit::mesh::Workload>(&*got)) {
    FUZZ_CHECK(address.has_workload());
    CheckWorkload(address.workload(), *w);
  } else {
    FUZZ_CHECK(address.has_service());
    CheckService(address.service(), std::get<ambit::mesh::Service>(*got));
  }
  return 0;
}
