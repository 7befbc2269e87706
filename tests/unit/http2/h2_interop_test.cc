// Wire compatibility: our H2Conn against python3-h2 (tests/interop/h2_peer.py)
// over a socketpair, h2c without TLS. Bounded by deadlines, no sleeps.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>

#include "tests/unit/http2/h2_pair.h"

namespace ambit::http2::testing {
namespace {

struct Child {
  pid_t pid = -1;
  int fd = -1;      // our end of the socketpair
  int out_fd = -1;  // child's stdout
};

// Starts h2_peer.py with the peer end of a socketpair as fd 3.
Child StartPeer(std::vector<std::string> args) {
  int sv[2];
  int out[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  REQUIRE(pipe2(out, O_CLOEXEC) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(sv[1], 3);
    dup2(out[1], 1);
    std::vector<char*> argv = {const_cast<char*>("/usr/bin/python3"),
                               const_cast<char*>(AMBIT_H2_PEER)};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(sv[1]);
  close(out[1]);
  fcntl(sv[0], F_SETFL, O_NONBLOCK);
  return Child{pid, sv[0], out[0]};
}

int WaitChild(Child& c, std::string* stdout_text) {
  close(c.fd);
  char buf[4096];
  ssize_t n;
  while ((n = read(c.out_fd, buf, sizeof(buf))) > 0) stdout_text->append(buf, n);
  close(c.out_fd);
  int status = 0;
  waitpid(c.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Moves bytes between `conn` and `fd` until done() or 10 s pass.
Status Drive(H2Conn& conn, int fd, const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::byte buf[65536];
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError("python peer did not finish within 10s");
    }
    auto out = conn.PendingOutput();
    pollfd p{fd, static_cast<short>(POLLIN | (out.empty() ? 0 : POLLOUT)), 0};
    if (poll(&p, 1, 100) < 0) return absl::InternalError("poll failed");
    if ((p.revents & POLLOUT) != 0) {
      ssize_t n = write(fd, out.data(), out.size());
      if (n > 0) conn.ConsumeOutput(static_cast<size_t>(n));
    }
    if ((p.revents & (POLLIN | POLLHUP)) != 0) {
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n == 0) return absl::UnavailableError("python peer closed the connection");
      if (n > 0) RETURN_IF_ERROR(conn.Feed(std::span<const std::byte>(buf, n)));
    }
  }
  return absl::OkStatus();
}

TEST_CASE("our client against the python-h2 HBONE server") {
  Child child = StartPeer({"server", "--fd", "3", "--timeout", "10"});
  base::RealClock clock;
  Recorder events;
  auto conn = H2Conn::Create(H2Role::kClient, {}, events, clock).value();
  events.conn = conn.get();
  auto id = conn->SubmitConnect("10.0.0.1:80", {{"x-test", "1"}});
  REQUIRE(id.ok());
  auto payload = Pattern(1u << 20, 42);
  REQUIRE(conn->Write(*id, payload).ok());
  REQUIRE(conn->CloseWrite(*id).ok());
  Status st = Drive(*conn, child.fd, [&] { return events.ended.count(*id) == 1; });
  CHECK_MESSAGE(st.ok(), std::string(st.message()));
  const H2Headers& h = events.headers[*id];
  REQUIRE(FindHeader(h, ":status") != nullptr);
  CHECK(*FindHeader(h, ":status") == "200");
  CHECK(*FindHeader(h, "x-peer") == "python-h2");
  CHECK(*FindHeader(h, "x-seen-authority") == "10.0.0.1:80");
  CHECK(events.data[*id].size() == payload.size());
  CHECK(Fnv1a(events.data[*id]) == Fnv1a(payload));
  std::string out;
  CHECK(WaitChild(child, &out) == 0);
  // The python server reports the request headers it decoded.
  CHECK_MESSAGE(out.find(R"([[":method", "CONNECT"], [":authority", "10.0.0.1:80"], )"
                         R"(["x-test", "1"]])") != std::string::npos, out);
}

TEST_CASE("python-h2 server refusing with 503") {
  Child child = StartPeer({"server", "--fd", "3", "--status", "503"});
  base::RealClock clock;
  Recorder events;
  auto conn = H2Conn::Create(H2Role::kClient, {}, events, clock).value();
  events.conn = conn.get();
  auto id = conn->SubmitConnect("10.0.0.1:80", {});
  REQUIRE(id.ok());
  Status st = Drive(*conn, child.fd, [&] { return events.ended.count(*id) == 1; });
  CHECK_MESSAGE(st.ok(), std::string(st.message()));
  REQUIRE(FindHeader(events.headers[*id], ":status") != nullptr);
  CHECK(*FindHeader(events.headers[*id], ":status") == "503");
  std::string out;
  CHECK(WaitChild(child, &out) == 0);
}

TEST_CASE("the python-h2 HBONE client against our server") {
  Child child = StartPeer({"client", "--fd", "3", "--bytes", "600000", "--authority",
                           "[fd00::1]:8080", "--header", "baggage:k8s.namespace.name=ns"});
  base::RealClock clock;
  struct Echo : Recorder {
    void OnStreamHeaders(H2StreamId id, const H2Headers& h) override {
      Recorder::OnStreamHeaders(id, h);
      (void)conn->SubmitResponse(id, 200, {});
    }
    void OnStreamData(H2StreamId id, std::span<const std::byte> d) override {
      Recorder::OnStreamData(id, d);
      (void)conn->Write(id, d);
    }
    void OnStreamEnd(H2StreamId id) override {
      Recorder::OnStreamEnd(id);
      (void)conn->CloseWrite(id);
    }
  } events;
  auto conn = H2Conn::Create(H2Role::kServer, {}, events, clock).value();
  events.conn = conn.get();
  Status st = Drive(*conn, child.fd, [&] { return events.closed.count(1) == 1; });
  CHECK_MESSAGE(st.ok(), std::string(st.message()));
  H2Headers expected = {{":method", "CONNECT"},
                        {":authority", "[fd00::1]:8080"},
                        {"baggage", "k8s.namespace.name=ns"}};
  CHECK(events.headers[1] == expected);
  CHECK(events.data[1].size() == 600000);
  // The python client then says GOAWAY and closes; we see both.
  st = Drive(*conn, child.fd, [] { return false; });
  CHECK(st.code() == absl::StatusCode::kUnavailable);
  CHECK(events.goaways.size() == 1);
  std::string out;
  CHECK(WaitChild(child, &out) == 0);
  CHECK(out.find("\"echo_ok\": true") != std::string::npos);
  CHECK_MESSAGE(out.find("\"status\": \"200\"") != std::string::npos, out);
}

}  // namespace
}  // namespace ambit::http2::testing
