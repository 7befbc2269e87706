// IstioCaClient and BuiltinCertSource against the in-process fake Istio CA.
#include <doctest/doctest.h>

#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <fstream>
#include <optional>

#include "common/identity/ca_client.h"
#include "common/identity/cert_source.h"
#include "common/identity/key_csr.h"
#include "common/identity/x509_util.h"
#include "common/io/test_loop.h"
#include "tests/support/fake_ca.h"
#include "tests/support/server_cert.h"

namespace ambit::identity {
namespace {

using namespace std::chrono_literals;
using testing::FakeIstioCa;

Identity Id(std::string_view sa, std::string_view ns = "default") {
  return *Identity::Make("cluster.local", ns, sa);
}

// Runs one fetch on `loop` and waits (real time, bounded) for its result.
StatusOr<CertBundle> FetchSync(io::Loop& loop, CertSource& src, const Identity& id) {
  std::optional<StatusOr<CertBundle>> out;
  src.Fetch(id, [&](StatusOr<CertBundle> r) { out.emplace(std::move(r)); });
  REQUIRE(loop.RunUntil([&] { return out.has_value(); }, 10s));
  return *std::move(out);
}

IstioCaOptions Opts(const FakeIstioCa& ca) {
  IstioCaOptions o;
  o.address = ca.address();
  o.insecure_for_test = true;
  o.auth_token = "literal-token";
  o.cluster_id = "Kubernetes";
  o.call_timeout = 5s;
  return o;
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/ambit-ca-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

void WriteFile(const std::filesystem::path& p, std::string_view s) {
  std::ofstream f(p, std::ios::trunc);
  f << s;
}

struct Fixture {
  io::TestLoop t{io::BackendKind::kEpoll};
  std::unique_ptr<FakeIstioCa> ca;
  Fixture(testing::FakeCaOptions o = {}) {
    auto started = FakeIstioCa::Start(std::move(o));
    REQUIRE(started.ok());
    ca = std::move(*started);
  }
  std::unique_ptr<IstioCaClient> Client(IstioCaOptions o) {
    auto c = IstioCaClient::Create(t.loop(), std::move(o));
    REQUIRE(c.ok());
    return std::move(*c);
  }
};

TEST_CASE("ca client: CSR has one extension, the URI SAN, on a P-256 key; headers sent") {
  Fixture f;
  IstioCaOptions o = Opts(*f.ca);
  o.cluster_id = "cluster-7";
  o.extra_headers = {{"X-Extra", "yes"}};
  o.cert_ttl = 3600s;
  auto client = f.Client(o);
  const Identity id = Id("reviews");
  StatusOr<CertBundle> b = FetchSync(f.t.loop(), *client, id);
  REQUIRE_MESSAGE(b.ok(), b.status().ToString());

  auto reqs = f.ca->requests();
  REQUIRE(reqs.size() == 1);
  const auto& r = reqs[0];
  CHECK(r.csr_extension_count == 1);
  REQUIRE(r.csr_uri_sans.size() == 1);
  CHECK(r.csr_uri_sans[0] == "spiffe://cluster.local/ns/default/sa/reviews");
  CHECK(r.csr_san_critical);
  CHECK(r.key_type == "EC");
  CHECK(r.curve == "prime256v1");
  CHECK(r.validity_duration == 3600);
  CHECK(r.metadata.empty());  // no impersonation unless asked
  CHECK(r.authorization == "Bearer literal-token");
  CHECK(r.clusterid == "cluster-7");
  auto extra = r.headers.find("x-extra");
  REQUIRE(extra != r.headers.end());
  CHECK(extra->second == "yes");

  // The bundle: leaf for the identity, our key, the fake's root, 1 h validity.
  auto loaded = LoadBundle(*b);
  REQUIRE(loaded.ok());
  CHECK(loaded->identity == id);
  CHECK(b->root_pem == f.ca->root_pem());
  CHECK(b->chain_pems.empty());
  CHECK(b->not_after - b->not_before == std::chrono::seconds(3600));
  CHECK(!b->serial_hex.empty());
}

TEST_CASE("ca client: token file is re-read on every call; literal when no such file") {
  Fixture f;
  TempDir dir;
  const auto token_path = dir.path / "istio-token";
  WriteFile(token_path, "token-one\n");
  IstioCaOptions o = Opts(*f.ca);
  o.auth_token = token_path.string();
  auto client = f.Client(o);
  REQUIRE(FetchSync(f.t.loop(), *client, Id("a")).ok());
  WriteFile(token_path, "token-two");
  REQUIRE(FetchSync(f.t.loop(), *client, Id("a")).ok());
  auto reqs = f.ca->requests();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[0].authorization == "Bearer token-one");
  CHECK(reqs[1].authorization == "Bearer token-two");

  // An empty token file is an error that names the file; no call is made.
  WriteFile(token_path, "\n");
  StatusOr<CertBundle> b = FetchSync(f.t.loop(), *client, Id("a"));
  REQUIRE(!b.ok());
  CHECK(b.status().code() == absl::StatusCode::kUnauthenticated);
  CHECK(std::string(b.status().message()).find(token_path.string()) != std::string::npos);
  CHECK(f.ca->calls() == 2);

  CHECK(*ResolveAuthToken("/nonexistent/ambit-token") == "/nonexistent/ambit-token");
  CHECK(*ResolveAuthToken("") == "");
}

TEST_CASE("ca client: impersonation metadata, accepted and refused") {
  testing::FakeCaOptions fo;
  fo.allowed_impersonation = std::set<std::string>{"spiffe://cluster.local/ns/shop/sa/cart"};
  Fixture f(fo);
  IstioCaOptions o = Opts(*f.ca);
  o.impersonate = true;
  auto client = f.Client(o);

  StatusOr<CertBundle> ok = FetchSync(f.t.loop(), *client, Id("cart", "shop"));
  REQUIRE_MESSAGE(ok.ok(), ok.status().ToString());
  auto reqs = f.ca->requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].metadata.size() == 1);
  CHECK(reqs[0].metadata.at("ImpersonatedIdentity") == "spiffe://cluster.local/ns/shop/sa/cart");

