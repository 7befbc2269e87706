// DnsWorker: the DNS proxy of one worker thread. For every captured pod it
// serves that worker's SO_REUSEPORT sockets on 127.0.0.1:15053 (and [::1]
// when the pod has IPv6 loopback), UDP and TCP, inside the pod's netns:
// parse (malformed → FORMERR/NOTIMP or dropped, counted), answer mesh names
// from the snapshot (local_names.h), forward the rest through Upstream and
// relay the answer (NXDOMAIN and TC included; only the id is the client's).
// Loop-thread only; state arrives by post from the control thread.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "agent/dns/dns_metrics.h"
#include "agent/dns/local_names.h"
#include "agent/dns/upstream.h"
#include "common/io/cancel.h"
#include "common/io/loop.h"
#include "common/io/task.h"
#include "common/mesh/snapshot.h"
#include "common/net/address.h"
#include "common/net/fd.h"
#include "common/net/netns.h"

namespace ambit::dns {

// Where the proxy listens (ISTIO_META_DNS_PROXY_ADDR, default localhost:15053:
// both loopbacks; an IP:port binds that one address).
struct ListenAddress {
  uint16_t port = 15053;
  std::optional<net::IpAddress> ip;  // nullopt = 127.0.0.1 + ::1 (best effort)
  static StatusOr<ListenAddress> Parse(std::string_view text);
  std::string ToString() const;
};

// One worker's sockets of one pod (any may be invalid: no IPv6 loopback).
struct DnsSockets {
  net::Fd udp4, tcp4, udp6, tcp6;
};

// Opens the sockets on the calling thread (run it inside the pod netns): the
// IPv4 (or explicit) address must bind; [::1] is skipped when the netns has
// no IPv6 loopback. SO_REUSEPORT (one set per worker), SO_MARK `mark`.
StatusOr<net::Fd> OpenDnsSocket(const net::SocketAddress& addr, bool tcp, uint32_t mark);

// A captured pod as the DNS proxy sees it.
struct DnsPod {
  DnsClient client;
  std::shared_ptr<const net::NetnsHandle> netns;  // upstream sockets are made here
};

struct DnsState {
  std::shared_ptr<const mesh::Snapshot> snapshot;  // may be null (no config yet)
  std::map<std::string, DnsPod> pods;              // by pod uid
};

struct DnsWorkerOptions {
  LocalNamesConfig names;
  base::Duration tcp_idle_timeout = std::chrono::seconds(5);  // ztunnel's TCP request timeout
  size_t max_tcp_connections = 512;                           // per worker
};

class DnsWorker {
 public:
  DnsWorker(io::Loop& loop, size_t shard, DnsWorkerOptions options, DnsMetrics& metrics,
            Upstream& upstream);
  ~DnsWorker();
  DnsWorker(const DnsWorker&) = delete;
  DnsWorker& operator=(const DnsWorker&) = delete;

  void SetState(std::shared_ptr<const DnsState> state) { state_ = std::move(state); }
  void AddPod(const std::string& uid, DnsSockets sockets);
  void RemovePod(const std::string& uid);  // immediate: sockets close, queries dropped
  void Drain();                            // stop serving every pod
  size_t pods() const { return pods_.size(); }
  uint64_t answered() const { return answered_; }

 private:
  struct PodSet;
  static io::Task<void> ServeUdp(DnsWorker* w, std::shared_ptr<PodSet> set, int fd);
  static io::Task<void> AcceptTcp(DnsWorker* w, std::shared_ptr<PodSet> set, int fd);
  static io::Task<void> ServeTcp(DnsWorker* w, std::shared_ptr<PodSet> set, net::Fd conn);
  static io::Task<void> AnswerUdp(DnsWorker* w, std::shared_ptr<PodSet> set, int fd,
                                  std::vector<uint8_t> query, sockaddr_storage peer, socklen_t len);
  // The reply to one query (empty: drop it).
  static io::Task<std::vector<uint8_t>> Answer(DnsWorker* w, std::shared_ptr<PodSet> set,
                                               std::vector<uint8_t> query, bool tcp);
  static io::Task<UpstreamResult> Forward(DnsWorker* w, std::shared_ptr<PodSet> set,
                                          const DnsPod& pod, std::vector<uint8_t> query, bool tcp);

  io::Loop& loop_;
  size_t shard_;
  DnsWorkerOptions options_;
  DnsMetrics& metrics_;
  Upstream& upstream_;
  std::shared_ptr<const DnsState> state_;
  std::map<std::string, std::shared_ptr<PodSet>> pods_;
  std::minstd_rand rng_;
  size_t tcp_live_ = 0;
  uint64_t answered_ = 0;
};

}  // namespace ambit::dns
