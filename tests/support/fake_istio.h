// FakeIstio: the state behind ambit-fake-istio — one fake istiod (delta ADS
// xDS + Istio CA, both TLS with a server certificate from one root that also
// signs workload certificates) and one fake istio-cni node agent (ZDS
// listener) per node. Driven by JSON lines: HandleLine() takes one request
// line and returns exactly one response line, {"ok":true,...} or
// {"ok":false,"error":"..."}; a malformed request is an error reply.
// Single-threaded from the caller's side (gRPC threads are internal).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/identity/builtin_ca.h"
#include "tests/support/fake_ca.h"
#include "tests/support/fake_istio_json.h"
#include "tests/support/fake_xds.h"
#include "tests/support/fake_zds.h"

namespace ambit::testing {

struct FakeIstioOptions {
  std::string listen_ip = "127.0.0.1";
  std::string dir;  // root-cert.pem is written here
  int xds_port = 15012;
  int ca_port = 15013;
  std::string server_dns_name = "istiod.istio-system.svc";
};

class FakeIstio {
 public:
  using Json = fake_istio::Json;

  static StatusOr<std::unique_ptr<FakeIstio>> Start(const FakeIstioOptions& options);

  // The first line printed: addresses and the root file.
  Json Hello() const;
  // One request line → one response line (no trailing newline).
  std::string HandleLine(std::string_view line);
  bool quit_requested() const { return quit_; }

 private:
  using Handler = StatusOr<Json> (FakeIstio::*)(const Json& req);
  explicit FakeIstio(FakeIstioOptions options) : options_(std::move(options)) {}
  StatusOr<Json> Dispatch(const Json& req);
  static const std::map<std::string, Handler, std::less<>>& Handlers();

  // xDS (fake_istio.cc)
  StatusOr<Json> SetWorkload(const Json& req);
  StatusOr<Json> SetService(const Json& req);
  StatusOr<Json> SetPolicy(const Json& req);
  StatusOr<Json> Remove(const Json& req);
  StatusOr<Json> PushRaw(const Json& req);
  StatusOr<Json> XdsRequests(const Json& req);
  StatusOr<Json> XdsWait(const Json& req);
  StatusOr<Json> XdsStatus(const Json& req);
  StatusOr<Json> XdsStop(const Json& req);
  StatusOr<Json> XdsRestart(const Json& req);
  // CA (fake_istio.cc)
  StatusOr<Json> CaRequests(const Json& req);
  StatusOr<Json> CaWait(const Json& req);
  StatusOr<Json> CaFail(const Json& req);
  StatusOr<Json> CaRecover(const Json& req);
  StatusOr<Json> CaStop(const Json& req);
  StatusOr<Json> CaRestart(const Json& req);
  StatusOr<FakeIstioCa*> RunningCa(std::string_view cmd);
  std::vector<FakeCaRequest> AllCaRequests() const;
  StatusOr<Json> Quit(const Json& req);
  // ZDS (fake_istio_zds.cc)
  StatusOr<Json> ZdsListen(const Json& req);
  StatusOr<Json> ZdsAccept(const Json& req);
  StatusOr<Json> ZdsAdd(const Json& req);
  StatusOr<Json> ZdsKeep(const Json& req);
  StatusOr<Json> ZdsDel(const Json& req);
  StatusOr<Json> ZdsSnapshot(const Json& req);
  StatusOr<Json> ZdsRaw(const Json& req);
  StatusOr<Json> ZdsExpectClosed(const Json& req);
  StatusOr<Json> ZdsDrop(const Json& req);
  StatusOr<Json> ZdsClose(const Json& req);
  StatusOr<FakeZdsNodeAgent*> Zds(const Json& req);
  static StatusOr<Json> AckReply(const StatusOr<std::string>& ack);

  StatusOr<FakeXdsServer::Resource> RawResource(const std::string& type_url, const Json& r,
                                                int index);

  FakeIstioOptions options_;
  std::shared_ptr<const identity::BuiltinCa> root_;
  std::string root_path_;
  std::unique_ptr<FakeXdsServer> xds_;
  std::unique_ptr<FakeIstioCa> ca_;  // null between ca_stop and ca_restart
  FakeCaOptions ca_options_;         // listen_address = the port it got
  std::vector<FakeCaRequest> ca_history_;  // requests of stopped CA instances
  bool xds_stopped_ = false;
  std::map<std::string, std::unique_ptr<FakeZdsNodeAgent>, std::less<>> zds_;
  bool quit_ = false;
};

}  // namespace ambit::testing
