// IstioControl: the agent's Istio mode (no --config). Configured by the
// environment exactly as ztunnel (ISTIO-COMPAT §9.3):
//   - workloads, services, policies: delta xDS from XDS_ADDRESS (common/xds)
//     applied by agent/xds_adapters into a WorkloadStore → Agent::OnSnapshot;
//   - pods: ZDS from istio-cni on INPOD_UDS (agent/capture) → Agent::AddPod /
//     RemovePod with the pod's netns fd (istio-cni installed the rules);
//   - certificates: the Istio CA at CA_ADDRESS with impersonation of each
//     pod's identity (FAKE_CA=true: the built-in CA of --ca-dir instead).
// Metrics: istio_xds_message_total{url}, istio_xds_message_bytes_total{url},
// istio_xds_connection_terminations_total{reason}, ambit_xds_rejected_resources,
// ambit_zds_* and ambit_ca_* counters. Control thread only.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "agent/capture/zds_session.h"
#include "common/base/status.h"
#include "common/identity/ca_client.h"
#include "common/xds/env.h"

namespace ambit::agent {

class Agent;

// Environment → Istio CA client options (CA_ADDRESS defaults to the xDS
// address, as both are istiod; CA_ROOT_CA, ALT_CA_HOSTNAME, CA_HEADER_*,
// AUTH_TOKEN, CLUSTER_ID). Impersonation is always on (shared node proxy).
StatusOr<identity::IstioCaOptions> CaOptionsFromEnv(const std::map<std::string, std::string>& env,
                                                    const xds::XdsEnvConfig& xds);

class IstioControl final : public capture::ZdsHandler {
 public:
  // Builds the CA source and SecretManager into `agent`, and the xDS and ZDS
  // clients (not started).
  static StatusOr<std::unique_ptr<IstioControl>> Create(Agent& agent,
                                                        const std::map<std::string, std::string>& env);
  ~IstioControl() override;

  void Start();
  void Stop();  // drain: stop both clients (pods stay until the process exits)
  // ZDS snapshot received and no pod add pending (readiness; thread-safe).
  bool pods_ready() const;
  void AddDumpConfig(std::map<std::string, std::string>& config) const;

  // capture::ZdsHandler (on the control loop).
  Status OnPodAdded(const capture::PodAdded& pod) override;
  Status OnPodRemoved(const capture::PodRemoved& pod) override;
  void OnSnapshotDone(const capture::SnapshotDone& done) override;

 private:
  class XdsMetricsHandler;
  struct Impl;
  explicit IstioControl(Agent& agent);

  Agent& agent_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ambit::agent