  StatusOr<CertBundle> refused = FetchSync(f.t.loop(), *client, Id("cart", "other"));
  REQUIRE(!refused.ok());
  CHECK(refused.status().code() == absl::StatusCode::kUnauthenticated);
  const std::string msg(refused.status().message());
  CHECK(msg.find("impersonation of spiffe://cluster.local/ns/other/sa/cart is not allowed") !=
        std::string::npos);
  CHECK(msg.find("CA_TRUSTED_NODE_ACCOUNTS") != std::string::npos);
}

TEST_CASE("ca client: a response for another identity is rejected") {
  Fixture f;
  f.ca->SetWrongIdentity("spiffe://cluster.local/ns/evil/sa/mallory");
  auto client = f.Client(Opts(*f.ca));
  StatusOr<CertBundle> b = FetchSync(f.t.loop(), *client, Id("reviews"));
  REQUIRE(!b.ok());
  CHECK(b.status().code() == absl::StatusCode::kPermissionDenied);
  const std::string msg(b.status().message());
  CHECK(msg.find("spiffe://cluster.local/ns/evil/sa/mallory") != std::string::npos);
  CHECK(msg.find("spiffe://cluster.local/ns/default/sa/reviews was requested") !=
        std::string::npos);
}

TEST_CASE("ca client: several roots in the last element become a multi-root bundle") {
  Fixture f;
  f.ca->AddExtraRoot();
  f.ca->AddExtraRoot();
  auto client = f.Client(Opts(*f.ca));
  StatusOr<CertBundle> b = FetchSync(f.t.loop(), *client, Id("reviews"));
  REQUIRE_MESSAGE(b.ok(), b.status().ToString());
  auto roots = SplitPemCerts(b->root_pem, "roots");
  REQUIRE(roots.ok());
  REQUIRE(roots->size() == 3);
  CHECK((*roots)[0] == f.ca->root_pem());
  CHECK((*roots)[1] != (*roots)[2]);
  auto loaded = LoadBundle(*b);
  REQUIRE(loaded.ok());
  CHECK(sk_X509_OBJECT_num(X509_STORE_get0_objects(loaded->roots.get())) == 3);
}

