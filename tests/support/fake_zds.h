// FakeZdsNodeAgent: plays istio-cni's side of ZDS (ISTIO-COMPAT §4.1) for
// tests. Listens on a SOCK_SEQPACKET path ("@name" = abstract), accepts one
// agent at a time, checks its ZdsHello, sends scripted requests with real
// netns fds (well-formed or not) and returns/records each ack's error text.
// Driven synchronously from the test thread; every wait has a timeout.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/capture/zds_codec.h"
#include "common/base/status.h"
#include "common/net/fd.h"

namespace ambit::testing {

class FakeZdsNodeAgent {
 public:
  using Ms = std::chrono::milliseconds;
  static constexpr Ms kTimeout{5000};  // the node agent's own deadline

  static StatusOr<std::unique_ptr<FakeZdsNodeAgent>> Listen(std::string path);
  ~FakeZdsNodeAgent();

  const std::string& path() const { return path_; }
  // Accepts the next agent connection and reads its hello (must be V1).
  Status AcceptClient(Ms timeout = kTimeout);
  int hello_version() const { return hello_version_; }
  uint64_t accepted() const { return accepted_; }

  // Each sends one request and waits for the ack; returns the ack's error text
  // ("" = ack). `fds` are borrowed (duplicated into the datagram by the kernel).
  StatusOr<std::string> Add(std::string_view uid, const agent::capture::ZdsWorkloadInfo& info,
                            std::vector<int> fds);
  StatusOr<std::string> Keep(std::string_view uid);
  StatusOr<std::string> Del(std::string_view uid);
  StatusOr<std::string> SnapshotSent();
  StatusOr<std::string> SendRaw(std::string_view bytes, std::vector<int> fds = {});

  // Waits until the agent closed the connection (after a protocol error).
  Status ExpectClientClosed(Ms timeout = kTimeout);
  void DropClient();     // closes the current connection
  void StopListening();  // closes the listener too (agent sees ECONNREFUSED)

  const std::vector<std::string>& acks() const { return acks_; }

  // Opens a netns for sending: a name (/var/run/netns/<name>) or a path such
  // as /proc/self/ns/net.
  static StatusOr<net::Fd> OpenNetns(std::string_view name_or_path);

 private:
  explicit FakeZdsNodeAgent(std::string path) : path_(std::move(path)) {}

  std::string path_;
  net::Fd listen_fd_;
  net::Fd conn_;
  int hello_version_ = -1;
  uint64_t accepted_ = 0;
  std::vector<std::string> acks_;
};

}  // namespace ambit::testing
