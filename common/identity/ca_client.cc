#include "common/identity/ca_client.h"

#include <grpcpp/grpcpp.h>

#include <cctype>
#include <filesystem>
#include <system_error>

#include "common/base/log.h"
#include "common/identity/cat.h"
#include "common/identity/cert_files.h"
#include "common/identity/key_csr.h"
#include "common/identity/x509_util.h"
#include "proto/ca.grpc.pb.h"

namespace ambit::identity {
namespace {

namespace pb = ::istio::v1::auth;

constexpr std::string_view kImpersonatedIdentity = "ImpersonatedIdentity";

std::string_view Trim(std::string_view s) {
  const auto ws = std::string_view(" \t\r\n");
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

StatusOr<std::string> LoadRoots(const std::string& setting) {
  if (setting == "SYSTEM") return std::string();  // gRPC's default roots
  if (setting.find("-----BEGIN") != std::string::npos) return setting;
  StatusOr<std::string> pem = ReadSmallFile(setting);
  if (!pem.ok()) {
    return absl::InvalidArgumentError(Cat("CA_ROOT_CA ", setting,
                                          " is neither SYSTEM, inline PEM nor a readable file: ",
                                          std::string(pem.status().message())));
  }
  return pem;
}

StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeCredentials(const IstioCaOptions& o) {
  if (o.insecure_for_test) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  ASSIGN_OR_RETURN(ssl.pem_root_certs, LoadRoots(o.root_ca));
  return grpc::SslCredentials(ssl);
}

Status FromGrpc(const grpc::Status& s, const IstioCaOptions& o, const Identity& id) {
  std::string hint;
  switch (s.error_code()) {
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      hint = o.impersonate ? " (check the token at AUTH_TOKEN, CA_TRUSTED_NODE_ACCOUNTS on "
                             "istiod, and that a pod with this identity runs on this node)"
                           : " (check the token at AUTH_TOKEN and CLUSTER_ID)";
      break;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      hint = " (is CA_ADDRESS reachable, and does CA_ROOT_CA trust its certificate?)";
      break;
    default:
      break;
  }
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      Cat("CreateCertificate for ", id.ToString(), " at ", o.address,
                          " failed: ", s.error_message(), hint));
}

pb::IstioCertificateRequest BuildRequest(const IstioCaOptions& o, const Identity& id,
                                         const std::string& csr_pem) {
  pb::IstioCertificateRequest req;
  req.set_csr(csr_pem);
  req.set_validity_duration(o.cert_ttl.count());
  if (o.impersonate) {
    (*req.mutable_metadata()->mutable_fields())[std::string(kImpersonatedIdentity)]
        .set_string_value(id.ToString());
  }
  return req;
}

}  // namespace

StatusOr<std::vector<std::string>> SplitPemCerts(std::string_view pem, std::string_view what) {
  ASSIGN_OR_RETURN(std::vector<X509Ptr> certs, ParseCertsPem(pem, what));
  std::vector<std::string> out;
  out.reserve(certs.size());
  for (X509Ptr& c : certs) {
    ASSIGN_OR_RETURN(std::string one, CertToPem(c.get()));
    out.push_back(std::move(one));
  }
  return out;
}

StatusOr<CertBundle> BundleFromCaResponse(const std::vector<std::string>& cert_chain,
                                          std::string_view key_pem, const Identity& requested) {
  if (cert_chain.size() < 2) {
    return absl::InvalidArgumentError(
        Cat("CA response has ", cert_chain.size(),
            " cert_chain element(s); expected the leaf first and the root bundle last"));
  }
  std::string chain_pem;
  for (size_t i = 0; i + 1 < cert_chain.size(); ++i) {
    ASSIGN_OR_RETURN(std::vector<std::string> certs,
                     SplitPemCerts(cert_chain[i], Cat("CA response cert_chain[", i, "]")));
    for (const std::string& c : certs) chain_pem += c;
  }
  ASSIGN_OR_RETURN(std::vector<std::string> roots,
                   SplitPemCerts(cert_chain.back(), "CA response root bundle (last element)"));
  std::string roots_pem;
  for (const std::string& r : roots) roots_pem += r;
  ASSIGN_OR_RETURN(CertBundle bundle, MakeCertBundle(chain_pem, roots_pem, key_pem));
  ASSIGN_OR_RETURN(LoadedBundle loaded, LoadBundle(bundle));
  if (!(loaded.identity == requested)) {
    return absl::PermissionDeniedError(
        Cat("CA issued a certificate for ", loaded.identity.ToString(), " but ",
            requested.ToString(), " was requested; refusing it"));
  }
  return bundle;
}

StatusOr<std::string> ResolveAuthToken(const std::string& setting) {
  if (setting.empty()) return std::string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(setting, ec)) return setting;  // literal token
  StatusOr<std::string> contents = ReadSmallFile(setting);
  if (!contents.ok()) {
    return absl::UnauthenticatedError(
        Cat("reading CA token file ", setting, " (AUTH_TOKEN): ", std::string(contents.status().message())));
  }
  std::string token(Trim(*contents));
  if (token.empty()) {
    return absl::UnauthenticatedError(Cat("CA token file ", setting, " (AUTH_TOKEN) is empty"));
  }
  return token;
}

