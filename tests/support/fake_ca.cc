#include "tests/support/fake_ca.h"

#include <grpcpp/grpcpp.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>

#include <algorithm>
#include <thread>

#include "common/base/assertions.h"

#include "common/identity/cert_builder.h"
#include "common/identity/x509_util.h"
#include "proto/ca.grpc.pb.h"

namespace ambit::testing {
namespace {

namespace pb = ::istio::v1::auth;
using identity::BioPtr;
using identity::EvpPkeyPtr;
using identity::X509Ptr;
using identity::X509ReqPtr;

std::string Str(grpc::string_ref r) { return std::string(r.data(), r.size()); }

// Fills the CSR fields of `rec`; returns the CSR (null if it does not parse).
X509ReqPtr ParseCsr(const std::string& pem, FakeCaRequest& rec) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!req) return nullptr;
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req.get());
  rec.csr_extension_count = exts == nullptr ? 0 : sk_X509_EXTENSION_num(exts);
  for (int i = 0; i < rec.csr_extension_count; ++i) {
    X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts, i);
    if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name) continue;
    rec.csr_san_critical = X509_EXTENSION_get_critical(ext) == 1;
    auto* names = static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(ext));
    for (int j = 0; names != nullptr && j < sk_GENERAL_NAME_num(names); ++j) {
      GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, j);
      if (gn->type != GEN_URI) continue;
      const ASN1_IA5STRING* uri = gn->d.uniformResourceIdentifier;
      rec.csr_uri_sans.emplace_back(reinterpret_cast<const char*>(uri->data),
                                    static_cast<size_t>(uri->length));
    }
    GENERAL_NAMES_free(names);
  }
  if (exts != nullptr) sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req.get());
  if (pub != nullptr) {
    const char* type = EVP_PKEY_get0_type_name(pub);
    rec.key_type = type != nullptr ? type : "";
    char group[64] = {};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &len) == 1) {
      rec.curve.assign(group, len);
    }
  }
  return req;
}

FakeCaRequest Record(const grpc::ServerContext& ctx, const pb::IstioCertificateRequest& req) {
  FakeCaRequest rec;
  rec.csr_pem = req.csr();
  rec.validity_duration = req.validity_duration();
  for (const auto& [k, v] : req.metadata().fields()) rec.metadata[k] = v.string_value();
  for (const auto& [k, v] : ctx.client_metadata()) {
    rec.headers.emplace(Str(k), Str(v));
    if (k == "authorization") rec.authorization = Str(v);
    if (k == "clusterid") rec.clusterid = Str(v);
  }
  return rec;
}

}  // namespace

class FakeIstioCa::Service final : public pb::IstioCertificateService::Service {
 public:
  explicit Service(FakeIstioCa& ca) : ca_(ca) {}

  grpc::Status CreateCertificate(grpc::ServerContext* ctx,
                                 const pb::IstioCertificateRequest* req,
                                 pb::IstioCertificateResponse* resp) override {
    FakeCaRequest rec = Record(*ctx, *req);
    X509ReqPtr csr = ParseCsr(req->csr(), rec);
    const FakeCaRequest copy = rec;
    Script script = Enter(std::move(rec));
    if (script.delay.count() > 0) std::this_thread::sleep_for(script.delay);
    grpc::Status s = Handle(copy, csr.get(), script, resp);
    Leave();
    return s;
  }

 private:
  struct Script {
    std::optional<grpc::Status> fail;
    std::chrono::milliseconds delay{0};
    std::optional<std::string> wrong_identity;
  };

  Script Enter(FakeCaRequest rec) {
    std::unique_lock<std::mutex> lock(ca_.mu_);
    ca_.requests_.push_back(std::move(rec));
    ca_.max_in_flight_ = std::max(ca_.max_in_flight_, ++ca_.in_flight_);
    ca_.cv_.notify_all();
    ca_.cv_.wait(lock, [this] { return !ca_.held_; });
    Script s;
    if (ca_.fail_remaining_ > 0) {
      --ca_.fail_remaining_;
      s.fail = grpc::Status(static_cast<grpc::StatusCode>(ca_.fail_code_), ca_.fail_message_);
    }
    s.delay = ca_.delay_;
    s.wrong_identity = ca_.wrong_identity_;
    return s;
  }

  void Leave() {
    std::lock_guard<std::mutex> lock(ca_.mu_);
    --ca_.in_flight_;
    ca_.cv_.notify_all();
  }

