#include "tests/support/fake_istio.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>

#include "common/identity/x509_util.h"
#include "tests/support/server_cert.h"

namespace ambit::testing {

using fake_istio::GetBool;
using fake_istio::GetInt;
using fake_istio::GetObject;
using fake_istio::GetString;
using fake_istio::ParseProto;
using fake_istio::TypeUrl;
using Json = FakeIstio::Json;
using Ms = std::chrono::milliseconds;

namespace {

Status WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::trunc);
  out << contents;
  out.close();
  if (!out) return absl::UnavailableError("cannot write " + path + " (is the directory writable?)");
  return absl::OkStatus();
}

// Which recorded xDS requests an xds_wait / xds_requests call is about.
struct XdsFilter {
  std::optional<std::string> nonce;
  std::optional<std::string> type_url;
  std::optional<bool> initial;
  std::optional<bool> nack;
  int min_stream = 0;
  size_t since = 0;

  bool Matches(const FakeXdsRequest& r, size_t index) const {
    return index >= since && r.stream >= min_stream && (!nonce || r.nonce == *nonce) &&
           (!type_url || r.type_url == *type_url) && (!initial || r.nonce.empty() == *initial) &&
           (!nack || r.nack == *nack);
  }
};

StatusOr<XdsFilter> ParseXdsFilter(const Json& req) {
  XdsFilter f;
  if (req.contains("nonce")) {
    ASSIGN_OR_RETURN(f.nonce, GetString(req, "nonce"));
  }
  if (req.contains("type")) {
    ASSIGN_OR_RETURN(std::string type, GetString(req, "type"));
    ASSIGN_OR_RETURN(f.type_url, TypeUrl(type));
  }
  if (req.contains("initial")) {
    ASSIGN_OR_RETURN(f.initial, GetBool(req, "initial", false));
  }
  if (req.contains("nack")) {
    ASSIGN_OR_RETURN(f.nack, GetBool(req, "nack", false));
  }
  ASSIGN_OR_RETURN(int64_t min_stream, GetInt(req, "min_stream", 0));
  ASSIGN_OR_RETURN(int64_t since, GetInt(req, "since", 0));
  f.min_stream = static_cast<int>(min_stream);
  f.since = static_cast<size_t>(std::max<int64_t>(since, 0));
  return f;
}

Json Matching(const std::vector<FakeXdsRequest>& all, const XdsFilter& f) {
  Json out = Json::array();
  for (size_t i = 0; i < all.size(); ++i) {
    if (f.Matches(all[i], i)) out.push_back(fake_istio::ToJson(all[i], i));
  }
  return out;
}

}  // namespace

StatusOr<std::unique_ptr<FakeIstio>> FakeIstio::Start(const FakeIstioOptions& options) {
  std::unique_ptr<FakeIstio> f(new FakeIstio(options));
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  ASSIGN_OR_RETURN(identity::BuiltinCa root, identity::BuiltinCa::Generate());
  f->root_ = std::make_shared<const identity::BuiltinCa>(std::move(root));
  f->root_path_ = (std::filesystem::path(options.dir) / "root-cert.pem").string();
  RETURN_IF_ERROR(WriteFile(f->root_path_, f->root_->root_pem()));
  // The root's key next to it, so tests can sign CRLs (CRL_PATH) for it.
  ASSIGN_OR_RETURN(std::string root_key, identity::PrivateKeyToPem(f->root_->root_key()));
  RETURN_IF_ERROR(WriteFile((std::filesystem::path(options.dir) / "root-key.pem").string(), root_key));
  ASSIGN_OR_RETURN(ServerCertPem server,
                   IssueServerCert(*f->root_, {options.server_dns_name}, {options.listen_ip}));
  FakeXdsOptions xo;
  xo.tls_cert_pem = server.cert_pem;
  xo.tls_key_pem = server.key_pem;
  xo.listen_address = options.listen_ip + ":" + std::to_string(options.xds_port);
  ASSIGN_OR_RETURN(f->xds_, FakeXdsServer::Start(std::move(xo)));
  FakeCaOptions co;
  co.tls_cert_pem = server.cert_pem;
  co.tls_key_pem = server.key_pem;
  co.listen_address = options.listen_ip + ":" + std::to_string(options.ca_port);
  co.root = f->root_;
  ASSIGN_OR_RETURN(f->ca_, FakeIstioCa::Start(co));
  co.listen_address = f->ca_->address();  // ca_restart listens on the same port
  f->ca_options_ = std::move(co);
  return f;
}

Json FakeIstio::Hello() const {
  return Json{{"ok", true},
              {"xds", xds_->address()},
              {"ca", ca_options_.listen_address},
              {"root", root_path_},
              {"server_name", options_.server_dns_name}};
}

