// CRL_PATH: revoked peer certificates fail the handshake on the verifying
// side (kRevoked, counted per role); unknown status passes.
#include <doctest/doctest.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "common/tls/crl.h"
#include "tests/unit/tls/tls_fixture.h"

namespace ambit::tls::testing {
namespace {

const std::string kClientId = "spiffe://cluster.local/ns/app/sa/client";
const std::string kServerId = "spiffe://cluster.local/ns/app/sa/server";

// A PEM CRL issued by `ca` (signed with `signer`, default the CA's key)
// listing the leaves of `revoked`.
std::string MakeCrl(const BuiltinCa& ca, const std::vector<const CertBundle*>& revoked,
                    EVP_PKEY* signer = nullptr) {
  X509_CRL* crl = X509_CRL_new();
  REQUIRE(crl != nullptr);
  REQUIRE(X509_CRL_set_version(crl, 1) == 1);
  REQUIRE(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca.root_cert())) == 1);
  ASN1_TIME* now = ASN1_TIME_set(nullptr, time(nullptr));
  ASN1_TIME* next = ASN1_TIME_set(nullptr, time(nullptr) + 3600);
  REQUIRE(X509_CRL_set1_lastUpdate(crl, now) == 1);
  REQUIRE(X509_CRL_set1_nextUpdate(crl, next) == 1);
  for (const CertBundle* b : revoked) {
    auto leaf = identity::ParseCertPem(b->leaf_pem, "leaf");
    REQUIRE(leaf.ok());
    X509_REVOKED* r = X509_REVOKED_new();
    REQUIRE(X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(leaf->get())) == 1);
    REQUIRE(X509_REVOKED_set_revocationDate(r, now) == 1);
    REQUIRE(X509_CRL_add0_revoked(crl, r) == 1);
  }
  REQUIRE(X509_CRL_sort(crl) == 1);
  REQUIRE(X509_CRL_sign(crl, signer != nullptr ? signer : ca.root_key(), EVP_sha256()) > 0);
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_X509_CRL(bio, crl) == 1);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  ASN1_TIME_free(now);
  ASN1_TIME_free(next);
  X509_CRL_free(crl);
  return pem;
}

struct TempFile {
  TempFile() {
    char p[] = "/tmp/ambit-crl-XXXXXX";
    int fd = mkstemp(p);
    REQUIRE(fd >= 0);
    close(fd);
    path = p;
  }
  ~TempFile() { unlink(path.c_str()); }
  void Write(const std::string& s) const { std::ofstream(path, std::ios::binary | std::ios::trunc) << s; }
  std::string path;
};

std::shared_ptr<CrlStore> Store(const TempFile& f, const std::string& content) {
  f.Write(content);
  auto s = std::make_shared<CrlStore>(f.path);
  Status st = s->Reload();
  REQUIRE_MESSAGE(st.ok(), st.ToString());
  return s;
}

struct Result {
  PumpResult r;
  TlsFailure server, client;
};

Result Handshake(const CertBundle& server_cert, const CertBundle& client_cert,
                 const std::shared_ptr<CrlStore>& crls) {
  TlsOptions o;
  o.crls = crls;
  auto server = TlsEngine::NewServer(ServerCtx(server_cert, o));
  auto client = TlsEngine::NewClient(ClientCtx(client_cert, o), {Id(kServerId)});
  REQUIRE(server.ok());
  REQUIRE(client.ok());
  Result out{Pump(**client, **server), TlsFailure::kNone, TlsFailure::kNone};
  out.server = (*server)->failure();
  out.client = (*client)->failure();
  if (out.server == TlsFailure::kRevoked) {
    CHECK(std::string((*server)->error().message()).find("revoked") != std::string::npos);
  }
  return out;
}

}  // namespace

TEST_CASE("CRL: a revoked client certificate is refused by the server, counted as inbound") {
  BuiltinCa ca = NewCa();
  CertBundle server = Issue(ca, kServerId), client = Issue(ca, kClientId);
  TempFile f;
  auto crls = Store(f, MakeCrl(ca, {&client}));
  CHECK(crls->current()->size() == 1);
  Result r = Handshake(server, client, crls);
  CHECK(r.r.server == HandshakeState::kFailed);
  CHECK(r.server == TlsFailure::kRevoked);
  CHECK(crls->rejections(TlsRole::kServer) == 1);
  CHECK(crls->rejections(TlsRole::kClient) == 0);
}

TEST_CASE("CRL: a revoked server certificate is refused by the client, counted as outbound") {
  BuiltinCa ca = NewCa();
  CertBundle server = Issue(ca, kServerId), client = Issue(ca, kClientId);
  TempFile f;
  int hook_calls = 0;
  auto crls = Store(f, MakeCrl(ca, {&server}));
  crls->set_on_rejection([&](TlsRole role) { hook_calls += role == TlsRole::kClient; });
  Result r = Handshake(server, client, crls);
  CHECK(r.r.client == HandshakeState::kFailed);
  CHECK(r.client == TlsFailure::kRevoked);
  CHECK(crls->rejections(TlsRole::kClient) == 1);
  CHECK(hook_calls == 1);
}

TEST_CASE("CRL: unknown status passes; foreign and forged CRLs do not revoke") {
  BuiltinCa ca = NewCa(), other = NewCa();
  CertBundle server = Issue(ca, kServerId), client = Issue(ca, kClientId);
  TempFile f;
  // Nothing revoked by our CA's CRL; another CA's CRL says nothing about us.
  auto crls = Store(f, MakeCrl(ca, {}) + MakeCrl(other, {}));
  CHECK(crls->current()->size() == 2);
  Result ok = Handshake(server, client, crls);
  CHECK(ok.r.server == HandshakeState::kDone);
  CHECK(ok.r.client == HandshakeState::kDone);
  // A CRL naming our CA as issuer but signed by another key is ignored.
  auto forged = Store(f, MakeCrl(ca, {&client}, other.root_key()));
  Result r = Handshake(server, client, forged);
  CHECK(r.r.server == HandshakeState::kDone);
  CHECK(forged->rejections(TlsRole::kServer) == 0);
}

TEST_CASE("CRL: reload, empty file, missing file, garbage keeps the last set") {
  BuiltinCa ca = NewCa();
  CertBundle server = Issue(ca, kServerId), client = Issue(ca, kClientId);
  TempFile f;
  auto crls = Store(f, "");
  CHECK(crls->current()->size() == 0);
  CHECK(Handshake(server, client, crls).r.server == HandshakeState::kDone);
  f.Write(MakeCrl(ca, {&client}));
  REQUIRE(crls->Reload().ok());
  CHECK(Handshake(server, client, crls).server == TlsFailure::kRevoked);
  f.Write("-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n");
  Status bad = crls->Reload();
  CHECK(bad.code() == absl::StatusCode::kInvalidArgument);
  CHECK(crls->current()->size() == 1);  // the previous CRLs stay
  CrlStore missing("/nonexistent/ambit-crl.pem");
  CHECK(missing.Reload().code() == absl::StatusCode::kNotFound);
  CHECK(missing.current() == nullptr);
}

}  // namespace ambit::tls::testing
