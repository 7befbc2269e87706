// ambit-fake-istio's ZDS commands: one FakeZdsNodeAgent per node.
#include <vector>

#include "tests/support/fake_istio.h"

namespace ambit::testing {

using fake_istio::GetInt;
using fake_istio::GetString;
using Json = FakeIstio::Json;
using Ms = std::chrono::milliseconds;

namespace {

StatusOr<Ms> Timeout(const Json& req) {
  ASSIGN_OR_RETURN(int64_t ms, GetInt(req, "timeout_ms", FakeZdsNodeAgent::kTimeout.count()));
  if (ms < 0 || ms > 120'000) return absl::InvalidArgumentError("timeout_ms: want 0..120000");
  return Ms(ms);
}

// `fds` copies of the netns at `path` (0, 1 or 2 — the bad counts are for
// protocol-error tests). The returned Fds keep them open until sent.
StatusOr<std::vector<net::Fd>> OpenFds(const Json& req) {
  ASSIGN_OR_RETURN(int64_t count, GetInt(req, "fds", 1));
  if (count < 0 || count > 4) return absl::InvalidArgumentError("fds: want 0..4");
  std::vector<net::Fd> fds;
  if (count == 0) return fds;
  ASSIGN_OR_RETURN(std::string netns, GetString(req, "netns"));
  for (int64_t i = 0; i < count; ++i) {
    ASSIGN_OR_RETURN(net::Fd fd, FakeZdsNodeAgent::OpenNetns(netns));
    fds.push_back(std::move(fd));
  }
  return fds;
}

std::vector<int> Raw(const std::vector<net::Fd>& fds) {
  std::vector<int> out;
  for (const net::Fd& fd : fds) out.push_back(fd.get());
  return out;
}

}  // namespace

StatusOr<FakeZdsNodeAgent*> FakeIstio::Zds(const Json& req) {
  ASSIGN_OR_RETURN(std::string node, GetString(req, "node"));
  auto it = zds_.find(node);
  if (it == zds_.end()) {
    return absl::FailedPreconditionError("no ZDS listener for node " + node +
                                         " (send zds_listen first)");
  }
  return it->second.get();
}

// ack → "ack"; NACK → "nack" + its text; the agent closing the connection
// (its answer to a protocol error) → "closed".
StatusOr<Json> FakeIstio::AckReply(const StatusOr<std::string>& ack) {
  if (ack.ok()) {
    if (ack->empty()) return Json{{"result", "ack"}};
    return Json{{"result", "nack"}, {"ack_error", *ack}};
  }
  if (absl::IsUnavailable(ack.status())) {
    return Json{{"result", "closed"}, {"detail", std::string(ack.status().message())}};
  }
  return ack.status();
}

StatusOr<Json> FakeIstio::ZdsListen(const Json& req) {
  ASSIGN_OR_RETURN(std::string node, GetString(req, "node"));
  ASSIGN_OR_RETURN(std::string path, GetString(req, "path"));
  if (zds_.contains(node)) return absl::AlreadyExistsError("node " + node + " already listens");
  ASSIGN_OR_RETURN(std::unique_ptr<FakeZdsNodeAgent> agent, FakeZdsNodeAgent::Listen(path));
  zds_[node] = std::move(agent);
  return Json{{"path", path}};
}

StatusOr<Json> FakeIstio::ZdsAccept(const Json& req) {
  ASSIGN_OR_RETURN(FakeZdsNodeAgent * zds, Zds(req));
  ASSIGN_OR_RETURN(Ms timeout, Timeout(req));
  RETURN_IF_ERROR(zds->AcceptClient(timeout));
  return Json{{"hello_version", zds->hello_version()}, {"accepted", zds->accepted()}};
}

StatusOr<Json> FakeIstio::ZdsAdd(const Json& req) {
  ASSIGN_OR_RETURN(FakeZdsNodeAgent * zds, Zds(req));
  ASSIGN_OR_RETURN(std::string uid, GetString(req, "uid"));
  agent::capture::ZdsWorkloadInfo info;
  ASSIGN_OR_RETURN(info.name, GetString(req, "name"));
  info.namespace_ = GetString(req, "namespace", "default");
  info.service_account = GetString(req, "service_account", "default");
  ASSIGN_OR_RETURN(std::vector<net::Fd> fds, OpenFds(req));
  return AckReply(zds->Add(uid, info, Raw(fds)));
}

StatusOr<Json> FakeIstio::ZdsKeep(const Json& req) {
  ASSIGN_OR_RETURN(FakeZdsNodeAgent * zds, Zds(req));
  ASSIGN_OR_RETURN(std::string uid, GetString(req, "uid"));
  return AckReply(zds->Keep(uid));
}

StatusOr<Json> FakeIstio::ZdsDel(const Json& req) {
  ASSIGN_OR_RETURN(FakeZdsNodeAgent * zds, Zds(req));
  ASSIGN_OR_RETURN(std::string uid, GetString(req, "uid"));
  return AckReply(zds->Del(uid));
}

StatusOr<Json> FakeIstio::ZdsSnapshot(const Json& req) {
  ASSIGN_OR_RETURN(FakeZdsNodeAgent * zds, Zds(req));
  return AckReply(zds->SnapshotSent());
}

// Any bytes (base64) with 0..4 netns fds: for malformed-message tests.
StatusOr<Json> FakeIstio::ZdsRaw(const Json& req) {
  ASSIGN_OR_RETURN(FakeZdsNodeAgent * zds, Zds(req));
  ASSIGN_OR_RETURN(std::string b64, GetString(req, "bytes_b64"));
  ASSIGN_OR_RETURN(std::string bytes, fake_istio::Base64Decode(b64, "bytes_b64"));
  Json with_default = req;
  if (!with_default.contains("fds")) with_default["fds"] = 0;
  ASSIGN_OR_RETURN(std::vector<net::Fd> fds, OpenFds(with_default));
  return AckReply(zds->SendRaw(bytes, Raw(fds)));
}

StatusOr<Json> FakeIstio::ZdsExpectClosed(const Json& req) {
  ASSIGN_OR_RETURN(FakeZdsNodeAgent * zds, Zds(req));
  ASSIGN_OR_RETURN(Ms timeout, Timeout(req));
  RETURN_IF_ERROR(zds->ExpectClientClosed(timeout));
  return Json{{"closed", true}};
}

StatusOr<Json> FakeIstio::ZdsDrop(const Json& req) {
  ASSIGN_OR_RETURN(FakeZdsNodeAgent * zds, Zds(req));
  zds->DropClient();
  return Json::object();
}

StatusOr<Json> FakeIstio::ZdsClose(const Json& req) {
  ASSIGN_OR_RETURN(std::string node, GetString(req, "node"));
  if (zds_.erase(node) == 0) return absl::NotFoundError("no ZDS listener for node " + node);
  return Json::object();
}

}  // namespace ambit::testing