const std::map<std::string, FakeIstio::Handler, std::less<>>& FakeIstio::Handlers() {
  static const auto* handlers = new std::map<std::string, Handler, std::less<>>{
      {"set_workload", &FakeIstio::SetWorkload},
      {"set_service", &FakeIstio::SetService},
      {"set_policy", &FakeIstio::SetPolicy},
      {"remove", &FakeIstio::Remove},
      {"push_raw", &FakeIstio::PushRaw},
      {"xds_requests", &FakeIstio::XdsRequests},
      {"xds_wait", &FakeIstio::XdsWait},
      {"xds_status", &FakeIstio::XdsStatus},
      {"xds_stop", &FakeIstio::XdsStop},
      {"xds_restart", &FakeIstio::XdsRestart},
      {"ca_requests", &FakeIstio::CaRequests},
      {"ca_wait", &FakeIstio::CaWait},
      {"ca_fail", &FakeIstio::CaFail},
      {"ca_recover", &FakeIstio::CaRecover},
      {"ca_stop", &FakeIstio::CaStop},
      {"ca_restart", &FakeIstio::CaRestart},
      {"zds_listen", &FakeIstio::ZdsListen},
      {"zds_accept", &FakeIstio::ZdsAccept},
      {"zds_add", &FakeIstio::ZdsAdd},
      {"zds_keep", &FakeIstio::ZdsKeep},
      {"zds_del", &FakeIstio::ZdsDel},
      {"zds_snapshot", &FakeIstio::ZdsSnapshot},
      {"zds_raw", &FakeIstio::ZdsRaw},
      {"zds_expect_closed", &FakeIstio::ZdsExpectClosed},
      {"zds_drop", &FakeIstio::ZdsDrop},
      {"zds_close", &FakeIstio::ZdsClose},
      {"quit", &FakeIstio::Quit},
  };
  return *handlers;
}

std::string FakeIstio::HandleLine(std::string_view line) {
  Json req = Json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  StatusOr<Json> result = absl::InvalidArgumentError("request is not a JSON object");
  if (req.is_object()) {
    // Checked accessors keep malformed input away from nlohmann's throwing
    // paths; the catch is the last line of defence for a test driver.
    try {
      result = Dispatch(req);
    } catch (const std::exception& e) {
      result = absl::InvalidArgumentError(std::string("malformed request: ") + e.what());
    }
  }
  Json out = Json::object();
  if (!result.ok()) {
    out["ok"] = false;
    out["error"] = std::string(result.status().message());
  } else {
    out["ok"] = true;
    for (auto& [k, v] : result->items()) out[k] = v;
  }
  return out.dump(-1, ' ', false, Json::error_handler_t::replace);
}

StatusOr<Json> FakeIstio::Dispatch(const Json& req) {
  ASSIGN_OR_RETURN(std::string cmd, GetString(req, "cmd"));
  auto it = Handlers().find(cmd);
  if (it == Handlers().end()) return absl::InvalidArgumentError("unknown cmd " + cmd);
  return (this->*(it->second))(req);
}

// ---- xDS -------------------------------------------------------------------

StatusOr<Json> FakeIstio::SetWorkload(const Json& req) {
  ASSIGN_OR_RETURN(const Json* value, GetObject(req, "workload"));
  ::istio::workload::Workload w;
  RETURN_IF_ERROR(ParseProto(*value, "workload", w));
  if (w.uid().empty()) return absl::InvalidArgumentError("workload: uid is required");
  const std::string nonce = xds_->SetWorkload(w);
  return Json{{"name", w.uid()}, {"nonce", nonce}};
}

StatusOr<Json> FakeIstio::SetService(const Json& req) {
  ASSIGN_OR_RETURN(const Json* value, GetObject(req, "service"));
  ::istio::workload::Service s;
  RETURN_IF_ERROR(ParseProto(*value, "service", s));
  const std::string nonce = xds_->SetService(s);
  return Json{{"name", s.namespace_() + "/" + s.hostname()}, {"nonce", nonce}};
}

StatusOr<Json> FakeIstio::SetPolicy(const Json& req) {
  ASSIGN_OR_RETURN(const Json* value, GetObject(req, "policy"));
  ::istio::security::Authorization a;
  RETURN_IF_ERROR(ParseProto(*value, "policy", a));
  const std::string nonce = xds_->SetPolicy(a);
  return Json{{"name", a.namespace_() + "/" + a.name()}, {"nonce", nonce}};
}

StatusOr<Json> FakeIstio::Remove(const Json& req) {
  ASSIGN_OR_RETURN(std::string type, GetString(req, "type"));
  ASSIGN_OR_RETURN(std::string type_url, TypeUrl(type));
  ASSIGN_OR_RETURN(std::string name, GetString(req, "name"));
  const std::string nonce = xds_->Remove(type_url, name);
  return Json{{"name", name}, {"nonce", nonce}};
}

