#include <doctest/doctest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "common/identity/builtin_ca.h"
#include "common/identity/cert_files.h"
#include "common/identity/key_csr.h"
#include "common/identity/x509_util.h"

namespace ambit::identity {
namespace {

namespace fs = std::filesystem;

Identity Id(const char* s) { return *Identity::Parse(s); }

X509ReqPtr ReadCsr(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return X509ReqPtr(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
}

unsigned FileMode(const fs::path& p) {
  struct stat st;
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

fs::path TempDir(const char* name) {
  fs::path dir =
      fs::temp_directory_path() / (std::string("ambit-") + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

TEST_CASE("CSR: empty subject, one critical URI SAN extension, P-256 key") {
  auto kc = GenerateKeyAndCsr(Id("spiffe://cluster.local/ns/ns1/sa/sa1"));
  REQUIRE(kc.ok());
  CHECK(kc->private_key_pem.find("-----BEGIN PRIVATE KEY-----") == 0);  // PKCS#8
  X509ReqPtr req = ReadCsr(kc->csr_pem);
  REQUIRE(req);
  CHECK(X509_NAME_entry_count(X509_REQ_get_subject_name(req.get())) == 0);
  CHECK(IsP256(X509_REQ_get0_pubkey(req.get())));
  CHECK(X509_REQ_verify(req.get(), X509_REQ_get0_pubkey(req.get())) == 1);
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req.get());
  REQUIRE(exts != nullptr);
  REQUIRE(sk_X509_EXTENSION_num(exts) == 1);
  X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts, 0);
  CHECK(OBJ_obj2nid(X509_EXTENSION_get_object(ext)) == NID_subject_alt_name);
  CHECK(X509_EXTENSION_get_critical(ext) == 1);
  auto* names = static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(ext));
  REQUIRE(sk_GENERAL_NAME_num(names) == 1);
  const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, 0);
  REQUIRE(gn->type == GEN_URI);
  CHECK(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(
            gn->d.uniformResourceIdentifier))) == "spiffe://cluster.local/ns/ns1/sa/sa1");
  GENERAL_NAMES_free(names);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
}

TEST_CASE("BuiltinCa issues a leaf with the identity, EKUs and a 24h TTL") {
  base::SimulatedClock clock;
  auto ca = BuiltinCa::Generate(clock);
  REQUIRE(ca.ok());
  auto bundle = ca->Issue(Id("spiffe://td/ns/a/sa/b"));
  REQUIRE(bundle.ok());
  CHECK(bundle->not_after - bundle->not_before == std::chrono::hours(24) + std::chrono::minutes(1));
  CHECK(bundle->not_before == clock.WallNow() - std::chrono::minutes(1));
  CHECK(bundle->serial_hex.size() >= 30);  // 128-bit random
  CHECK(bundle->chain_pems.empty());
  auto leaf = ParseCertPem(bundle->leaf_pem, "leaf");
  REQUIRE(leaf.ok());
  CHECK(UriSans(leaf->get()) == std::vector<std::string>{"spiffe://td/ns/a/sa/b"});
  const uint32_t xku = X509_get_extended_key_usage(leaf->get());
  CHECK((xku & XKU_SSL_SERVER) != 0);
  CHECK((xku & XKU_SSL_CLIENT) != 0);
  CHECK(X509_get_key_usage(leaf->get()) == KU_DIGITAL_SIGNATURE);
  CHECK(X509_check_ca(leaf->get()) == 0);
  CHECK(X509_check_ca(ca->root_cert()) != 0);
  CHECK(X509_verify(leaf->get(), X509_get0_pubkey(ca->root_cert())) == 1);
  auto loaded = LoadBundle(*bundle);
  REQUIRE(loaded.ok());
  CHECK(loaded->identity.ToString() == "spiffe://td/ns/a/sa/b");
}

TEST_CASE("BuiltinCa rejects CSRs without exactly one SPIFFE URI SAN") {
  auto ca = BuiltinCa::Generate();
  REQUIRE(ca.ok());
  auto bad = ca->SignCsr("not a csr");
  CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(bad.status().message()).find("PKCS#10") != std::string::npos);
  auto kc = GenerateKeyAndCsr(Id("spiffe://td/ns/a/sa/b"));
  REQUIRE(kc.ok());
  CHECK(ca->SignCsr(kc->csr_pem, std::chrono::seconds(0)).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(ca->SignCsr(kc->csr_pem, std::chrono::seconds(60)).ok());
}

TEST_CASE("BuiltinCa round-trips through a directory; files are 0600 where secret") {
  const fs::path dir = TempDir("ca");
  auto created = BuiltinCa::CreateInDir(dir);
  REQUIRE(created.ok());
  CHECK(FileMode(dir / "ca.key") == 0600);
  CHECK(BuiltinCa::CreateInDir(dir).status().code() == absl::StatusCode::kAlreadyExists);
  auto loaded = BuiltinCa::LoadFromDir(dir);
  REQUIRE(loaded.ok());
  CHECK(loaded->root_pem() == created->root_pem());
  auto missing = BuiltinCa::LoadFromDir(dir / "nope");
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);
  CHECK(std::string(missing.status().message()).find("ambitctl ca init") != std::string::npos);

  auto bundle = loaded->Issue(Id("spiffe://td/ns/a/sa/b"), std::chrono::hours(1));
  REQUIRE(bundle.ok());
  const fs::path out = dir / "workload";
  REQUIRE(WriteBundleToDir(*bundle, out).ok());
  CHECK(FileMode(out / "key.pem") == 0600);
  auto back = ReadBundleFromDir(out);
  REQUIRE(back.ok());
  CHECK(back->leaf_pem == bundle->leaf_pem);
  CHECK(back->serial_hex == bundle->serial_hex);
  CHECK(back->root_pem == created->root_pem());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ambit::identity
