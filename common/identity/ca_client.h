// IstioCaClient: certificates from an Istio CA (istiod) over gRPC,
// istio.v1.auth.IstioCertificateService/CreateCertificate (ISTIO-COMPAT §6.1).
//
// Threads: Fetch() is called on the control loop. The blocking gRPC call runs
// on a small pool of worker threads (at most `max_concurrent`, §6.2); the
// result comes back to the control loop with Loop::Post.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/identity/cert_source.h"

namespace grpc {
class Channel;
class ClientContext;
}

namespace ambit::identity {

struct IstioCaOptions {
  std::string address;  // CA_ADDRESS, "host:port"
  // CA_ROOT_CA: a PEM file path, "SYSTEM" (gRPC's default roots) or inline PEM.
  std::string root_ca;
  // Plaintext gRPC. Only for tests against a local fake CA: never in production.
  bool insecure_for_test = false;
  std::string alt_hostname;  // ALT_CA_HOSTNAME: TLS name expected from the CA
  // AUTH_TOKEN: the path of a token file if it exists (re-read on every call),
  // else a literal token. Empty: no authorization header.
  std::string auth_token;
  std::string cluster_id = "Kubernetes";                          // clusterid header
  std::vector<std::pair<std::string, std::string>> extra_headers;  // CA_HEADER_*
  std::chrono::seconds cert_ttl = std::chrono::hours(24);          // SECRET_TTL
  // Shared (node) mode: ask the CA to issue for the pod's identity
  // (metadata ImpersonatedIdentity).
  bool impersonate = false;
  std::chrono::milliseconds call_timeout = std::chrono::seconds(10);
  size_t max_concurrent = 8;
};

// Splits a PEM text holding one or more certificates into one PEM per
// certificate (a multi-root bundle). Error if empty or not PEM.
StatusOr<std::vector<std::string>> SplitPemCerts(std::string_view pem, std::string_view what);

// Turns a CreateCertificate cert_chain into a bundle: element 0 is the leaf,
// the last element the root bundle (possibly several roots), anything between
// intermediates. Rejects a leaf whose SPIFFE identity is not `requested`, or a
// leaf that does not match `key_pem`.
StatusOr<CertBundle> BundleFromCaResponse(const std::vector<std::string>& cert_chain,
                                          std::string_view key_pem, const Identity& requested);

// The AUTH_TOKEN rule: file contents (trimmed) if `setting` names an existing
// file, else `setting` itself.
StatusOr<std::string> ResolveAuthToken(const std::string& setting);

class IstioCaClient final : public CertSource {
 public:
  // Validates options and builds the channel (connection is made lazily).
  static StatusOr<std::unique_ptr<IstioCaClient>> Create(io::Loop& loop, IstioCaOptions options);
  // Cancels calls in flight, joins the workers; every pending fetch completes
  // (posted to the loop) with Cancelled.
  ~IstioCaClient() override;

  void Fetch(const Identity& id, CertCallback done) override;
  std::string_view name() const override { return name_; }
  const IstioCaOptions& options() const { return options_; }

 private:
  struct Job {
    Identity id;
    CertCallback done;
  };
  IstioCaClient(io::Loop& loop, IstioCaOptions options, std::shared_ptr<grpc::Channel> channel);
  void WorkerMain();
  // Runs on a worker: key + CSR, token, the RPC, response checks.
  StatusOr<CertBundle> Call(const Identity& id);

  io::Loop& loop_;
  IstioCaOptions options_;
  std::string name_;
  std::shared_ptr<grpc::Channel> channel_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  std::vector<grpc::ClientContext*> active_;  // calls in flight, for TryCancel
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace ambit::identity
