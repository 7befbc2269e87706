// zds_netns_probe: a FakeZdsNodeAgent hands real netns fds (from `ip netns
// add`) to a ZdsClient in this process; prints what the handler received as
// one JSON line per event, for tests/netns/test_zds.py to compare with stat().
//   zds_netns_probe <netns-a> <netns-b>
// Adds pod "uid-1" in <netns-a>, snapshot, then re-adds it in <netns-b>
// (replace: removed + added). Exit 0 when every ack was empty.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "agent/capture/zds_client.h"
#include "tests/support/fake_zds.h"
#include "tests/unit/zds/recording_handler.h"

namespace {

using ambit::agent::capture::ZdsClient;
using ambit::agent::capture::ZdsClientOptions;
using ambit::testing::FakeZdsNodeAgent;

class PrintingHandler : public ambit::testing::RecordingHandler {
 public:
  ambit::Status OnPodAdded(const ambit::agent::capture::PodAdded& pod) override {
    std::printf("{\"event\":\"added\",\"uid\":\"%s\",\"dev\":%llu,\"ino\":%llu}\n", pod.uid.c_str(),
                static_cast<unsigned long long>(pod.netns.id().dev),
                static_cast<unsigned long long>(pod.netns.id().ino));
    std::fflush(stdout);
    return RecordingHandler::OnPodAdded(pod);
  }
  ambit::Status OnPodRemoved(const ambit::agent::capture::PodRemoved& pod) override {
    std::printf("{\"event\":\"removed\",\"uid\":\"%s\"}\n", pod.uid.c_str());
    std::fflush(stdout);
    return RecordingHandler::OnPodRemoved(pod);
  }
};

int Fail(const std::string& what) {
  std::fprintf(stderr, "zds_netns_probe: %s\n", what.c_str());
  return 1;
}

int Run(const std::string& ns_a, const std::string& ns_b) {
  std::string path = "@ambit-zds-probe-" + std::to_string(::getpid());
  auto fake = FakeZdsNodeAgent::Listen(path);
  if (!fake.ok()) return Fail(std::string(fake.status().message()));
  auto fd_a = FakeZdsNodeAgent::OpenNetns(ns_a);
  auto fd_b = FakeZdsNodeAgent::OpenNetns(ns_b);
  if (!fd_a.ok() || !fd_b.ok()) return Fail("cannot open the test netns");
  PrintingHandler handler;
  ZdsClient client(ZdsClientOptions{.uds_path = path}, handler);
  client.Start();
  if (auto s = (*fake)->AcceptClient(); !s.ok()) return Fail(std::string(s.message()));
  const ambit::agent::capture::ZdsWorkloadInfo info{"pod-1", "default", "sa-1"};
  for (auto step : {1, 2, 3}) {
    ambit::StatusOr<std::string> ack = step == 1   ? (*fake)->Add("uid-1", info, {fd_a->get()})
                                       : step == 2 ? (*fake)->SnapshotSent()
                                                   : (*fake)->Add("uid-1", info, {fd_b->get()});
    if (!ack.ok()) return Fail(std::string(ack.status().message()));
    if (!ack->empty()) return Fail("NACK: " + *ack);
  }
  std::printf("{\"event\":\"ready\",\"ready\":%s}\n", client.ready() ? "true" : "false");
  client.Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return Fail("usage: zds_netns_probe <netns-a> <netns-b>");
  return Run(argv[1], argv[2]);
}
