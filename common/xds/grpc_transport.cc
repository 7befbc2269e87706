#include "common/xds/grpc_transport.h"

#include <grpcpp/grpcpp.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "proto/discovery.grpc.pb.h"

namespace ambit::xds {
namespace {

namespace pb = ::envoy::service::discovery::v3;

constexpr int kMaxMessageBytes = 200 * 1024 * 1024;
constexpr int kConnectTimeoutMs = 5'000;

std::string_view Trim(std::string_view s) {
  const std::string_view ws(" \t\r\n");
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError("cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError("cannot read " + path);
  return ss.str();
}

StatusOr<std::string> LoadRoots(const std::string& setting) {
  if (setting == "SYSTEM") return std::string();  // gRPC's default roots
  if (setting.find("-----BEGIN") != std::string::npos) return setting;
  StatusOr<std::string> pem = ReadFile(setting);
  if (!pem.ok()) {
    return absl::InvalidArgumentError("XDS_ROOT_CA '" + setting +
                                      "' is neither SYSTEM, inline PEM nor a readable file: " +
                                      std::string(pem.status().message()));
  }
  return pem;
}

class GrpcXdsStream final : public XdsStream {
 public:
  GrpcXdsStream(std::unique_ptr<grpc::ClientContext> ctx,
                std::unique_ptr<pb::AggregatedDiscoveryService::Stub> stub)
      : ctx_(std::move(ctx)),
        stub_(std::move(stub)),
        rw_(stub_->DeltaAggregatedResources(ctx_.get())) {}

  bool Write(const DeltaRequest& request) override { return rw_->Write(request); }
  bool Read(DeltaResponse* response) override { return rw_->Read(response); }
  Status Finish() override {
    grpc::Status s = rw_->Finish();
    if (s.ok()) return absl::UnavailableError("xDS server closed the stream");
    std::string hint;
    if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
        s.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
      hint = " (check the token at AUTH_TOKEN and CLUSTER_ID)";
    } else if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
      hint = " (is XDS_ADDRESS reachable, and does XDS_ROOT_CA trust its certificate?)";
    }
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        "xDS stream failed: " + s.error_message() + hint);
  }
  void Cancel() override { ctx_->TryCancel(); }

 private:
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<pb::AggregatedDiscoveryService::Stub> stub_;
  std::unique_ptr<grpc::ClientReaderWriter<DeltaRequest, DeltaResponse>> rw_;
};

}  // namespace

StatusOr<std::string> ResolveXdsToken(const std::string& setting) {
  if (setting.empty()) return std::string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(setting, ec)) return setting;  // literal token
  StatusOr<std::string> contents = ReadFile(setting);
  if (!contents.ok()) {
    return absl::UnauthenticatedError("reading xDS token file " + setting +
                                      " (AUTH_TOKEN): " + std::string(contents.status().message()));
  }
  std::string token(Trim(*contents));
  if (token.empty()) {
    return absl::UnauthenticatedError("xDS token file " + setting + " (AUTH_TOKEN) is empty");
  }
  return token;
}

StatusOr<std::unique_ptr<GrpcXdsTransport>> GrpcXdsTransport::Create(GrpcTransportOptions options) {
  constexpr std::string_view kHttps = "https://";
  if (options.address.starts_with(kHttps)) options.address.erase(0, kHttps.size());
  if (options.address.starts_with("http://")) {
    return absl::InvalidArgumentError("XDS_ADDRESS " + options.address +
                                      ": plaintext http:// is not supported, use https://");
  }
  if (options.address.empty()) {
    return absl::InvalidArgumentError("XDS_ADDRESS is empty: set it, or run without xDS");
  }
  for (auto& [key, value] : options.extra_headers) {  // gRPC metadata keys are lowercase
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (options.insecure_for_test) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    ASSIGN_OR_RETURN(ssl.pem_root_certs, LoadRoots(options.root_ca));
    creds = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              static_cast<int>(options.reconnect_initial.count()));
  // gRPC uses the "min reconnect backoff" as the connect timeout (§5.1: 5 s).
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, kConnectTimeoutMs);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(options.reconnect_max.count()));
  if (!options.alt_hostname.empty()) {
    args.SetSslTargetNameOverride(options.alt_hostname);
  }
  auto channel = grpc::CreateCustomChannel(options.address, creds, args);
  return std::unique_ptr<GrpcXdsTransport>(new GrpcXdsTransport(std::move(options), channel));
}

StatusOr<std::unique_ptr<XdsStream>> GrpcXdsTransport::Open() {
  ASSIGN_OR_RETURN(std::string token, ResolveXdsToken(options_.auth_token));
  // Drive the channel's connection attempt ourselves: a stream that fails
  // fast on a channel in TRANSIENT_FAILURE does not poll it, and the channel
  // then only progresses on gRPC's 5 s backup poller — whose period equals the
  // connect timeout, so an agent started while istiod was down never
  // reconnected. Bounded so that Cancel()/shutdown waits at most this long.
  constexpr auto kConnectWait = std::chrono::seconds(2);
  if (!channel_->WaitForConnected(std::chrono::system_clock::now() + kConnectWait)) {
    return absl::UnavailableError("cannot connect to XDS_ADDRESS " + options_.address +
                                  " (is istiod reachable, and does XDS_ROOT_CA trust its certificate?)");
  }
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_wait_for_ready(true);
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  if (!options_.cluster_id.empty()) ctx->AddMetadata("clusterid", options_.cluster_id);
  for (const auto& [key, value] : options_.extra_headers) ctx->AddMetadata(key, value);
  auto stub = pb::AggregatedDiscoveryService::NewStub(channel_);
  return std::unique_ptr<XdsStream>(new GrpcXdsStream(std::move(ctx), std::move(stub)));
}

}  // namespace ambit::xds