StatusOr<FakeXdsServer::Resource> FakeIstio::RawResource(const std::string& type_url,
                                                         const Json& r, int index) {
  const std::string where = "resources[" + std::to_string(index) + "]";
  if (!r.is_object()) return absl::InvalidArgumentError(where + ": not an object");
  ASSIGN_OR_RETURN(std::string name, GetString(r, "name"));
  const std::string version = GetString(r, "version", "raw-" + std::to_string(index));
  ::istio::workload::Address address;
  if (r.contains("workload")) {
    RETURN_IF_ERROR(ParseProto(r["workload"], where + ".workload", *address.mutable_workload()));
    return FakeXdsServer::MakeResource(name, version, address);
  }
  if (r.contains("service")) {
    RETURN_IF_ERROR(ParseProto(r["service"], where + ".service", *address.mutable_service()));
    return FakeXdsServer::MakeResource(name, version, address);
  }
  if (r.contains("policy")) {
    ::istio::security::Authorization a;
    RETURN_IF_ERROR(ParseProto(r["policy"], where + ".policy", a));
    return FakeXdsServer::MakeResource(name, version, a);
  }
  ASSIGN_OR_RETURN(std::string b64, GetString(r, "raw_bytes_b64"));
  ASSIGN_OR_RETURN(std::string bytes, fake_istio::Base64Decode(b64, where + ".raw_bytes_b64"));
  FakeXdsServer::Resource res;
  res.set_name(name);
  res.set_version(version);
  res.mutable_resource()->set_type_url(type_url);
  res.mutable_resource()->set_value(bytes);
  return res;
}

StatusOr<Json> FakeIstio::PushRaw(const Json& req) {
  ASSIGN_OR_RETURN(std::string type, GetString(req, "type"));
  ASSIGN_OR_RETURN(std::string type_url, TypeUrl(type));
  std::vector<FakeXdsServer::Resource> resources;
  const Json empty = Json::array();
  const Json& list = req.contains("resources") ? req["resources"] : empty;
  if (!list.is_array()) return absl::InvalidArgumentError("resources: not an array");
  for (size_t i = 0; i < list.size(); ++i) {
    ASSIGN_OR_RETURN(FakeXdsServer::Resource r,
                     RawResource(type_url, list[i], static_cast<int>(i)));
    resources.push_back(std::move(r));
  }
  std::vector<std::string> removed;
  const Json& rm = req.contains("removed") ? req["removed"] : empty;
  if (!rm.is_array()) return absl::InvalidArgumentError("removed: not an array");
  for (const Json& n : rm) {
    if (!n.is_string()) return absl::InvalidArgumentError("removed: names must be strings");
    removed.push_back(n.get<std::string>());
  }
  const std::string nonce = xds_->Push(type_url, std::move(resources), std::move(removed));
  return Json{{"nonce", nonce}};
}

StatusOr<Json> FakeIstio::XdsRequests(const Json& req) {
  ASSIGN_OR_RETURN(XdsFilter filter, ParseXdsFilter(req));
  const std::vector<FakeXdsRequest> all = xds_->requests();
  return Json{{"requests", Matching(all, filter)}, {"total", all.size()}};
}

StatusOr<Json> FakeIstio::XdsWait(const Json& req) {
  ASSIGN_OR_RETURN(XdsFilter filter, ParseXdsFilter(req));
  ASSIGN_OR_RETURN(int64_t count, GetInt(req, "count", 1));
  ASSIGN_OR_RETURN(int64_t timeout_ms, GetInt(req, "timeout_ms", 5000));
  auto enough = [&] {
    return static_cast<int64_t>(Matching(xds_->requests(), filter).size()) >= count;
  };
  const bool ok = xds_->WaitFor(enough, Ms(timeout_ms));
  const std::vector<FakeXdsRequest> all = xds_->requests();
  Json got = Matching(all, filter);
  if (!ok) {
    Json tail = Json::array();
    for (size_t i = all.size() > 6 ? all.size() - 6 : 0; i < all.size(); ++i) {
      tail.push_back(fake_istio::ToJson(all[i], i));
    }
    return absl::DeadlineExceededError("xds_wait: " + std::to_string(got.size()) + " of " +
                                       std::to_string(count) + " matching requests after " +
                                       std::to_string(timeout_ms) + " ms; last requests: " +
                                       tail.dump());
  }
  return Json{{"requests", got}, {"total", all.size()}};
}

