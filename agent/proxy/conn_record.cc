#include "agent/proxy/conn_record.h"

#include <fmt/format.h>

#include <vector>

#include "common/base/log.h"

namespace ambit::agent {

namespace {

std::string_view DirectionName(Direction d) {
  return d == Direction::kOutbound ? "outbound" : "inbound";
}

}  // namespace

ConnPeers InboundPeersBase(const PodContext& pod, const mesh::Workload& local,
                           const mesh::Workload* src_wl) {
  ConnPeers p;
  p.direction = Direction::kInbound;
  p.pod_uid = pod.uid;
  if (src_wl != nullptr) {
    p.src_workload = src_wl->name;
    p.src_namespace = src_wl->ns;
    p.src_cluster = src_wl->cluster_id;
  }
  p.dst_workload = local.name;
  p.dst_namespace = local.ns;
  p.dst_cluster = local.cluster_id;
  p.dst_workload_uid = local.uid;
  p.labels.reporter_source = false;
  p.labels.source = LabelsFor(src_wl);
  p.labels.destination = LabelsFor(&local);
  p.labels.destination.principal = pod.identity.ToString();
  return p;
}

size_t PeersCache::Hash::operator()(const Key& k) const {
  size_t h = std::hash<std::string>()(k.s);
  for (const void* p : {k.a, k.b, k.c, k.d}) h = h * 31 + std::hash<const void*>()(p);
  return h * 31 + static_cast<size_t>(k.kind);
}

std::shared_ptr<const ConnPeers> PeersCache::Put(const Key& key, ConnPeers peers) {
  metrics::Labels values = peers.labels.Values();
  peers.opened = metrics_.opened.Get(shard_, values);
  peers.received = metrics_.received_bytes.Get(shard_, values);
  peers.sent = metrics_.sent_bytes.Get(shard_, values);
  peers.closed_ok = metrics_.closed.Get(shard_, values);  // response_flags "-" (the default)
  auto shared = std::make_shared<const ConnPeers>(std::move(peers));
  if (map_.size() >= kMaxEntries) map_.clear();  // live connections keep their own reference
  map_.emplace(key, shared);
  return shared;
}

ConnectionRecorder::ConnectionRecorder(TcpMetrics& metrics, size_t shard, ConnTracker& tracker,
                                       std::shared_ptr<const ConnPeers> peers,
                                       const net::SocketAddress& src, const net::SocketAddress& dst,
                                       io::CancelScope* scope)
    : metrics_(metrics),
      shard_(shard),
      tracker_(tracker),
      peers_(std::move(peers)),
      src_(src),
      dst_(dst),
      scope_(scope),
      start_(std::chrono::steady_clock::now()) {
  peers_->opened->Inc();
  pos_ = tracker_.Add(this);
  if (base::ProcessLogger().Enabled(base::LogLevel::kDebug, "access")) {
    AccessFields fields;
    IdentityFields(fields);
    base::ProcessLogger().Emit(base::LogLevel::kDebug, "access", "connection opened", fields.span());
  }
}

// The fields of ISTIO-COMPAT §8.3 both access-log events carry, in order.
void ConnectionRecorder::IdentityFields(AccessFields& out) const {
  const ConnPeers& p = *peers_;
  auto add = [&out](std::string_view key, const std::string& value) {
    if (!value.empty()) out.Add(key, value);
  };
  out.src_addr = src_.ToString();
  out.dst_addr = dst_.ToString();
  out.Add("src.addr", out.src_addr);
  add("src.workload", p.src_workload);
  add("src.namespace", p.src_namespace);
  add("src.identity", p.src_identity);
  add("src.cluster", p.src_cluster);
  out.Add("dst.addr", out.dst_addr);
  add("dst.hbone_addr", p.hbone_addr);
  add("dst.service", p.dst_service);
  add("dst.workload", p.dst_workload);
  add("dst.namespace", p.dst_namespace);
  add("dst.identity", p.dst_identity);
  add("dst.cluster", p.dst_cluster);
  out.Add("direction", DirectionName(p.direction));
}

ConnectionRecorder::~ConnectionRecorder() {
  if (!finished_) Finish("-", absl::CancelledError("connection abandoned"));
  tracker_.Remove(pos_);
}

void ConnectionRecorder::OnUp(size_t n) {
  // "up" = bytes from the TCP side the relay started on. Outbound that is the
  // app (received); inbound it is the local app's reply (sent back).
  if (peers_->direction == Direction::kOutbound) {
    recv_ += n;
    peers_->received->Inc(n);
  } else {
    sent_ += n;
    peers_->sent->Inc(n);
  }
}

void ConnectionRecorder::OnDown(size_t n) {
  if (peers_->direction == Direction::kOutbound) {
    sent_ += n;
    peers_->sent->Inc(n);
  } else {
    recv_ += n;
    peers_->received->Inc(n);
  }
}

// istio_tcp_connections_closed (and _failed when flags != "-"): a clean close
// is one relaxed add on a pre-resolved counter; a failed close looks up its
// response_flags label set once.
void ConnectionRecorder::CountClose(std::string_view response_flags) {
  if (response_flags.empty() || response_flags == kFlagNone) {
    peers_->closed_ok->Inc();
    return;
  }
  ConnectionLabels labels = peers_->labels;
  labels.response_flags = std::string(response_flags);
  metrics::Labels values = labels.Values();
  metrics_.closed.Get(shard_, values)->Inc();
  metrics_.failed.Get(shard_, values)->Inc();
}

void ConnectionRecorder::Finish(std::string_view response_flags, const Status& status) {
  if (finished_) return;
  finished_ = true;
  CountClose(response_flags);
  const bool failed = !late_rejection_.empty() || (!status.ok() && !absl::IsCancelled(status));
  const auto level = failed ? base::LogLevel::kError : base::LogLevel::kInfo;
  auto& logger = base::ProcessLogger();
  if (!logger.Enabled(level, "access")) return;  // no field formatting when off
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - start_)
                .count();
  AccessFields fields;
  IdentityFields(fields);
  // §8.3: outbound bytes_sent = the app's request bytes, bytes_recv = the
  // response; inbound bytes_sent = written back to the HBONE client. (The
  // istio_tcp_* metrics count request bytes as received for both reporters.)
  const bool outbound = peers_->direction == Direction::kOutbound;
  fields.bytes_sent = std::to_string(outbound ? recv_ : sent_);
  fields.bytes_recv = std::to_string(outbound ? sent_ : recv_);
  fields.duration = fmt::format("{}ms", ms);
  fields.Add("bytes_sent", fields.bytes_sent);
  fields.Add("bytes_recv", fields.bytes_recv);
  fields.Add("duration", fields.duration);
  if (!late_rejection_.empty()) fields.Add("reason", late_rejection_);
  std::string error;
  if (failed) {
    error = late_rejection_.empty() ? status.ToString() : late_rejection_;
    fields.Add("error", error);
  }
  logger.Emit(level, "access", "connection complete", fields.span());
}

