// The parts both rate limit front ends share: which resources bind to this
// waypoint, token buckets, and the route `rate_limits` actions that turn a
// request into a descriptor.
#include <fmt/format.h>

#include <cmath>
#include <cstdlib>

#include "common/base/ascii.h"
#include "waypoint/route/compile.h"
#include "waypoint/route/compile_ratelimit_internal.h"

namespace ambit::waypoint::route::internal {

namespace {

constexpr std::string_view kRootNamespace = "istio-system";

// The Gateway a waypoint pod serves: the label istiod's deployment puts on
// it, else its workload's name.
std::string GatewayName(const mesh::Workload& w) {
  for (const char* label : {"gateway.networking.k8s.io/gateway-name", "istio.io/gateway-name"}) {
    if (auto it = w.labels.find(label); it != w.labels.end()) return it->second;
  }
  if (!w.canonical_name.empty()) return w.canonical_name;
  if (!w.workload_name.empty()) return w.workload_name;
  return w.name;
}

std::optional<int64_t> SignedInt(const Doc& doc, const YAML::Node& n, const std::string& field,
                                 Sink& sink) {
  if (!n.IsScalar()) {
    sink.Invalid(doc, n, fmt::format("{}: expected a number", field));
    return std::nullopt;
  }
  const std::string& s = n.Scalar();
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0) {
    sink.Invalid(doc, n, fmt::format("{}: '{}' is not an integer", field, s));
    return std::nullopt;
  }
  return v;
}

}  // namespace

bool BindsWaypoint(const Doc& doc, const mesh::Snapshot& snap, const mesh::Workload* self,
                   bool allow_selector, Sink& sink, std::vector<std::string>* services) {
  YAML::Node refs = Child(doc.spec, "targetRefs");
  if (const YAML::Node one = Child(doc.spec, "targetRef"); Present(one)) {
    YAML::Node seq(YAML::NodeType::Sequence);
    seq.push_back(one);
    refs = seq;
  }
  const YAML::Node selector = Child(doc.spec, "workloadSelector");
  if (Present(refs)) {
    if (!refs.IsSequence()) {
      sink.Add(doc, refs, "targetRefs: expected a list; resource not applied");
      return false;
    }
    bool gateway = false;
    for (size_t i = 0; i < refs.size(); ++i) {
      const std::string f = Field("targetRefs", i);
      const YAML::Node r = refs[i];
      if (!r.IsMap()) {
        sink.Add(doc, r, fmt::format("{}: expected a map; ignored", f));
        continue;
      }
      ReportUnknownKeys(doc, r, f, {"kind", "group", "name", "namespace"}, sink,
                        "unknown field; ignored");
      auto kind = Scalar(doc, Child(r, "kind"), Field(f, "kind"), sink);
      auto name = Scalar(doc, Child(r, "name"), Field(f, "name"), sink);
      if (!kind || !name) continue;
      if (*kind == "Gateway") {
        if (self == nullptr || (*name == GatewayName(*self) && doc.ns == self->ns)) {
          gateway = true;
        } else {
          sink.Add(doc, r, fmt::format("{}: Gateway {}/{} is not this waypoint ({}/{}); not "
                                       "applied here", f, doc.ns, *name, self->ns,
                                       GatewayName(*self)));
        }
      } else if (*kind == "Service") {
        const mesh::Service* svc = ResolveHost(snap, *name, doc.ns);
        if (svc == nullptr) {
          sink.Add(doc, r, fmt::format("{}: no Service {}/{}; ignored", f, doc.ns, *name));
          continue;
        }
        services->push_back(svc->Key());
      } else {
        sink.Add(doc, r, fmt::format("{}: kind '{}' is not supported (Gateway naming the "
                                     "waypoint, or Service); ignored", f, *kind));
      }
    }
    return gateway || !services->empty();
  }
  if (Present(selector)) {
    if (!allow_selector) {
      sink.Add(doc, selector, "workloadSelector: not supported here; use targetRefs; resource "
                              "not applied");
      return false;
    }
    if (self == nullptr) return true;
    const YAML::Node labels = Child(selector, "labels");
    if (!labels.IsMap()) return self->ns == doc.ns || doc.ns == kRootNamespace;
    for (auto it = labels.begin(); it != labels.end(); ++it) {
      const std::string k = it->first.Scalar();
      const std::string v = it->second.IsScalar() ? it->second.Scalar() : "";
      auto l = self->labels.find(k);
      if (l == self->labels.end() || l->second != v) return false;
    }
    return self->ns == doc.ns || doc.ns == kRootNamespace;
  }
  // Neither: every proxy of the namespace (the root namespace: every proxy).
  return self == nullptr || self->ns == doc.ns || doc.ns == kRootNamespace;
}

