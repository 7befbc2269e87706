#include "tests/support/fake_xds.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <utility>

#include "proto/discovery.grpc.pb.h"

namespace ambit::testing {
namespace {

namespace pb = ::envoy::service::discovery::v3;
using Rw = grpc::ServerReaderWriter<pb::DeltaDiscoveryResponse, pb::DeltaDiscoveryRequest>;

}  // namespace

struct FakeXdsServer::Stream {
  int id = 0;
  grpc::ServerContext* ctx = nullptr;
  Rw* rw = nullptr;
  std::set<std::string> subscribed;  // type URLs
};

class FakeXdsServer::Service final : public pb::AggregatedDiscoveryService::Service {
 public:
  explicit Service(FakeXdsServer& owner) : owner_(owner) {}
  grpc::Status DeltaAggregatedResources(grpc::ServerContext* ctx, Rw* rw) override {
    Stream stream;
    stream.ctx = ctx;
    stream.rw = rw;
    owner_.Serve(stream);
    return grpc::Status::OK;
  }

 private:
  FakeXdsServer& owner_;
};

StatusOr<std::unique_ptr<FakeXdsServer>> FakeXdsServer::Start(FakeXdsOptions options) {
  std::unique_ptr<FakeXdsServer> s(new FakeXdsServer());
  s->options_ = std::move(options);
  RETURN_IF_ERROR(s->Listen(s->options_.listen_address));
  return s;
}

FakeXdsServer::~FakeXdsServer() { Stop(); }

Status FakeXdsServer::Listen(const std::string& address) {
  service_ = std::make_unique<Service>(*this);
  grpc::ServerBuilder builder;
  int port = 0;
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (!options_.tls_cert_pem.empty() && !options_.tls_key_pem.empty()) {
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({options_.tls_key_pem, options_.tls_cert_pem});
    creds = grpc::SslServerCredentials(ssl);
  }
  builder.AddListeningPort(address, creds, &port);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port == 0) {
    server_.reset();
    return absl::UnavailableError("fake xDS server cannot listen on " + address);
  }
  port_ = port;
  address_ = address.substr(0, address.rfind(':')) + ":" + std::to_string(port);
  return absl::OkStatus();
}

void FakeXdsServer::Stop() {
  if (server_ == nullptr) return;
  server_->Shutdown(std::chrono::system_clock::now());  // cancels the open streams
  server_->Wait();
  server_.reset();
  service_.reset();
}

Status FakeXdsServer::Restart() {
  Stop();
  return Listen(address_);
}

void FakeXdsServer::Serve(Stream& stream) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stream.id = ++next_stream_;
    std::multimap<std::string, std::string> headers;
    for (const auto& [k, v] : stream.ctx->client_metadata()) {
      headers.emplace(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
    }
    headers_.push_back(std::move(headers));
    streams_.insert(&stream);
  }
  cv_.notify_all();
  pb::DeltaDiscoveryRequest req;
  while (stream.rw->Read(&req)) {
    std::lock_guard<std::mutex> lock(mu_);
    Record(stream.id, req);
    if (!req.response_nonce().empty() || req.type_url().empty()) continue;
    // Initial subscription: everything we hold of this type, and removals of
    // names the client knows but we do not.
    stream.subscribed.insert(req.type_url());
    pb::DeltaDiscoveryResponse resp;
    resp.set_type_url(req.type_url());
    const auto& held = resources_[req.type_url()];
    for (const auto& [name, res] : held) *resp.add_resources() = res;
    for (const auto& [name, version] : req.initial_resource_versions()) {
      if (!held.contains(name)) resp.add_removed_resources(name);
    }
    resp.set_nonce(NextNonce());
    stream.rw->Write(resp);
  }
  std::lock_guard<std::mutex> lock(mu_);
  streams_.erase(&stream);
  cv_.notify_all();
}

void FakeXdsServer::Record(int stream, const pb::DeltaDiscoveryRequest& req) {
  FakeXdsRequest r;
  r.stream = stream;
  r.type_url = req.type_url();
  r.nonce = req.response_nonce();
  r.nack = req.has_error_detail();
  r.error_message = req.error_detail().message();
  r.initial_resource_versions.insert(req.initial_resource_versions().begin(),
                                     req.initial_resource_versions().end());
  r.node_id = req.node().id();
  for (const auto& [k, v] : req.node().metadata().fields()) {
    if (v.has_string_value()) r.node_metadata[k] = v.string_value();
  }
  requests_.push_back(std::move(r));
  cv_.notify_all();
}