TEST_CASE("ca client: CA errors carry the gRPC code, the address and a hint") {
  Fixture f;
  f.ca->FailNext(1, grpc::StatusCode::UNAVAILABLE, "istiod is restarting");
  auto client = f.Client(Opts(*f.ca));
  StatusOr<CertBundle> b = FetchSync(f.t.loop(), *client, Id("reviews"));
  REQUIRE(!b.ok());
  CHECK(b.status().code() == absl::StatusCode::kUnavailable);
  const std::string msg(b.status().message());
  CHECK(msg.find("istiod is restarting") != std::string::npos);
  CHECK(msg.find(f.ca->address()) != std::string::npos);
  CHECK(msg.find("CA_ADDRESS") != std::string::npos);
  // The next call succeeds.
  CHECK(FetchSync(f.t.loop(), *client, Id("reviews")).ok());
}

TEST_CASE("ca client: bad responses and options are clear errors") {
  auto key = GenerateKeyAndCsr(Id("x"));
  REQUIRE(key.ok());
  auto one = BundleFromCaResponse({"leaf only"}, key->private_key_pem, Id("x"));
  CHECK(one.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(one.status().message()).find("1 cert_chain element") != std::string::npos);
  auto garbage = BundleFromCaResponse({"not pem", "not pem"}, key->private_key_pem, Id("x"));
  CHECK(!garbage.ok());

  io::TestLoop t(io::BackendKind::kEpoll);
  CHECK(IstioCaClient::Create(t.loop(), {}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  IstioCaOptions o;
  o.address = "127.0.0.1:1";
  o.root_ca = "/nonexistent/root-cert.pem";
  auto c = IstioCaClient::Create(t.loop(), o);
  REQUIRE(!c.ok());
  CHECK(std::string(c.status().message()).find("CA_ROOT_CA") != std::string::npos);
}

TEST_CASE("ca client: TLS to the CA with a root file; a wrong root is a clear error") {
  // The CA serves TLS with a certificate for 127.0.0.1 / istiod.istio-system.svc, signed by
  // `server_root`; the client trusts the root named by CA_ROOT_CA (a PEM file here).
  auto server_root = BuiltinCa::Generate();
  REQUIRE(server_root.ok());
  auto server = testing::IssueServerCert(*server_root, {"istiod.istio-system.svc"}, {"127.0.0.1"});
  REQUIRE_MESSAGE(server.ok(), server.status().ToString());
  testing::FakeCaOptions fo;
  fo.tls_cert_pem = server->cert_pem;
  fo.tls_key_pem = server->key_pem;
  Fixture f(fo);
  TempDir dir;
  const auto good_root = dir.path / "root-cert.pem";
  WriteFile(good_root, server_root->root_pem());
  auto other_root = BuiltinCa::Generate();
  REQUIRE(other_root.ok());
  const auto wrong_root = dir.path / "other-root.pem";
  WriteFile(wrong_root, other_root->root_pem());

  IstioCaOptions o = Opts(*f.ca);
  o.insecure_for_test = false;
  o.root_ca = good_root.string();

  SUBCASE("the right root: verified by IP SAN, the certificate is issued") {
    auto client = f.Client(o);
    StatusOr<CertBundle> b = FetchSync(f.t.loop(), *client, Id("reviews"));
    REQUIRE_MESSAGE(b.ok(), b.status().ToString());
    CHECK(LoadBundle(*b)->identity == Id("reviews"));
    CHECK(b->root_pem == f.ca->root_pem());  // the signing root, not the TLS server's
    REQUIRE(f.ca->requests().size() == 1);
    CHECK(f.ca->requests()[0].authorization == "Bearer literal-token");
  }
  SUBCASE("the right root and ALT_CA_HOSTNAME: verified by DNS SAN") {
    o.alt_hostname = "istiod.istio-system.svc";
    auto client = f.Client(o);
    StatusOr<CertBundle> b = FetchSync(f.t.loop(), *client, Id("reviews"));
    REQUIRE_MESSAGE(b.ok(), b.status().ToString());
    CHECK(f.ca->calls() == 1);
  }
  // The client waits for the channel to become ready (rides out an istiod restart), so a
  // handshake that never succeeds ends at the call deadline, with the hint that names the
  // setting to check.
  SUBCASE("a wrong root: DeadlineExceeded naming the address and CA_ROOT_CA; the CA never sees it") {
    o.root_ca = wrong_root.string();
    o.call_timeout = 1s;
    auto client = f.Client(o);
    StatusOr<CertBundle> b = FetchSync(f.t.loop(), *client, Id("reviews"));
    REQUIRE(!b.ok());
    MESSAGE("wrong root: ", b.status().ToString());
    CHECK(b.status().code() == absl::StatusCode::kDeadlineExceeded);
    const std::string msg(b.status().message());
    CHECK(msg.find("CreateCertificate for spiffe://cluster.local/ns/default/sa/reviews") !=
          std::string::npos);
    CHECK(msg.find(f.ca->address()) != std::string::npos);
    CHECK(msg.find("does CA_ROOT_CA trust its certificate?") != std::string::npos);
    CHECK(f.ca->calls() == 0);
  }
  SUBCASE("plaintext to a TLS CA fails too (insecure_for_test is not a fallback)") {
    o.insecure_for_test = true;
    o.call_timeout = 1s;
    auto client = f.Client(o);
    StatusOr<CertBundle> b = FetchSync(f.t.loop(), *client, Id("reviews"));
    REQUIRE(!b.ok());
    CHECK(b.status().code() == absl::StatusCode::kDeadlineExceeded);
    CHECK(f.ca->calls() == 0);
  }
}

TEST_CASE("ca client: destruction cancels calls in flight instead of waiting them out") {
  Fixture f;
  f.ca->Hold();
  IstioCaOptions o = Opts(*f.ca);
  o.call_timeout = 30s;
  auto client = f.Client(o);
  std::optional<StatusOr<CertBundle>> out;
  client->Fetch(Id("a"), [&](StatusOr<CertBundle> r) { out.emplace(std::move(r)); });
  REQUIRE(f.ca->WaitForInFlight(1));
  const auto start = std::chrono::steady_clock::now();
  client.reset();
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  REQUIRE(f.t.RunUntil([&] { return out.has_value(); }, 5s));
  REQUIRE(!out->ok());
  CHECK(out->status().code() == absl::StatusCode::kCancelled);
  f.ca->Release();
}

TEST_CASE("ca client: Task form and the built-in source") {
  Fixture f;
  auto client = f.Client(Opts(*f.ca));
  std::optional<StatusOr<CertBundle>> out;
  auto run = [](CertSource& s, Identity id,
                std::optional<StatusOr<CertBundle>>* o) -> io::Task<void> {
    o->emplace(co_await FetchCertificate(s, std::move(id)));
  };
  f.t.loop().Spawn(run(*client, Id("reviews"), &out));
  REQUIRE(f.t.RunUntil([&] { return out.has_value(); }, 10s));
  REQUIRE(out->ok());

  auto root = BuiltinCa::Generate();
  REQUIRE(root.ok());
  BuiltinCertSource builtin(f.t.loop(), *root, 600s);
  StatusOr<CertBundle> b = FetchSync(f.t.loop(), builtin, Id("local"));
  REQUIRE(b.ok());
  CHECK(b->not_after - b->not_before == std::chrono::seconds(660));  // 1 min backdate
  CHECK(LoadBundle(*b)->identity == Id("local"));
}

}  // namespace
}  // namespace ambit::identity
