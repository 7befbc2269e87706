// DeltaXdsClient against a scripted in-memory XdsTransport: backoff timing,
// readiness rules, client-side rejects, shutdown with a response in flight.
#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/xds/client.h"

namespace ambit::xds {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Shared by the transport, its streams and the test thread.
struct Script {
  std::mutex mu;
  std::condition_variable cv;
  int fail_opens = 0;  // the next N Open() calls fail
  std::vector<Clock::time_point> opens;
  std::vector<DeltaRequest> written;
  std::deque<DeltaResponse> inbox;  // delivered to the current stream
  bool end_stream = false;          // current stream's Read returns false
  bool cancelled = false;

  void Deliver(DeltaResponse r) {
    std::lock_guard<std::mutex> lock(mu);
    inbox.push_back(std::move(r));
    cv.notify_all();
  }
  size_t written_count() {
    std::lock_guard<std::mutex> lock(mu);
    return written.size();
  }
  std::optional<DeltaRequest> FindAck(const std::string& nonce) {
    std::lock_guard<std::mutex> lock(mu);
    for (const DeltaRequest& r : written) {
      if (r.response_nonce() == nonce) return r;
    }
    return std::nullopt;
  }
};

class ScriptedStream final : public XdsStream {
 public:
  explicit ScriptedStream(Script& s) : s_(s) {}
  bool Write(const DeltaRequest& request) override {
    std::lock_guard<std::mutex> lock(s_.mu);
    if (s_.cancelled) return false;
    s_.written.push_back(request);
    s_.cv.notify_all();
    return true;
  }
  bool Read(DeltaResponse* response) override {
    std::unique_lock<std::mutex> lock(s_.mu);
    s_.cv.wait(lock, [&] { return s_.cancelled || s_.end_stream || !s_.inbox.empty(); });
    if (s_.cancelled || s_.end_stream) return false;
    *response = std::move(s_.inbox.front());
    s_.inbox.pop_front();
    s_.cv.notify_all();
    return true;
  }
  Status Finish() override { return absl::UnavailableError("scripted stream ended"); }
  void Cancel() override {
    std::lock_guard<std::mutex> lock(s_.mu);
    s_.cancelled = true;
    s_.cv.notify_all();
  }

 private:
  Script& s_;
};

class ScriptedTransport final : public XdsTransport {
 public:
  explicit ScriptedTransport(Script& s) : s_(s) {}
  StatusOr<std::unique_ptr<XdsStream>> Open() override {
    std::lock_guard<std::mutex> lock(s_.mu);
    s_.opens.push_back(Clock::now());
    s_.cv.notify_all();
    if (s_.fail_opens > 0) {
      --s_.fail_opens;
      return absl::UnavailableError("scripted open failure");
    }
    s_.end_stream = false;
    return std::unique_ptr<XdsStream>(new ScriptedStream(s_));
  }

 private:
  Script& s_;
};

class RecordingHandler final : public XdsHandler {
 public:
  std::vector<ResourceError> OnResources(std::string_view type_url, std::vector<XdsResource> added,
                                         std::vector<std::string> removed) override {
    ++calls;
    last_type = std::string(type_url);
    last_added = std::move(added);
    last_removed = std::move(removed);
    std::vector<ResourceError> errors;
    for (const XdsResource& r : last_added) {
      if (r.name.starts_with("bad")) errors.push_back({r.name, "scripted reject"});
    }
    return errors;
  }
  void OnReady() override { ++ready; }
  void OnStreamError(const Status&) override { ++stream_errors; }

  int calls = 0, ready = 0, stream_errors = 0;
  std::string last_type;
  std::vector<XdsResource> last_added;
  std::vector<std::string> last_removed;
};

DeltaResponse Response(std::string_view type, const std::string& nonce,
                       std::vector<std::string> names, std::vector<std::string> removed = {}) {
  DeltaResponse r;
  r.set_type_url(std::string(type));
  r.set_nonce(nonce);
  for (const std::string& n : names) {
    auto* res = r.add_resources();
    res->set_name(n);
    res->set_version("v-" + n);
  }
  for (const std::string& n : removed) r.add_removed_resources(n);
  return r;
}

struct Harness {
  std::unique_ptr<io::Loop> loop = *io::Loop::Create({.backend = io::BackendKind::kEpoll});
  Script script;
  RecordingHandler handler;
  std::unique_ptr<DeltaXdsClient> client;