std::string FakeXdsServer::NextNonce() { return "nonce-" + std::to_string(++next_nonce_); }

std::string FakeXdsServer::Broadcast(pb::DeltaDiscoveryResponse resp) {
  std::string nonce;
  for (Stream* s : streams_) {
    if (!s->subscribed.contains(resp.type_url())) continue;
    if (nonce.empty()) nonce = NextNonce();
    resp.set_nonce(nonce);
    s->rw->Write(resp);
  }
  return nonce;
}

FakeXdsServer::Resource FakeXdsServer::MakeResource(const std::string& name,
                                                    const std::string& version,
                                                    const google::protobuf::Message& msg) {
  Resource r;
  r.set_name(name);
  r.set_version(version);
  r.mutable_resource()->PackFrom(msg);
  return r;
}

FakeXdsServer::Resource FakeXdsServer::AddressResource(const ::istio::workload::Workload& w,
                                                       const std::string& version) {
  ::istio::workload::Address a;
  *a.mutable_workload() = w;
  return MakeResource(w.uid(), version, a);
}

FakeXdsServer::Resource FakeXdsServer::AddressResource(const ::istio::workload::Service& s,
                                                       const std::string& version) {
  ::istio::workload::Address a;
  *a.mutable_service() = s;
  return MakeResource(s.namespace_() + "/" + s.hostname(), version, a);
}

std::string FakeXdsServer::Store(std::string_view type_url, const std::string& name,
                                 const google::protobuf::Message& msg) {
  std::lock_guard<std::mutex> lock(mu_);
  Resource r = MakeResource(name, "v" + std::to_string(++next_version_), msg);
  resources_[std::string(type_url)][name] = r;
  pb::DeltaDiscoveryResponse resp;
  resp.set_type_url(std::string(type_url));
  *resp.add_resources() = std::move(r);
  return Broadcast(std::move(resp));
}

std::string FakeXdsServer::SetWorkload(const ::istio::workload::Workload& w) {
  ::istio::workload::Address a;
  *a.mutable_workload() = w;
  return Store(kFakeXdsAddressType, w.uid(), a);
}

std::string FakeXdsServer::SetService(const ::istio::workload::Service& s) {
  ::istio::workload::Address a;
  *a.mutable_service() = s;
  return Store(kFakeXdsAddressType, s.namespace_() + "/" + s.hostname(), a);
}

std::string FakeXdsServer::SetPolicy(const ::istio::security::Authorization& a) {
  return Store(kFakeXdsAuthorizationType, a.namespace_() + "/" + a.name(), a);
}

std::string FakeXdsServer::Remove(std::string_view type_url, const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  resources_[std::string(type_url)].erase(name);
  pb::DeltaDiscoveryResponse resp;
  resp.set_type_url(std::string(type_url));
  resp.add_removed_resources(name);
  return Broadcast(std::move(resp));
}

std::string FakeXdsServer::Push(std::string_view type_url, std::vector<Resource> resources,
                                std::vector<std::string> removed) {
  std::lock_guard<std::mutex> lock(mu_);
  pb::DeltaDiscoveryResponse resp;
  resp.set_type_url(std::string(type_url));
  for (Resource& r : resources) *resp.add_resources() = std::move(r);
  for (std::string& n : removed) resp.add_removed_resources(std::move(n));
  return Broadcast(std::move(resp));
}

std::vector<FakeXdsRequest> FakeXdsServer::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

std::optional<FakeXdsRequest> FakeXdsServer::FindAck(const std::string& nonce) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const FakeXdsRequest& r : requests_) {
    if (!nonce.empty() && r.nonce == nonce) return r;
  }
  return std::nullopt;
}

std::optional<FakeXdsRequest> FakeXdsServer::FindInitial(int stream,
                                                         std::string_view type_url) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const FakeXdsRequest& r : requests_) {
    if (r.stream == stream && r.nonce.empty() && r.type_url == type_url) return r;
  }
  return std::nullopt;
}

std::vector<std::multimap<std::string, std::string>> FakeXdsServer::stream_headers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return headers_;
}

int FakeXdsServer::streams_accepted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return next_stream_;
}

int FakeXdsServer::active_streams() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(streams_.size());
}

bool FakeXdsServer::WaitFor(const std::function<bool()>& pred,
                            std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    lock.unlock();
    if (pred()) return true;
    lock.lock();
    if (std::chrono::steady_clock::now() >= deadline) {
      lock.unlock();
      return pred();
    }
    // Bounded so a notification between pred() and here is never missed for long.
    cv_.wait_until(
        lock, std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(20)));
  }
}

}  // namespace ambit::testing
