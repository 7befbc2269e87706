#include "common/mesh/xds_adapters/sink.h"

#include <utility>
#include <variant>

#include "common/mesh/xds_adapters/convert.h"
#include "common/mesh/xds_adapters/names.h"
#include "common/base/log.h"

namespace ambit::xds_adapters {
namespace {

template <typename Msg>
Status Unpack(const xds::XdsResource& r, std::string_view type_url, Msg* msg) {
  if (r.resource.type_url() != type_url) {
    return absl::InvalidArgumentError("resource is a " + r.resource.type_url() + ", expected " +
                                      std::string(type_url));
  }
  if (!r.resource.UnpackTo(msg)) {
    return absl::InvalidArgumentError("cannot decode " + std::string(type_url));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<xds::ResourceError> XdsStateSink::OnResources(std::string_view type_url,
                                                          std::vector<xds::XdsResource> added,
                                                          std::vector<std::string> removed) {
  std::vector<xds::ResourceError> errors;
  const bool is_address = type_url == xds::kAddressType;
  const bool is_policy = type_url == xds::kAuthorizationType;
  ++counters_.responses;
  for (const xds::XdsResource& r : added) {
    Status st = is_address ? ApplyAddress(r)
                : is_policy
                    ? ApplyAuthorization(r)
                    : absl::InvalidArgumentError("unsupported type " + std::string(type_url));
    if (st.ok()) {
      ++counters_.applied;
    } else {
      ++counters_.rejected;
      errors.push_back({r.name, std::string(st.message())});
    }
  }
  for (const std::string& name : removed) {
    if (is_address) RemoveAddress(name);
    if (is_policy) RemoveAuthorization(name);
  }
  for (const xds::ResourceError& e : errors) {
    AMBIT_LOG(kWarn, "xds", "rejected {} {}: {}", type_url, e.name, e.reason);
  }
  if (on_snapshot_) on_snapshot_(store_.Build());
  return errors;
}

Status XdsStateSink::ApplyAddress(const xds::XdsResource& r) {
  ::istio::workload::Address msg;
  RETURN_IF_ERROR(Unpack(r, xds::kAddressType, &msg));
  ASSIGN_OR_RETURN(auto converted, ConvertAddress(msg));
  if (auto* w = std::get_if<mesh::Workload>(&converted)) {
    Entry entry{Kind::kWorkload, w->uid};
    RETURN_IF_ERROR(store_.UpsertWorkload(std::move(*w)));
    Remember(address_names_, r.name, std::move(entry));
  } else {
    auto& s = std::get<mesh::Service>(converted);
    Entry entry{Kind::kService, s.Key()};
    RETURN_IF_ERROR(store_.UpsertService(std::move(s)));
    Remember(address_names_, r.name, std::move(entry));
  }
  return absl::OkStatus();
}

Status XdsStateSink::ApplyAuthorization(const xds::XdsResource& r) {
  ::istio::security::Authorization msg;
  RETURN_IF_ERROR(Unpack(r, xds::kAuthorizationType, &msg));
  ASSIGN_OR_RETURN(mesh::Policy p, ConvertAuthorization(msg));
  Entry entry{Kind::kPolicy, p.Key()};
  RETURN_IF_ERROR(store_.UpsertPolicy(std::move(p)));
  Remember(policy_names_, r.name, std::move(entry));
  return absl::OkStatus();
}

void XdsStateSink::Remember(std::map<std::string, Entry>& names, const std::string& name,
                            Entry entry) {
  auto [it, inserted] = names.try_emplace(name, entry);
  if (inserted) return;
  if (it->second.kind != entry.kind || it->second.key != entry.key) Forget(it->second);
  it->second = std::move(entry);
}

void XdsStateSink::Forget(const Entry& entry) {
  switch (entry.kind) {
    case Kind::kWorkload:
      store_.RemoveWorkload(entry.key);
      break;
    case Kind::kService:
      store_.RemoveService(entry.key);
      break;
    case Kind::kPolicy:
      store_.RemovePolicy(entry.key);
      break;
  }
}

void XdsStateSink::RemoveAddress(const std::string& name) {
  if (auto it = address_names_.find(name); it != address_names_.end()) {
    Forget(it->second);
    address_names_.erase(it);
    ++counters_.removed;
    return;
  }
  // Not received on this stream's lifetime: the naming rule of §5.1.
  if (store_.RemoveWorkload(name) || (ParseServiceKey(name) && store_.RemoveService(name))) {
    ++counters_.removed;
    return;
  }
  AMBIT_LOG(kDebug, "xds", "removal of unknown Address {} ignored", name);
}

void XdsStateSink::RemoveAuthorization(const std::string& name) {
  if (auto it = policy_names_.find(name); it != policy_names_.end()) {
    Forget(it->second);
    policy_names_.erase(it);
    ++counters_.removed;
    return;
  }
  if (store_.RemovePolicy(name)) {
    ++counters_.removed;
    return;
  }
  AMBIT_LOG(kDebug, "xds", "removal of unknown Authorization {} ignored", name);
}

void XdsStateSink::OnReady() {
  if (ready_) return;
  ready_ = true;
  if (on_ready_) on_ready_();
}

void XdsStateSink::OnStreamError(const Status& status) {
  ++counters_.stream_errors;
  AMBIT_LOG(kDebug, "xds", "stream error seen by the state sink: {}",
            std::string(status.message()));
}

}  // namespace ambit::xds_adapters
