// The upstream side of the DNS proxy: queries the mesh cannot answer go, as
// the client sent them, to the nameservers of the agent's own resolv.conf
// (read once at start, honoured in order), as ztunnel does. c-ares does the
// resolver-client work (server failover, retries, timeouts, TCP framing) on
// one dedicated thread with its own poll loop, so workers never block: a
// worker posts a query and gets the answer back through its callback, which
// runs on the upstream thread (the caller posts it to its own loop).
//
// Like ztunnel, upstream sockets live in the asking pod's network namespace
// (created there on the upstream thread with SO_MARK, so istio-cni's rules do
// not capture them and its raw-table rules give them their conntrack zone).
// Each pod has two c-ares channels: UDP with truncation relayed (TC set: the
// client retries over TCP, which goes upstream over TCP) and TCP.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/net/address.h"
#include "common/net/fd.h"
#include "common/net/netns.h"

namespace ambit::dns {

struct UpstreamConfig {
  std::string source;                       // resolv.conf path (log, config_dump)
  std::vector<net::SocketAddress> servers;  // in order
  base::Duration timeout = std::chrono::seconds(2);  // per try (options timeout:)
  int attempts = 2;                                  // options attempts:
  uint32_t mark = 0x539;
};

// Parses resolv.conf text: `nameserver <ip>` lines (port 53, IPv6 zone ids
// dropped), `options timeout:N attempts:N`. No usable nameserver (or no
// file) means 127.0.0.1:53, as for the C library (logged).
StatusOr<UpstreamConfig> ParseResolvConf(std::string_view text, std::string source);
StatusOr<UpstreamConfig> ReadResolvConf(const std::string& path);
std::string DescribeServers(const UpstreamConfig& c);  // "10.96.0.10:53, [fd00::a]:53"

// Why a forwarded query got no answer (metric-free; the caller counts).
enum class UpstreamError : uint8_t {
  kNone,
  kTimeout,      // no server answered in time
  kRefused,      // connection refused / unreachable / socket not creatable
  kServerFailed, // every server answered SERVFAIL, NOTIMP or REFUSED
  kBadAnswer,    // an answer c-ares could not use
  kCancelled,    // the pod left, or the agent is stopping
  kOther,
};
std::string_view UpstreamErrorName(UpstreamError e);

struct UpstreamResult {
  UpstreamError error = UpstreamError::kNone;
  Status status;
  std::vector<uint8_t> answer;  // the upstream's bytes (id as c-ares sent it)
  bool ok() const { return error == UpstreamError::kNone; }
};

class Upstream {
 public:
  using Done = absl::AnyInvocable<void(UpstreamResult)>;

  static StatusOr<std::unique_ptr<Upstream>> Start(UpstreamConfig config);
  ~Upstream();  // cancels what is in flight (callbacks get kCancelled), joins
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  // Thread-safe. `netns` null: the agent's own namespace. `done` runs exactly
  // once, on the upstream thread.
  void Forward(const std::string& pod, std::shared_ptr<const net::NetnsHandle> netns, bool tcp,
               std::vector<uint8_t> query, Done done);
  // Thread-safe: drops the pod's channels (its queries end with kCancelled).
  void ForgetPod(const std::string& pod);

  const UpstreamConfig& config() const { return config_; }
  uint64_t sockets_opened() const { return sockets_opened_.load(std::memory_order_relaxed); }

 private:
  struct Request;
  struct PodChannels;
  explicit Upstream(UpstreamConfig config);
  void Run();
  void TakeRequests();
  PodChannels* ChannelsFor(const Request& r);
  void Wake();

  UpstreamConfig config_;
  Status init_;
  net::Fd wake_fd_;
  std::mutex mu_;
  std::vector<Request> queue_;
  bool stopping_ = false;
  std::map<std::string, std::unique_ptr<PodChannels>> pods_;  // upstream thread only
  std::optional<net::NetnsHandle> home_;                      // upstream thread's netns
  std::atomic<uint64_t> sockets_opened_{0};
  std::thread thread_;
};

}  // namespace ambit::dns
