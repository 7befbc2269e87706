// waypoint/kube KubeWatcher + ApiClient against a scripted plain-HTTP server
// on 127.0.0.1: list, a chunked watch whose events are split across chunks,
// a 410 ERROR event -> relist (the object changed while "compacted" is seen),
// a 403 kind reported and synced, Stop() while a watch is open.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "waypoint/kube/watcher.h"

namespace ambit::waypoint::kube {
namespace {

std::string Chunk(const std::string& s) {
  char head[32];
  snprintf(head, sizeof(head), "%zx\r\n", s.size());
  return head + s + "\r\n";
}

std::string Obj(const std::string& name, int rv, const std::string& host) {
  return R"({"kind":"HTTPRoute","apiVersion":"gateway.networking.k8s.io/v1","metadata":{"name":")" +
         name + R"(","namespace":"demo","resourceVersion":")" + std::to_string(rv) +
         R"("},"spec":{"hostnames":[")" + host + R"("]}})";
}

// Serves: route lists (1st: r1@5, 2nd: r1@9 host b), watches (1st: ADDED r2
// split over two chunks, BOOKMARK, ERROR 410; 2nd: stays open), 403 for
// telemetries.
class ScriptedServer {
 public:
  ScriptedServer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    listen(fd_, 16);
    thread_ = std::thread([this] { Loop(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
    for (auto& t : conns_) t.join();
  }
  uint16_t port() const { return port_; }
  std::atomic<int> lists{0}, watches{0};

 private:
  void Loop() {
    while (!stop_) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      conns_.emplace_back([this, c] { Serve(c); });
    }
  }
  void Serve(int c) {
    std::string req;
    char buf[4096];
    while (req.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = recv(c, buf, sizeof(buf), 0);
      if (n <= 0) break;
      req.append(buf, static_cast<size_t>(n));
    }
    auto send_all = [c](const std::string& s) { (void)send(c, s.data(), s.size(), MSG_NOSIGNAL); };
    if (req.find("telemetries") != std::string::npos) {
      std::string body = R"({"kind":"Status","code":403,"reason":"Forbidden","message":"no"})";
      send_all("HTTP/1.1 403 Forbidden\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\n\r\n" + body);
    } else if (req.find("watch=1") == std::string::npos) {
      const int n = ++lists;
      std::string body = R"({"kind":"HTTPRouteList","metadata":{"resourceVersion":")" +
                         std::string(n == 1 ? "5" : "9") + R"("},"items":[)" +
                         Obj("r1", n == 1 ? 5 : 9, n == 1 ? "a" : "b") + "]}";
      send_all("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body);
    } else {
      const int n = ++watches;
      send_all("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
      if (n == 1) {
        std::string added = R"({"type":"ADDED","object":)" + Obj("r2", 6, "x") + "}\n";
        send_all(Chunk(added.substr(0, 20)));
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        send_all(Chunk(added.substr(20) + "not json\n"));
        send_all(Chunk(R"({"type":"BOOKMARK","object":{"kind":"HTTPRoute","metadata":{"resourceVersion":"7"}}})"
                       "\n"));
        send_all(Chunk(R"({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}})"
                       "\n"));
        send_all("0\r\n\r\n");
      } else {
        while (!stop_) {  // stays open until the client goes
          char b;
          if (recv(c, &b, 1, 0) <= 0) break;
        }
      }
    }
    close(c);
  }
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<std::thread> conns_;
};

TEST_CASE("KubeWatcher: list, chunked watch, bookmark, 410 relist, 403 reported, Stop") {
  ScriptedServer srv;
  auto api = ParseApiServerUrl("http://127.0.0.1:" + std::to_string(srv.port()));
  REQUIRE(api.ok());
  metrics::Registry reg(1);
  WatcherCounters wc;
  wc.events = &reg.AddCounter("e", "e", {"kind", "type"});
  wc.relists = &reg.AddCounter("r", "r", {"kind", "reason"});
  wc.errors = &reg.AddCounter("x", "x", {"kind", "reason"});
  WatcherOptions wo;
  wo.backoff_initial = std::chrono::milliseconds(10);
  std::atomic<int> changes{0};
  KubeWatcher w(*api, {*FindKind("HTTPRoute"), *FindKind("Telemetry")}, wo, wc,
                [&] { ++changes; });
  w.Start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline && srv.watches.load() < 2) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(srv.lists.load() == 2);
  CHECK(w.synced());
  std::vector<KindStatus> st = w.Status();
  REQUIRE(st.size() == 2);
  CHECK(st[0].kind == "HTTPRoute");
  CHECK(st[0].state == KindState::kWatching);
  CHECK(st[0].relists == 1);
  CHECK(st[0].resource_version == "9");
  CHECK(st[0].errors >= 1);  // the "not json" line, skipped
  CHECK(st[1].state == KindState::kForbidden);
  CHECK(st[1].synced);
  CHECK(st[1].last_error.find("403") != std::string::npos);
  // The relist replaced the objects: r2 (seen only by the first watch) is gone.
  std::vector<KubeObject> objs = w.Objects();
  REQUIRE(objs.size() == 1);
  CHECK(objs[0].name == "r1");
  CHECK(objs[0].resource_version == "9");
  CHECK(changes.load() >= 3);
  const auto t0 = std::chrono::steady_clock::now();
  w.Stop();  // the second watch is still open: Interrupt ends it
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
}

}  // namespace
}  // namespace ambit::waypoint::kube