std::optional<std::chrono::nanoseconds> ProtoDuration(const Doc& doc, const YAML::Node& n,
                                                      const std::string& field, Sink& sink) {
  if (n.IsMap()) {  // {seconds, nanos}
    ReportUnknownKeys(doc, n, field, {"seconds", "nanos"}, sink, "unknown field; ignored");
    int64_t secs = 0, nanos = 0;
    if (const YAML::Node s = Child(n, "seconds"); Present(s)) {
      auto v = SignedInt(doc, s, Field(field, "seconds"), sink);
      if (!v) return std::nullopt;
      secs = *v;
    }
    if (const YAML::Node ns = Child(n, "nanos"); Present(ns)) {
      auto v = SignedInt(doc, ns, Field(field, "nanos"), sink);
      if (!v) return std::nullopt;
      nanos = *v;
    }
    if (secs < 0 || nanos < 0 || nanos > 999'999'999 || secs > 315'576'000'000) {
      sink.Invalid(doc, n, fmt::format("{}: not a valid non-negative duration", field));
      return std::nullopt;
    }
    return std::chrono::seconds(secs) + std::chrono::nanoseconds(nanos);
  }
  std::vector<Finding> why;
  Sink probe(&why);
  auto d = Duration(doc, n, field, probe);
  if (!d) {
    sink.Invalid(doc, n, why.empty() ? fmt::format("{}: not a duration", field) : why[0].message);
    return std::nullopt;
  }
  return d;
}

std::optional<TokenBucketSpec> CompileTokenBucket(const Doc& doc, const YAML::Node& n,
                                                  const std::string& field, bool camel,
                                                  Sink& sink) {
  if (!n.IsMap()) {
    sink.Invalid(doc, n, fmt::format("{}: expected a map", field));
    return std::nullopt;
  }
  const std::string_view k_max = camel ? "maxTokens" : "max_tokens";
  const std::string_view k_fill = camel ? "tokensPerFill" : "tokens_per_fill";
  const std::string_view k_interval = camel ? "fillInterval" : "fill_interval";
  ReportUnknownKeys(doc, n, field, {k_max, k_fill, k_interval}, sink, "unknown field; ignored");
  TokenBucketSpec spec;
  auto count = [&](std::string_view key, bool required, uint32_t* out) {
    const YAML::Node v = Child(n, key);
    if (!Present(v)) {
      if (required) sink.Invalid(doc, n, fmt::format("{}: {} is required", field, key));
      return !required;
    }
    auto i = SignedInt(doc, v, Field(field, key), sink);
    if (!i) return false;
    if (*i <= 0 || *i > UINT32_MAX) {
      sink.Invalid(doc, v, fmt::format("{}: {} must be 1..{}", Field(field, key), *i,
                                       UINT32_MAX));
      return false;
    }
    *out = static_cast<uint32_t>(*i);
    return true;
  };
  if (!count(k_max, true, &spec.max_tokens) || !count(k_fill, false, &spec.tokens_per_fill)) {
    return std::nullopt;
  }
  const YAML::Node iv = Child(n, k_interval);
  if (!Present(iv)) {
    sink.Invalid(doc, n, fmt::format("{}: {} is required", field, k_interval));
    return std::nullopt;
  }
  auto d = ProtoDuration(doc, iv, Field(field, k_interval), sink);
  if (!d) return std::nullopt;
  if (*d < kMinFillInterval) {
    sink.Invalid(doc, iv, fmt::format("{}: must be at least 50ms (Envoy's bound)",
                                      Field(field, k_interval)));
    return std::nullopt;
  }
  spec.fill_interval = *d;
  return spec;
}

