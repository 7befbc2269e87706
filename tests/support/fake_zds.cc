#include "tests/support/fake_zds.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "agent/capture/zds_socket.h"
#include "common/net/cat.h"

namespace ambit::testing {

namespace cap = agent::capture;
using net::Cat;

StatusOr<std::unique_ptr<FakeZdsNodeAgent>> FakeZdsNodeAgent::Listen(std::string path) {
  std::unique_ptr<FakeZdsNodeAgent> f(new FakeZdsNodeAgent(std::move(path)));
  ASSIGN_OR_RETURN(f->listen_fd_, cap::ZdsListen(f->path_));
  return f;
}

FakeZdsNodeAgent::~FakeZdsNodeAgent() { StopListening(); }

Status FakeZdsNodeAgent::AcceptClient(Ms timeout) {
  if (!listen_fd_.valid()) return absl::FailedPreconditionError("fake ZDS not listening");
  ASSIGN_OR_RETURN(conn_, cap::ZdsAccept(listen_fd_.get(), timeout));
  ++accepted_;
  ASSIGN_OR_RETURN(cap::ZdsDatagram hello, cap::ZdsRecv(conn_.get(), timeout));
  if (!hello.fds.empty()) return absl::InvalidArgumentError("ZdsHello carried fds");
  ASSIGN_OR_RETURN(hello_version_, cap::DecodeZdsHelloVersion(hello.bytes));
  if (hello_version_ != 1) {
    return absl::InvalidArgumentError(Cat("ZdsHello version ", hello_version_, ", want V1"));
  }
  return absl::OkStatus();
}

StatusOr<std::string> FakeZdsNodeAgent::SendRaw(std::string_view bytes, std::vector<int> fds) {
  if (!conn_.valid()) return absl::FailedPreconditionError("fake ZDS has no client");
  RETURN_IF_ERROR(cap::ZdsSend(conn_.get(), bytes, fds));
  ASSIGN_OR_RETURN(cap::ZdsDatagram resp, cap::ZdsRecv(conn_.get(), kTimeout));
  if (!resp.fds.empty()) return absl::InvalidArgumentError("WorkloadResponse carried fds");
  ASSIGN_OR_RETURN(std::string error, cap::DecodeZdsAck(resp.bytes));
  acks_.push_back(error);
  return error;
}

StatusOr<std::string> FakeZdsNodeAgent::Add(std::string_view uid, const cap::ZdsWorkloadInfo& info,
                                            std::vector<int> fds) {
  return SendRaw(cap::EncodeZdsAdd(uid, info), std::move(fds));
}

StatusOr<std::string> FakeZdsNodeAgent::Keep(std::string_view uid) {
  return SendRaw(cap::EncodeZdsKeep(uid));
}

StatusOr<std::string> FakeZdsNodeAgent::Del(std::string_view uid) {
  return SendRaw(cap::EncodeZdsDel(uid));
}

StatusOr<std::string> FakeZdsNodeAgent::SnapshotSent() {
  return SendRaw(cap::EncodeZdsSnapshotSent());
}

Status FakeZdsNodeAgent::ExpectClientClosed(Ms timeout) {
  if (!conn_.valid()) return absl::FailedPreconditionError("fake ZDS has no client");
  StatusOr<cap::ZdsDatagram> d = cap::ZdsRecv(conn_.get(), timeout);
  if (absl::IsUnavailable(d.status())) {
    conn_.Reset();
    return absl::OkStatus();
  }
  if (d.ok()) return absl::FailedPreconditionError("agent sent an unexpected datagram");
  return d.status();
}

void FakeZdsNodeAgent::DropClient() { conn_.Reset(); }

void FakeZdsNodeAgent::StopListening() {
  conn_.Reset();
  if (listen_fd_.valid()) {
    listen_fd_.Reset();
    if (!path_.empty() && path_[0] != '@') ::unlink(path_.c_str());
  }
}

StatusOr<net::Fd> FakeZdsNodeAgent::OpenNetns(std::string_view name_or_path) {
  std::string path(name_or_path);
  if (path.find('/') == std::string::npos) path = "/var/run/netns/" + path;
  net::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return net::ErrnoError(errno, Cat("open netns ", path));
  return fd;
}

}  // namespace ambit::testing