std::vector<ConnSummary> ConnTracker::Summaries() const {
  std::lock_guard lock(mu_);
  std::vector<ConnSummary> out;
  out.reserve(live_.size());
  for (const ConnectionRecorder* r : live_) {
    const ConnPeers& p = r->peers();
    ConnSummary s;
    s.pod_uid = p.pod_uid;
    s.direction = p.direction;
    s.src = r->src().ToString();
    s.original_dst = p.hbone_addr.empty() ? r->dst().ToString() : p.hbone_addr;
    s.actual_dst = r->dst().ToString();
    s.hbone = p.mtls;
    out.push_back(std::move(s));
  }
  return out;
}

size_t ConnTracker::CancelPod(const std::string& uid) {
  size_t n = 0;
  for (ConnectionRecorder* r : live_) {
    if (r->peers().pod_uid == uid && r->scope() != nullptr && !r->scope()->cancelled()) {
      r->scope()->Cancel();
      ++n;
    }
  }
  return n;
}

size_t ConnTracker::Reauthorize(const AgentState& state) {
  if (!state.authorize) return 0;
  size_t n = 0;
  for (ConnectionRecorder* r : live_) {
    const ConnPeers& info = r->peers();
    if (info.direction != Direction::kInbound || !r->authz().has_value()) continue;
    if (r->scope() == nullptr || r->scope()->cancelled()) continue;
    const mesh::Workload* dst = state.snapshot->FindWorkload(info.dst_workload_uid);
    AuthzRequest req = *r->authz();
    req.destination = dst;
    req.peer = info.peer_identity.has_value() ? &*info.peer_identity : nullptr;
    if (dst == nullptr) continue;  // pod removal handles this case
    AuthzDecision d = state.authorize(req);
    if (d.allow) continue;
    r->set_late_rejected(fmt::format("connection closed by a policy change ({}): {}",
                                     d.policy.empty() ? "no matching ALLOW" : d.policy, d.reason));
    AMBIT_LOG(kInfo, "authz", "late rejection of {} -> {}: {}", r->src().ToString(),
              r->dst().ToString(), r->late_rejection());
    r->scope()->Cancel();
    ++n;
  }
  return n;
}

void LogConnectionFailed(Direction d, const net::SocketAddress& src, const net::SocketAddress& dst,
                         const Status& error) {
  auto& logger = base::ProcessLogger();
  if (!logger.Enabled(base::LogLevel::kWarn, "access")) return;
  const std::string src_addr = src.ToString(), dst_addr = dst.ToString(), text = error.ToString();
  base::LogField fields[] = {{"src.addr", src_addr},
                             {"dst.addr", dst_addr},
                             {"direction", DirectionName(d)},
                             {"error", text}};
  logger.Emit(base::LogLevel::kWarn, "access", "connection failed", fields);
}

}  // namespace ambit::agent
