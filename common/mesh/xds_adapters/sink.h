// XdsStateSink: the xds::XdsHandler that applies Address and Authorization
// resources to a mesh::WorkloadStore and publishes one new snapshot per
// response. Control thread only (DeltaXdsClient calls it on the loop).
//
// Invalid resources are returned as ResourceErrors (the client NACKs them by
// name) and leave whatever the store held for that name untouched; valid ones
// of the same response are applied. Removal: the name a resource arrived
// under is remembered; an unknown removed name is tried as a workload uid,
// then as a service key "ns/hostname" (Address), or a policy key (Authorization).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/mesh/snapshot.h"
#include "common/xds/types.h"

namespace ambit::xds_adapters {

class XdsStateSink final : public xds::XdsHandler {
 public:
  using SnapshotCallback = std::function<void(std::shared_ptr<const mesh::Snapshot>)>;

  // `store` must outlive the sink; `on_snapshot` receives every new snapshot.
  XdsStateSink(mesh::WorkloadStore& store, SnapshotCallback on_snapshot)
      : store_(store), on_snapshot_(std::move(on_snapshot)) {}

  std::vector<xds::ResourceError> OnResources(std::string_view type_url,
                                              std::vector<xds::XdsResource> added,
                                              std::vector<std::string> removed) override;
  void OnReady() override;
  void OnStreamError(const Status& status) override;

  // Called once when the client reports every type received.
  void set_on_ready(std::function<void()> fn) { on_ready_ = std::move(fn); }
  bool ready() const { return ready_; }

  struct Counters {
    uint64_t responses = 0, applied = 0, rejected = 0, removed = 0, stream_errors = 0;
  };
  const Counters& counters() const { return counters_; }

 private:
  enum class Kind : uint8_t { kWorkload, kService, kPolicy };
  struct Entry {
    Kind kind;
    std::string key;  // uid, "ns/hostname" or "ns/name"
  };

  Status ApplyAddress(const xds::XdsResource& r);
  Status ApplyAuthorization(const xds::XdsResource& r);
  // Records that `name` now carries `entry`, dropping what it carried before.
  void Remember(std::map<std::string, Entry>& names, const std::string& name, Entry entry);
  void Forget(const Entry& entry);
  void RemoveAddress(const std::string& name);
  void RemoveAuthorization(const std::string& name);

  mesh::WorkloadStore& store_;
  SnapshotCallback on_snapshot_;
  std::function<void()> on_ready_;
  bool ready_ = false;
  Counters counters_;
  std::map<std::string, Entry> address_names_;  // resource name → what it created
  std::map<std::string, Entry> policy_names_;
};

}  // namespace ambit::xds_adapters