std::optional<std::vector<DescriptorAction>> CompileRateLimitActions(const Doc& doc,
                                                                     const YAML::Node& n,
                                                                     const std::string& field,
                                                                     Sink& sink) {
  if (!n.IsMap()) {
    sink.Add(doc, n, fmt::format("{}: expected a map; ignored", field));
    return std::nullopt;
  }
  ReportUnknownKeys(doc, n, field, {"actions", "stage", "disable_key"}, sink,
                    "not supported; ignored");
  if (const YAML::Node st = Child(n, "stage"); Present(st) && st.IsScalar() && st.Scalar() != "0") {
    sink.Add(doc, st, fmt::format("{}.stage: only stage 0 is served; entry ignored", field));
    return std::nullopt;
  }
  const YAML::Node actions = Child(n, "actions");
  if (!actions.IsSequence() || actions.size() == 0) {
    sink.Invalid(doc, n, fmt::format("{}.actions: at least one action is required", field));
    return std::nullopt;
  }
  std::vector<DescriptorAction> out;
  for (size_t i = 0; i < actions.size(); ++i) {
    const std::string f = Field(Field(field, "actions"), i);
    const YAML::Node a = actions[i];
    DescriptorAction da;
    if (const YAML::Node h = Child(a, "request_headers"); Present(h)) {
      ReportUnknownKeys(doc, h, Field(f, "request_headers"),
                        {"header_name", "descriptor_key", "skip_if_absent"}, sink,
                        "unknown field; ignored");
      auto name = Scalar(doc, Child(h, "header_name"), Field(f, "request_headers.header_name"),
                         sink);
      auto key = Scalar(doc, Child(h, "descriptor_key"),
                        Field(f, "request_headers.descriptor_key"), sink);
      if (!name || !key) return std::nullopt;
      da.kind = DescriptorAction::Kind::kRequestHeader;
      da.header = base::ToLower(*name);
      da.key = *key;
      const YAML::Node skip = Child(h, "skip_if_absent");
      da.skip_if_absent = Present(skip) && skip.IsScalar() && skip.Scalar() == "true";
    } else if (Present(Child(a, "remote_address"))) {
      da.kind = DescriptorAction::Kind::kRemoteAddress;
      da.key = "remote_address";
    } else if (const YAML::Node g = Child(a, "generic_key"); Present(g)) {
      ReportUnknownKeys(doc, g, Field(f, "generic_key"), {"descriptor_value", "descriptor_key"},
                        sink, "unknown field; ignored");
      auto v = Scalar(doc, Child(g, "descriptor_value"), Field(f, "generic_key.descriptor_value"),
                      sink);
      if (!v) return std::nullopt;
      da.kind = DescriptorAction::Kind::kGenericKey;
      da.value = *v;
      da.key = "generic_key";
      if (const YAML::Node k = Child(g, "descriptor_key"); Present(k) && k.IsScalar()) {
        da.key = k.Scalar();
      }
    } else if (const YAML::Node m = Child(a, "header_value_match"); Present(m)) {
      const std::string mf = Field(f, "header_value_match");
      ReportUnknownKeys(doc, m, mf, {"descriptor_value", "descriptor_key", "expect_match",
                                     "headers"}, sink, "unknown field; ignored");
      auto v = Scalar(doc, Child(m, "descriptor_value"), Field(mf, "descriptor_value"), sink);
      if (!v) return std::nullopt;
      da.kind = DescriptorAction::Kind::kHeaderValueMatch;
      da.value = *v;
      da.key = "header_match";
      if (const YAML::Node k = Child(m, "descriptor_key"); Present(k) && k.IsScalar()) {
        da.key = k.Scalar();
      }
      const YAML::Node em = Child(m, "expect_match");
      da.expect_match = !(Present(em) && em.IsScalar() && em.Scalar() == "false");
      const YAML::Node hs = Child(m, "headers");
      if (!hs.IsSequence()) {
        sink.Add(doc, m, fmt::format("{}.headers: expected a list; entry ignored", mf));
        return std::nullopt;
      }
      for (size_t j = 0; j < hs.size(); ++j) {
        const std::string hf = Field(Field(mf, "headers"), j);
        auto name = Scalar(doc, Child(hs[j], "name"), Field(hf, "name"), sink);
        if (!name) return std::nullopt;
        std::string value;
        if (const YAML::Node ex = Child(hs[j], "exact_match"); Present(ex) && ex.IsScalar()) {
          value = ex.Scalar();
        } else if (const YAML::Node sm = Child(Child(hs[j], "string_match"), "exact");
                   Present(sm) && sm.IsScalar()) {
          value = sm.Scalar();
        } else if (!Present(Child(hs[j], "present_match"))) {
          sink.Add(doc, hs[j], fmt::format("{}: only exact_match, string_match.exact and "
                                           "present_match are supported; entry ignored", hf));
          return std::nullopt;
        }
        da.match_headers.emplace_back(base::ToLower(*name), std::move(value));
      }
    } else {
      sink.Add(doc, a, fmt::format("{}: not supported (request_headers, remote_address, "
                                   "generic_key, header_value_match); entry ignored", f));
      return std::nullopt;
    }
    out.push_back(std::move(da));
  }
  return out;
}

void CompileRateLimits(std::span<const config::ResourceConfig> resources,
                       const mesh::Snapshot& snapshot, const mesh::Workload* self,
                       RouteConfig* out, Sink& sink) {
  CompileEnvoyFilters(resources, snapshot, self, out, sink);
  CompileRateLimitPolicies(resources, snapshot, self, out, sink);
}

}  // namespace ambit::waypoint::route::internal