  void Start(XdsClientOptions o = {}) {
    auto c = DeltaXdsClient::Create(*loop, std::move(o),
                                    std::make_unique<ScriptedTransport>(script), handler);
    REQUIRE(c.ok());
    client = std::move(*c);
    client->Start();
  }
  bool Until(const std::function<bool()>& pred) { return loop->RunUntil(pred, 10s); }
  ~Harness() { client.reset(); }
};

TEST_CASE("client: backoff doubles from the initial value and stops at the maximum") {
  Harness h;
  h.script.fail_opens = 6;
  XdsClientOptions o;
  o.backoff_initial = 20ms;
  o.backoff_max = 80ms;
  h.Start(std::move(o));
  REQUIRE(h.Until([&] { return h.script.written_count() >= 2; }));  // 7th open succeeded
  std::vector<Clock::time_point> opens;
  {
    std::lock_guard<std::mutex> lock(h.script.mu);
    opens = h.script.opens;
  }
  REQUIRE(opens.size() == 7);
  // Waits: 20, 40, 80, 80, 80, 80 ms (lower bounds; scheduling only adds).
  const int expected[] = {20, 40, 80, 80, 80, 80};
  for (size_t i = 1; i < opens.size(); ++i) {
    auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(opens[i] - opens[i - 1]);
    CHECK(gap.count() >= expected[i - 1]);
  }
  auto total = std::chrono::duration_cast<std::chrono::milliseconds>(opens.back() - opens.front());
  CHECK(total.count() < 20 + 40 + 80 * 4 + 1000);  // capped: never 160, 320, ...
  CHECK(h.Until([&] { return h.handler.stream_errors == 6; }));
}

TEST_CASE("client: ready only after every type; client-side rejects; known versions") {
  Harness h;
  h.Start();
  REQUIRE(h.Until([&] { return h.script.written_count() == 2; }));
  {
    std::lock_guard<std::mutex> lock(h.script.mu);
    CHECK(h.script.written[0].type_url() == kAddressType);
    CHECK(h.script.written[1].type_url() == kAuthorizationType);
    CHECK(h.script.written[0].node().id() == "ztunnel~1.1.1.1~.~.svc.cluster.local");
  }
  DeltaResponse r = Response(kAddressType, "n1", {"w1", "bad-w2", ""});
  h.script.Deliver(r);
  REQUIRE(h.Until([&] { return h.script.FindAck("n1").has_value(); }));
  DeltaRequest nack = *h.script.FindAck("n1");
  CHECK(nack.error_detail().message() ==
        "<unnamed>: resource without a name; bad-w2: scripted reject");
  CHECK(h.handler.last_added.size() == 2);  // the unnamed one never reaches the handler
  CHECK_FALSE(h.client->ready());
  CHECK(h.handler.ready == 0);

  h.script.Deliver(Response("type.googleapis.com/other.Type", "n2", {"x"}));
  REQUIRE(h.Until([&] { return h.script.FindAck("n2").has_value(); }));
  CHECK(h.script.FindAck("n2")->error_detail().message() ==
        "type.googleapis.com/other.Type: type_url not subscribed by this client");
  CHECK(h.handler.calls == 1);

  h.script.Deliver(Response(kAuthorizationType, "n3", {}));
  REQUIRE(h.Until([&] { return h.handler.ready == 1; }));
  CHECK(h.client->ready());
  CHECK_FALSE(h.script.FindAck("n3")->has_error_detail());

  h.script.Deliver(Response(kAddressType, "n4", {}, {"w1"}));
  REQUIRE(h.Until([&] { return h.script.FindAck("n4").has_value(); }));
  CHECK(h.handler.last_removed == std::vector<std::string>{"w1"});
  auto known = h.client->KnownVersions();
  CHECK(known[std::string(kAddressType)].empty());
  CHECK(h.handler.ready == 1);
}

TEST_CASE("client: reconnect announces accepted versions only") {
  Harness h;
  h.Start();
  REQUIRE(h.Until([&] { return h.script.written_count() == 2; }));
  h.script.Deliver(Response(kAddressType, "n1", {"w1", "bad-w2", "w3"}));
  REQUIRE(h.Until([&] { return h.script.FindAck("n1").has_value(); }));
  {
    std::lock_guard<std::mutex> lock(h.script.mu);
    h.script.end_stream = true;
    h.script.cv.notify_all();
  }
  REQUIRE(h.Until([&] { return h.script.written_count() >= 5; }));  // 2 initial + ACK + 2 initial
  std::lock_guard<std::mutex> lock(h.script.mu);
  const DeltaRequest& again = h.script.written[3];
  CHECK(again.type_url() == kAddressType);
  CHECK(again.response_nonce().empty());
  CHECK(again.initial_resource_versions_size() == 2);
  CHECK(again.initial_resource_versions().at("w1") == "v-w1");
  CHECK(again.initial_resource_versions().at("w3") == "v-w3");
  CHECK(again.initial_resource_versions().count("bad-w2") == 0);
}

TEST_CASE("client: destruction with a response waiting for the loop does not hang") {
  Harness h;
  h.Start();
  REQUIRE(h.Until([&] { return h.script.written_count() == 2; }));
  h.script.Deliver(Response(kAddressType, "n1", {"w1"}));
  {  // The stream thread took the response; the loop is not run, so no verdict comes.
    std::unique_lock<std::mutex> lock(h.script.mu);
    REQUIRE(h.script.cv.wait_for(lock, 5s, [&] { return h.script.inbox.empty(); }));
  }
  const auto t0 = Clock::now();
  h.client.reset();
  CHECK(Clock::now() - t0 < 2s);
  h.loop->RunOnce(0ms);  // the posted closure runs and must not touch the handler
  CHECK(h.handler.calls == 0);
  CHECK_FALSE(h.script.FindAck("n1").has_value());
}

TEST_CASE("client: option validation") {
  auto loop = *io::Loop::Create({.backend = io::BackendKind::kEpoll});
  Script script;
  RecordingHandler handler;
  XdsClientOptions o;
  o.backoff_initial = 0ms;
  auto c = DeltaXdsClient::Create(*loop, o, std::make_unique<ScriptedTransport>(script), handler);
  CHECK_FALSE(c.ok());
  CHECK(DeltaXdsClient::Create(*loop, {}, nullptr, handler).status().message() ==
        "xDS client needs a transport");
}

}  // namespace
}  // namespace ambit::xds