StatusOr<std::unique_ptr<IstioCaClient>> IstioCaClient::Create(io::Loop& loop,
                                                               IstioCaOptions options) {
  if (options.address.empty()) {
    return absl::InvalidArgumentError("CA_ADDRESS is empty: set it or use the built-in CA");
  }
  if (options.cert_ttl <= std::chrono::seconds(0)) {
    return absl::InvalidArgumentError("SECRET_TTL must be positive");
  }
  if (options.max_concurrent == 0) options.max_concurrent = 1;
  for (auto& [key, value] : options.extra_headers) {  // gRPC metadata keys are lowercase
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> creds, MakeCredentials(options));
  grpc::ChannelArguments args;
  if (!options.alt_hostname.empty()) args.SetSslTargetNameOverride(options.alt_hostname);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(options.address, creds, args);
  if (!channel) return absl::InternalError(Cat("creating gRPC channel to ", options.address));
  return std::unique_ptr<IstioCaClient>(
      new IstioCaClient(loop, std::move(options), std::move(channel)));
}

IstioCaClient::IstioCaClient(io::Loop& loop, IstioCaOptions options,
                             std::shared_ptr<grpc::Channel> channel)
    : loop_(loop),
      options_(std::move(options)),
      name_(Cat("Istio CA at ", options_.address)),
      channel_(std::move(channel)) {
  workers_.reserve(options_.max_concurrent);
  for (size_t i = 0; i < options_.max_concurrent; ++i) {
    workers_.emplace_back([this] { WorkerMain(); });
  }
}

IstioCaClient::~IstioCaClient() {
  std::deque<Job> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    left.swap(jobs_);
    for (grpc::ClientContext* ctx : active_) ctx->TryCancel();
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
  for (Job& job : left) {
    loop_.Post([done = std::move(job.done), id = job.id]() mutable {
      done(absl::CancelledError(Cat("CA client shut down before fetching ", id.ToString())));
    });
  }
}

void IstioCaClient::Fetch(const Identity& id, CertCallback done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(Job{id, std::move(done)});
  }
  cv_.notify_one();
}

void IstioCaClient::WorkerMain() {
  for (;;) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (stopping_) return;
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    StatusOr<CertBundle> result = Call(job.id);
    if (!result.ok()) {
      AMBIT_LOG(kWarn, "identity", "certificate fetch failed: {}", result.status().ToString());
    }
    loop_.Post([done = std::move(job.done), r = std::move(result)]() mutable {
      done(std::move(r));
    });
  }
}

StatusOr<CertBundle> IstioCaClient::Call(const Identity& id) {
  ASSIGN_OR_RETURN(KeyAndCsr kc, GenerateKeyAndCsr(id));
  ASSIGN_OR_RETURN(std::string token, ResolveAuthToken(options_.auth_token));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + options_.call_timeout);
  // Wait (within the deadline) for the channel to connect instead of failing
  // fast while it is in TRANSIENT_FAILURE: the call then drives the connection
  // attempt, so a CA that comes back is used at once.
  ctx.set_wait_for_ready(true);
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  if (!options_.cluster_id.empty()) ctx.AddMetadata("clusterid", options_.cluster_id);
  for (const auto& [k, v] : options_.extra_headers) ctx.AddMetadata(k, v);
  const pb::IstioCertificateRequest req = BuildRequest(options_, id, kc.csr_pem);
  pb::IstioCertificateResponse resp;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      return absl::CancelledError(Cat("CA client shut down before fetching ", id.ToString()));
    }
    active_.push_back(&ctx);
  }
  auto stub = pb::IstioCertificateService::NewStub(channel_);
  const grpc::Status s = stub->CreateCertificate(&ctx, req, &resp);
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_.erase(std::find(active_.begin(), active_.end(), &ctx));
  }
  if (!s.ok()) return FromGrpc(s, options_, id);
  const std::vector<std::string> chain(resp.cert_chain().begin(), resp.cert_chain().end());
  StatusOr<CertBundle> bundle = BundleFromCaResponse(chain, kc.private_key_pem, id);
  if (!bundle.ok()) {
    return absl::Status(bundle.status().code(), Cat("response of ", name_, " for ",
                                                    id.ToString(), ": ",
                                                    std::string(bundle.status().message())));
  }
  return bundle;
}

}  // namespace ambit::identity
