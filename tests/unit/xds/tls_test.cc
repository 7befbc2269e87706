// GrpcXdsTransport over TLS against the fake server: inline root, file root,
// ALT_XDS_HOSTNAME, and an untrusted server that is never accepted.
#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>

#include "common/xds/client.h"
#include "tests/support/fake_xds.h"

namespace ambit::xds {
namespace {

using namespace std::chrono_literals;

struct CertKey {
  std::string cert_pem, key_pem;
};

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

void AddExt(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  REQUIRE(ext != nullptr);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// Self-signed P-256 certificate for DNS name `host` (also usable as its own root).
CertKey SelfSigned(const char* host) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  REQUIRE(key != nullptr);
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(host),
                             -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509_set_pubkey(cert, key);
  std::string san = std::string("DNS:") + host;
  AddExt(cert, NID_subject_alt_name, san.c_str());
  AddExt(cert, NID_basic_constraints, "critical,CA:TRUE");
  REQUIRE(X509_sign(cert, key, EVP_sha256()) > 0);
  BIO* cb = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(cb, cert);
  BIO* kb = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(kb, key, nullptr, nullptr, 0, nullptr, nullptr);
  X509_free(cert);
  EVP_PKEY_free(key);
  return {BioText(cb), BioText(kb)};
}

struct CountingHandler final : XdsHandler {
  std::vector<ResourceError> OnResources(std::string_view, std::vector<XdsResource>,
                                         std::vector<std::string>) override {
    ++responses;
    return {};
  }
  void OnStreamError(const Status& s) override { last_error = std::string(s.message()); }
  int responses = 0;
  std::string last_error;
};

TEST_CASE("tls: the server is verified against XDS_ROOT_CA with ALT_XDS_HOSTNAME") {
  CertKey server_cert = SelfSigned("xds.test");
  auto server = testing::FakeXdsServer::Start({server_cert.cert_pem, server_cert.key_pem});
  REQUIRE(server.ok());
  auto loop = *io::Loop::Create({.backend = io::BackendKind::kEpoll});
  CountingHandler handler;

  auto connect = [&](std::string root_ca) {
    GrpcTransportOptions g;
    g.address = "https://" + (*server)->address();
    g.root_ca = std::move(root_ca);
    g.alt_hostname = "xds.test";
    g.auth_token = "t";
    auto c = DeltaXdsClient::CreateGrpc(*loop, {}, std::move(g), handler);
    REQUIRE_MESSAGE(c.ok(), std::string(c.status().message()));
    (*c)->Start();
    return std::move(*c);
  };

  SUBCASE("inline PEM root") {
    auto client = connect(server_cert.cert_pem);
    CHECK(loop->RunUntil([&] { return client->ready(); }, 10s));
    CHECK(handler.responses == 2);
    auto headers = (*server)->stream_headers();
    REQUIRE(headers.size() == 1);
    CHECK(headers[0].find("authorization")->second == "Bearer t");
  }
  SUBCASE("root from a file") {
    char path[] = "/tmp/ambit-xds-root-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    std::ofstream(path) << server_cert.cert_pem;
    auto client = connect(path);
    CHECK(loop->RunUntil([&] { return client->ready(); }, 10s));
    unlink(path);
  }
  SUBCASE("a root that did not sign the server certificate") {
    CertKey other = SelfSigned("xds.test");
    auto client = connect(other.cert_pem);
    REQUIRE(loop->RunUntil([&] { return !handler.last_error.empty(); }, 10s));
    CHECK(handler.last_error.find("XDS_ROOT_CA") != std::string::npos);
    CHECK(handler.responses == 0);
    CHECK((*server)->streams_accepted() == 0);
    CHECK_FALSE(client->ready());
  }
}

}  // namespace
}  // namespace ambit::xds
