// FakeXdsServer: an in-process delta ADS server
// (envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources)
// on 127.0.0.1 (or options.listen_address), plaintext or TLS. Holds Address
// (workload/service) and Authorization resources; answers each initial subscription with everything it holds of
// that type (plus removed_resources for names the client announced in
// initial_resource_versions that it no longer has); every Set*/Remove/Push
// sends one response to every connected stream subscribed to the type.
// Records every request (ACK/NACK, nonce, error_detail, initial versions,
// node) and each stream's headers. Stop()/Restart() keep the port and the
// resources. Thread-safe: gRPC handler threads and the test thread share it.
//
// Tests that drive a DeltaXdsClient must keep its loop running while they
// wait: use the non-blocking queries with Loop::RunUntil, e.g.
//   loop.RunUntil([&] { return server->FindAck(nonce).has_value(); }, 5s);
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "proto/authorization.pb.h"
#include "proto/discovery.pb.h"
#include "proto/workload.pb.h"

namespace grpc {
class Server;
}

namespace ambit::testing {

inline constexpr std::string_view kFakeXdsAddressType =
    "type.googleapis.com/istio.workload.Address";
inline constexpr std::string_view kFakeXdsAuthorizationType =
    "type.googleapis.com/istio.security.Authorization";

// One DeltaDiscoveryRequest as the server saw it.
struct FakeXdsRequest {
  int stream = 0;  // 1 = first stream accepted since Start()
  std::string type_url;
  std::string nonce;  // response_nonce; empty for an initial request
  bool nack = false;  // error_detail present
  std::string error_message;
  std::map<std::string, std::string> initial_resource_versions;
  std::string node_id;
  std::map<std::string, std::string> node_metadata;  // string fields of Node.metadata
};

struct FakeXdsOptions {
  // Both set: serve TLS with this certificate chain and key (PEM); else plaintext.
  std::string tls_cert_pem;
  std::string tls_key_pem;
  // "host:port"; port 0 = ephemeral. Restart() reuses the port it got.
  std::string listen_address = "127.0.0.1:0";
};

class FakeXdsServer {
 public:
  using Resource = ::envoy::service::discovery::v3::Resource;

  static StatusOr<std::unique_ptr<FakeXdsServer>> Start(FakeXdsOptions options = {});
  ~FakeXdsServer();

  const std::string& address() const { return address_; }  // "host:port"
  int port() const { return port_; }
  // Cancels every stream and closes the port (resources are kept).
  void Stop();
  // Listens again on the same port.
  Status Restart();

  // ---- resources; each returns the nonce of the pushed response ("" if no
  // stream was subscribed). Versions are assigned by the server.
  std::string SetWorkload(const ::istio::workload::Workload& w);           // name: uid
  std::string SetService(const ::istio::workload::Service& s);             // "ns/hostname"
  std::string SetPolicy(const ::istio::security::Authorization& a);        // "ns/name"
  std::string Remove(std::string_view type_url, const std::string& name);  // removed_resources
  // One raw response (not stored), e.g. to send invalid resources.
  std::string Push(std::string_view type_url, std::vector<Resource> resources,
                   std::vector<std::string> removed = {});
  // Wraps `msg` into a Resource (Any) with this name and version.
  static Resource MakeResource(const std::string& name, const std::string& version,
                               const google::protobuf::Message& msg);
  static Resource AddressResource(const ::istio::workload::Workload& w, const std::string& version);
  static Resource AddressResource(const ::istio::workload::Service& s, const std::string& version);

  // ---- observation (non-blocking) -------------------------------------------
  std::vector<FakeXdsRequest> requests() const;
  std::optional<FakeXdsRequest> FindAck(const std::string& nonce) const;  // ACK or NACK
  // Initial requests (no nonce) of stream `stream` for `type_url`.
  std::optional<FakeXdsRequest> FindInitial(int stream, std::string_view type_url) const;
  std::vector<std::multimap<std::string, std::string>> stream_headers() const;
  int streams_accepted() const;
  int active_streams() const;
  // Blocking wait (real time) — only when nothing else must run meanwhile.
  bool WaitFor(const std::function<bool()>& pred,
               std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;

 private:
  class Service;
  struct Stream;
  FakeXdsServer() = default;
  Status Listen(const std::string& address);
  // Runs a stream on a gRPC handler thread until it ends.
  void Serve(Stream& stream);
  void Record(int stream, const ::envoy::service::discovery::v3::DeltaDiscoveryRequest& req);
  // Sends `resp` (fresh nonce) to every subscribed stream; mu_ held.
  std::string Broadcast(::envoy::service::discovery::v3::DeltaDiscoveryResponse resp);
  std::string Store(std::string_view type_url, const std::string& name,
                    const google::protobuf::Message& msg);
  std::string NextNonce();

  FakeXdsOptions options_;
  std::string address_;
  int port_ = 0;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  int next_stream_ = 0;
  int next_nonce_ = 0;
  int next_version_ = 0;
  std::set<Stream*> streams_;
  std::map<std::string, std::map<std::string, Resource>> resources_;  // type → name → res
  std::vector<FakeXdsRequest> requests_;
  std::vector<std::multimap<std::string, std::string>> headers_;
};

}  // namespace ambit::testing