StatusOr<Json> FakeIstio::XdsStatus(const Json&) {
  Json headers = Json::array();
  for (const auto& h : xds_->stream_headers()) {
    Json one = Json::object();
    for (const auto& [k, v] : h) one[k] = v;
    headers.push_back(one);
  }
  return Json{{"active_streams", xds_->active_streams()},
              {"streams_accepted", xds_->streams_accepted()},
              {"stopped", xds_stopped_},
              {"stream_headers", headers}};
}

StatusOr<Json> FakeIstio::XdsStop(const Json&) {
  xds_->Stop();
  xds_stopped_ = true;
  return Json::object();
}

StatusOr<Json> FakeIstio::XdsRestart(const Json&) {
  RETURN_IF_ERROR(xds_->Restart());
  xds_stopped_ = false;
  return Json{{"xds", xds_->address()}};
}

// ---- CA --------------------------------------------------------------------

std::vector<FakeCaRequest> FakeIstio::AllCaRequests() const {
  std::vector<FakeCaRequest> all = ca_history_;
  if (ca_) {
    std::vector<FakeCaRequest> now = ca_->requests();
    all.insert(all.end(), std::make_move_iterator(now.begin()), std::make_move_iterator(now.end()));
  }
  return all;
}

StatusOr<FakeIstioCa*> FakeIstio::RunningCa(std::string_view cmd) {
  if (!ca_) {
    return absl::FailedPreconditionError(std::string(cmd) +
                                         ": the CA is stopped (send ca_restart first)");
  }
  return ca_.get();
}

StatusOr<Json> FakeIstio::CaRequests(const Json& req) {
  ASSIGN_OR_RETURN(int64_t since, GetInt(req, "since", 0));
  const std::vector<FakeCaRequest> all = AllCaRequests();
  Json out = Json::array();
  for (size_t i = static_cast<size_t>(std::max<int64_t>(since, 0)); i < all.size(); ++i) {
    out.push_back(fake_istio::ToJson(all[i], i));
  }
  return Json{{"requests", out}, {"total", all.size()}, {"stopped", ca_ == nullptr}};
}

StatusOr<Json> FakeIstio::CaWait(const Json& req) {
  ASSIGN_OR_RETURN(int64_t count, GetInt(req, "count", 1));
  ASSIGN_OR_RETURN(int64_t timeout_ms, GetInt(req, "timeout_ms", 5000));
  ASSIGN_OR_RETURN(FakeIstioCa * ca, RunningCa("ca_wait"));
  // `count` counts every CA call since start, including stopped instances'.
  const int64_t here = std::max<int64_t>(count - static_cast<int64_t>(ca_history_.size()), 0);
  if (!ca->WaitForCalls(static_cast<size_t>(here), Ms(timeout_ms))) {
    return absl::DeadlineExceededError(
        "ca_wait: " + std::to_string(ca_history_.size() + ca->calls()) + " of " +
        std::to_string(count) + " CA calls after " + std::to_string(timeout_ms) + " ms");
  }
  return CaRequests(Json::object());
}

StatusOr<Json> FakeIstio::CaFail(const Json& req) {
  ASSIGN_OR_RETURN(int64_t n, GetInt(req, "n", 1));
  ASSIGN_OR_RETURN(int64_t code, GetInt(req, "code", 14));  // UNAVAILABLE
  if (code <= 0 || code > 16) return absl::InvalidArgumentError("code: want a gRPC code 1..16");
  ASSIGN_OR_RETURN(FakeIstioCa * ca, RunningCa("ca_fail"));
  ca->FailNext(static_cast<int>(n), static_cast<int>(code),
               GetString(req, "message", "injected by ca_fail"));
  return Json::object();
}

StatusOr<Json> FakeIstio::CaRecover(const Json&) {
  ASSIGN_OR_RETURN(FakeIstioCa * ca, RunningCa("ca_recover"));
  ca->Recover();
  return Json::object();
}

// Closes the CA port (the agents see connection refused); requests so far are
// kept for ca_requests / ca_wait.
StatusOr<Json> FakeIstio::CaStop(const Json&) {
  if (ca_) {
    std::vector<FakeCaRequest> done = ca_->requests();
    ca_.reset();  // shuts the gRPC server down: port closed, connections dropped
    ca_history_.insert(ca_history_.end(), std::make_move_iterator(done.begin()),
                       std::make_move_iterator(done.end()));
  }
  return Json{{"total", ca_history_.size()}};
}

// A fresh CA on the same address with the same root; scripted failures are cleared.
StatusOr<Json> FakeIstio::CaRestart(const Json&) {
  if (!ca_) {
    ASSIGN_OR_RETURN(ca_, FakeIstioCa::Start(ca_options_));
  }
  return Json{{"ca", ca_->address()}};
}

StatusOr<Json> FakeIstio::Quit(const Json&) {
  quit_ = true;
  return Json::object();
}

}  // namespace ambit::testing
