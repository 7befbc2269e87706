#include "common/xds/client.h"

#include <algorithm>
#include <utility>

#include "common/base/log.h"

namespace ambit::xds {

struct DeltaXdsClient::Shared {
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  XdsStream* active = nullptr;  // the stream to cancel on shutdown
  XdsHandler* handler = nullptr;
};

namespace {

// The handler's answer to one response, filled on the loop thread.
struct Verdict {
  bool done = false;
  std::vector<ResourceError> errors;
};

}  // namespace

StatusOr<std::unique_ptr<DeltaXdsClient>> DeltaXdsClient::Create(
    io::Loop& loop, XdsClientOptions options, std::unique_ptr<XdsTransport> transport,
    XdsHandler& handler) {
  if (transport == nullptr) return absl::InvalidArgumentError("xDS client needs a transport");
  if (options.type_urls.empty()) return absl::InvalidArgumentError("xDS client: no type_urls");
  if (options.backoff_initial.count() <= 0 || options.backoff_max < options.backoff_initial) {
    return absl::InvalidArgumentError("xDS client: backoff must be positive, initial <= max");
  }
  ASSIGN_OR_RETURN(::envoy::config::core::v3::Node node, BuildNode(options.node));
  return std::unique_ptr<DeltaXdsClient>(
      new DeltaXdsClient(loop, std::move(options), std::move(node), std::move(transport), handler));
}

StatusOr<std::unique_ptr<DeltaXdsClient>> DeltaXdsClient::CreateGrpc(io::Loop& loop,
                                                                     XdsClientOptions options,
                                                                     GrpcTransportOptions grpc,
                                                                     XdsHandler& handler) {
  grpc.reconnect_initial = options.backoff_initial;
  grpc.reconnect_max = options.backoff_max;
  ASSIGN_OR_RETURN(std::unique_ptr<GrpcXdsTransport> transport,
                   GrpcXdsTransport::Create(std::move(grpc)));
  return Create(loop, std::move(options), std::move(transport), handler);
}

DeltaXdsClient::DeltaXdsClient(io::Loop& loop, XdsClientOptions options,
                               ::envoy::config::core::v3::Node node,
                               std::unique_ptr<XdsTransport> transport, XdsHandler& handler)
    : loop_(loop),
      options_(std::move(options)),
      node_(std::move(node)),
      transport_(std::move(transport)),
      shared_(std::make_shared<Shared>()) {
  shared_->handler = &handler;
}

DeltaXdsClient::~DeltaXdsClient() {
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->stopping = true;
    if (shared_->active != nullptr) shared_->active->Cancel();
  }
  shared_->cv.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DeltaXdsClient::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { ThreadMain(); });
}

std::map<std::string, VersionMap> DeltaXdsClient::KnownVersions() const {
  std::lock_guard<std::mutex> lock(versions_mu_);
  return known_;
}

void DeltaXdsClient::PostToHandler(absl::AnyInvocable<void(XdsHandler&)> fn) {
  loop_.Post([shared = shared_, fn = std::move(fn)]() mutable {
    XdsHandler* handler = nullptr;
    {
      std::lock_guard<std::mutex> lock(shared->mu);
      if (!shared->stopping) handler = shared->handler;
    }
    // stopping is only set on the loop thread (destructor), so the handler
    // cannot go away between the check and the call.
    if (handler != nullptr) fn(*handler);
  });
}

void DeltaXdsClient::ThreadMain() {
  std::chrono::milliseconds backoff = options_.backoff_initial;
  while (true) {
    StatusOr<std::unique_ptr<XdsStream>> stream = transport_->Open();
    Status ended;
    bool got_response = false;
    if (stream.ok()) {
      {
        std::lock_guard<std::mutex> lock(shared_->mu);
        if (shared_->stopping) return;
        shared_->active = stream->get();
      }
      streams_opened_.fetch_add(1);
      ended = RunStream(**stream, &got_response);
      std::lock_guard<std::mutex> lock(shared_->mu);
      shared_->active = nullptr;
    } else {
      ended = stream.status();
    }
    if (got_response) backoff = options_.backoff_initial;
    {
      std::unique_lock<std::mutex> lock(shared_->mu);
      if (shared_->stopping) return;
      AMBIT_LOG(kWarn, "xds", "xDS stream ended: {}; reconnecting in {} ms",
                std::string(ended.message()), backoff.count());
      PostToHandler([ended](XdsHandler& h) { h.OnStreamError(ended); });
      shared_->cv.wait_for(lock, backoff, [this] { return shared_->stopping; });
      if (shared_->stopping) return;
    }
    backoff = std::min(backoff * 2, options_.backoff_max);
  }
}

