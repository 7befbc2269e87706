// Helpers for the translation tests: parse YAML as users write it through the
// real standalone config loader, then translate.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "common/authz/istio_translate.h"
#include "common/config/loader.h"

namespace ambit::authz::testing {

inline mesh::Workload Wl(std::string uid, std::string ns,
                          std::map<std::string, std::string> labels) {
  mesh::Workload w;
  w.uid = std::move(uid);
  w.name = w.uid;
  w.ns = std::move(ns);
  w.labels = std::move(labels);
  return w;
}

inline TranslateResult Translate(const std::string& yaml,
                                 const std::vector<mesh::Workload>& workloads = {}) {
  auto cfg = config::ParseLocalConfig(yaml, "test.yaml");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  return TranslateIstioResources(cfg->resources, workloads);
}

inline const mesh::Policy* FindPolicy(const TranslateResult& r, std::string_view key) {
  for (const mesh::Policy& p : r.policies) {
    if (p.Key() == key) return &p;
  }
  return nullptr;
}

inline std::vector<std::string> Messages(const TranslateResult& r) {
  std::vector<std::string> out;
  for (const Finding& f : r.findings) out.push_back(f.message);
  return out;
}

inline std::vector<std::string> KeysOf(const TranslateResult& r, const std::string& uid) {
  auto it = r.workload_policies.find(uid);
  return it == r.workload_policies.end() ? std::vector<std::string>{} : it->second;
}

}  // namespace ambit::authz::testing
