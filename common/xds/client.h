// DeltaXdsClient: one delta ADS stream carrying every subscribed type
// (ISTIO-COMPAT §5.1). Threads: the blocking stream runs on its own thread;
// each response is handed to the XdsHandler on the control loop (Loop::Post)
// and the stream thread waits for the handler's verdict before it sends the
// ACK/NACK, so responses are applied in order and never concurrently.
//
// Protocol: per type an initial wildcard request with the Node and, after a
// reconnect, initial_resource_versions = every name→version still held;
// ACK = type_url + nonce; NACK adds error_detail "<name>: <reason>; ...".
// Reconnect backoff: 10 ms doubling to 15 s, reset once a response arrived.
// Ready once every subscribed type has been received (XdsHandler::OnReady).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/base/status.h"
#include "common/io/loop.h"
#include "common/xds/grpc_transport.h"
#include "common/xds/node.h"
#include "common/xds/protocol.h"
#include "common/xds/transport.h"
#include "common/xds/types.h"

namespace ambit::xds {

struct XdsClientOptions {
  NodeInfo node;
  std::vector<std::string> type_urls = {std::string(kAddressType), std::string(kAuthorizationType)};
  std::chrono::milliseconds backoff_initial = std::chrono::milliseconds(10);
  std::chrono::milliseconds backoff_max = std::chrono::seconds(15);
};

class DeltaXdsClient {
 public:
  // `loop` is the control loop; `handler` must outlive the client. Call
  // Start() to connect.
  static StatusOr<std::unique_ptr<DeltaXdsClient>> Create(io::Loop& loop, XdsClientOptions options,
                                                          std::unique_ptr<XdsTransport> transport,
                                                          XdsHandler& handler);
  // Same with a GrpcXdsTransport built from `grpc`.
  static StatusOr<std::unique_ptr<DeltaXdsClient>> CreateGrpc(io::Loop& loop,
                                                              XdsClientOptions options,
                                                              GrpcTransportOptions grpc,
                                                              XdsHandler& handler);
  // On the loop thread: cancels the stream, joins the stream thread; the
  // handler is not called any more.
  ~DeltaXdsClient();
  DeltaXdsClient(const DeltaXdsClient&) = delete;
  DeltaXdsClient& operator=(const DeltaXdsClient&) = delete;

  void Start();
  bool ready() const { return ready_.load(); }
  uint64_t streams_opened() const { return streams_opened_.load(); }
  // Accepted resources per type (thread-safe copy), as sent on reconnect.
  std::map<std::string, VersionMap> KnownVersions() const;

 private:
  struct Shared;
  DeltaXdsClient(io::Loop& loop, XdsClientOptions options, ::envoy::config::core::v3::Node node,
                 std::unique_ptr<XdsTransport> transport, XdsHandler& handler);
  void ThreadMain();
  // One stream from open to end; returns why it ended.
  Status RunStream(XdsStream& stream, bool* got_response);
  // Validates, dispatches to the handler on the loop, waits for its verdict.
  // nullopt when stopping.
  std::optional<std::vector<ResourceError>> Process(const DeltaResponse& response);
  void Record(const std::string& type_url, const DeltaResponse& response,
              const std::vector<ResourceError>& errors);
  void MarkReceived(const std::string& type_url);
  void PostToHandler(absl::AnyInvocable<void(XdsHandler&)> fn);

  io::Loop& loop_;
  XdsClientOptions options_;
  ::envoy::config::core::v3::Node node_;
  std::unique_ptr<XdsTransport> transport_;
  std::shared_ptr<Shared> shared_;
  std::thread thread_;
  std::atomic<bool> ready_{false};
  std::atomic<uint64_t> streams_opened_{0};

  mutable std::mutex versions_mu_;
  std::map<std::string, VersionMap> known_;  // type_url → accepted name → version
  std::set<std::string> received_types_;     // stream thread only
};

}  // namespace ambit::xds