  grpc::Status Handle(const FakeCaRequest& rec, X509_REQ* csr, const Script& script,
                      pb::IstioCertificateResponse* resp) {
    if (script.fail) return *script.fail;
    if (csr == nullptr) return {grpc::StatusCode::INVALID_ARGUMENT, "CSR does not parse"};
    if (rec.csr_uri_sans.size() != 1) {
      return {grpc::StatusCode::INVALID_ARGUMENT, "CSR must carry exactly one URI SAN"};
    }
    auto imp = rec.metadata.find("ImpersonatedIdentity");
    if (imp != rec.metadata.end() && ca_.options_.allowed_impersonation &&
        !ca_.options_.allowed_impersonation->contains(imp->second)) {
      return {grpc::StatusCode::UNAUTHENTICATED,
              "impersonation of " + imp->second + " is not allowed"};
    }
    identity::CertSpec spec;
    spec.uri_sans = {script.wrong_identity.value_or(rec.csr_uri_sans.front())};
    spec.not_before = ca_.clock_.WallNow();
    const int64_t ttl = rec.validity_duration > 0 ? rec.validity_duration : 86400;
    spec.not_after = spec.not_before + std::chrono::seconds(ttl);
    StatusOr<X509Ptr> leaf = identity::BuildCert(spec, X509_REQ_get0_pubkey(csr),
                                                 ca_.ca_->root_cert(), ca_.ca_->root_key());
    if (!leaf.ok()) return {grpc::StatusCode::INTERNAL, std::string(leaf.status().message())};
    StatusOr<std::string> pem = identity::CertToPem(leaf->get());
    if (!pem.ok()) return {grpc::StatusCode::INTERNAL, std::string(pem.status().message())};
    resp->add_cert_chain(*pem);
    std::string roots = ca_.ca_->root_pem();
    {
      std::lock_guard<std::mutex> lock(ca_.mu_);
      for (const std::string& r : ca_.extra_roots_) roots += r;
    }
    resp->add_cert_chain(roots);
    return grpc::Status::OK;
  }

  FakeIstioCa& ca_;
};

base::WallTime FakeIstioCa::Clock::WallNow() const {
  std::lock_guard<std::mutex> lock(owner->mu_);
  return owner->wall_now_.value_or(base::RealClock::Instance().WallNow());
}

FakeIstioCa::FakeIstioCa(FakeCaOptions options) : options_(std::move(options)) {
  clock_.owner = this;
}

StatusOr<std::unique_ptr<FakeIstioCa>> FakeIstioCa::Start(FakeCaOptions options) {
  std::unique_ptr<FakeIstioCa> ca(new FakeIstioCa(std::move(options)));
  ca->ca_ = ca->options_.root;
  if (ca->ca_ == nullptr) {
    ASSIGN_OR_RETURN(identity::BuiltinCa root, identity::BuiltinCa::Generate());
    ca->ca_ = std::make_shared<identity::BuiltinCa>(std::move(root));
  }
  ca->service_ = std::make_unique<Service>(*ca);
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (!ca->options_.tls_cert_pem.empty() && !ca->options_.tls_key_pem.empty()) {
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({ca->options_.tls_key_pem, ca->options_.tls_cert_pem});
    creds = grpc::SslServerCredentials(ssl);
  }
  const std::string& listen = ca->options_.listen_address;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, creds, &port);
  builder.RegisterService(ca->service_.get());
  ca->server_ = builder.BuildAndStart();
  if (!ca->server_ || port == 0) {
    return absl::UnavailableError("fake CA: could not listen on " + listen);
  }
  ca->address_ = listen.substr(0, listen.rfind(':')) + ":" + std::to_string(port);
  return ca;
}

FakeIstioCa::~FakeIstioCa() {
  Release();
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server_.reset();
}

std::string FakeIstioCa::root_pem() const { return ca_->root_pem(); }

void FakeIstioCa::FailNext(int n, int code, std::string message) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_remaining_ = n;
  fail_code_ = code;
  fail_message_ = std::move(message);
}

void FakeIstioCa::SetDelay(std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> lock(mu_);
  delay_ = delay;
}

void FakeIstioCa::Hold() {
  std::lock_guard<std::mutex> lock(mu_);
  held_ = true;
}

void FakeIstioCa::Release() {
  std::lock_guard<std::mutex> lock(mu_);
  held_ = false;
  cv_.notify_all();
}

void FakeIstioCa::SetWrongIdentity(std::optional<std::string> uri) {
  std::lock_guard<std::mutex> lock(mu_);
  wrong_identity_ = std::move(uri);
}

void FakeIstioCa::AddExtraRoot() {
  StatusOr<identity::BuiltinCa> other = identity::BuiltinCa::Generate();
  AMBIT_ASSERT(other.ok());
  std::lock_guard<std::mutex> lock(mu_);
  extra_roots_.push_back(other->root_pem());
}

void FakeIstioCa::SetWallNow(base::WallTime now) {
  std::lock_guard<std::mutex> lock(mu_);
  wall_now_ = now;
}

std::vector<FakeCaRequest> FakeIstioCa::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

size_t FakeIstioCa::calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_.size();
}

int FakeIstioCa::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

int FakeIstioCa::max_in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return max_in_flight_;
}

bool FakeIstioCa::WaitForCalls(size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
}

bool FakeIstioCa::WaitForInFlight(int n, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return in_flight_ >= n; });
}

}  // namespace ambit::testing