Status DeltaXdsClient::RunStream(XdsStream& stream, bool* got_response) {
  std::map<std::string, VersionMap> known = KnownVersions();
  for (const std::string& type_url : options_.type_urls) {
    DeltaRequest initial = InitialRequest(type_url, node_, known[type_url]);
    if (!stream.Write(initial)) {
      DeltaResponse ignored;
      while (stream.Read(&ignored)) {
      }
      return stream.Finish();
    }
  }
  DeltaResponse response;
  while (stream.Read(&response)) {
    *got_response = true;
    std::optional<std::vector<ResourceError>> errors = Process(response);
    if (!errors.has_value()) {  // shutting down
      stream.Cancel();
      break;
    }
    if (!errors->empty()) {
      AMBIT_LOG(kWarn, "xds", "NACK {} nonce {}: {}", response.type_url(), response.nonce(),
                NackMessage(*errors));
    }
    DeltaRequest ack = AckRequest(response.type_url(), response.nonce(), *errors);
    if (!stream.Write(ack)) break;
    MarkReceived(response.type_url());
  }
  while (stream.Read(&response)) {
  }
  return stream.Finish();
}

std::optional<std::vector<ResourceError>> DeltaXdsClient::Process(const DeltaResponse& response) {
  const std::string& type_url = response.type_url();
  std::vector<ResourceError> errors;
  if (std::find(options_.type_urls.begin(), options_.type_urls.end(), type_url) ==
      options_.type_urls.end()) {
    errors.push_back({type_url, "type_url not subscribed by this client"});
    return errors;
  }
  std::vector<XdsResource> added;
  added.reserve(static_cast<size_t>(response.resources_size()));
  for (const auto& r : response.resources()) {
    if (r.name().empty()) {
      errors.push_back({"", "resource without a name"});
      continue;
    }
    added.push_back(XdsResource{r.name(), r.version(), r.resource()});
  }
  std::vector<std::string> removed(response.removed_resources().begin(),
                                   response.removed_resources().end());
  auto verdict = std::make_shared<Verdict>();
  auto shared = shared_;
  PostToHandler([shared, verdict, type_url, added = std::move(added),
                 removed = std::move(removed)](XdsHandler& h) mutable {
    std::vector<ResourceError> errs = h.OnResources(type_url, std::move(added), std::move(removed));
    std::lock_guard<std::mutex> lock(shared->mu);
    verdict->errors = std::move(errs);
    verdict->done = true;
    shared->cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(shared_->mu);
  shared_->cv.wait(lock, [&] { return verdict->done || shared_->stopping; });
  if (!verdict->done) return std::nullopt;
  errors.insert(errors.end(), verdict->errors.begin(), verdict->errors.end());
  lock.unlock();
  Record(type_url, response, errors);
  return errors;
}

void DeltaXdsClient::Record(const std::string& type_url, const DeltaResponse& response,
                            const std::vector<ResourceError>& errors) {
  std::set<std::string> rejected;
  for (const ResourceError& e : errors) rejected.insert(e.name);
  std::lock_guard<std::mutex> lock(versions_mu_);
  VersionMap& versions = known_[type_url];
  for (const auto& r : response.resources()) {
    if (r.name().empty() || rejected.contains(r.name())) continue;
    versions[r.name()] = r.version();
  }
  for (const std::string& name : response.removed_resources()) versions.erase(name);
}

void DeltaXdsClient::MarkReceived(const std::string& type_url) {
  received_types_.insert(type_url);
  if (ready_.load()) return;
  for (const std::string& t : options_.type_urls) {
    if (!received_types_.contains(t)) return;
  }
  ready_.store(true);
  AMBIT_LOG(kInfo, "xds", "xDS ready: every subscribed type received");
  PostToHandler([](XdsHandler& h) { h.OnReady(); });
}

}  // namespace ambit::xds
