// `ambitctl ca init DIR` and `ambitctl ca issue --ca DIR --identity ID --out DIR [--ttl 24h]`:
// the built-in CA for standalone runs, demos and tests.
#include <charconv>
#include <chrono>
#include <cstdio>
#include <string>

#include "common/identity/builtin_ca.h"
#include "common/identity/cert_files.h"
#include "tools/ambitctl/commands.h"

namespace ambit::ctl {
namespace {

struct CaArgs {
  std::string init_dir;
  std::string ca_dir;
  std::string identity;
  std::string out_dir;
  std::string ttl = "24h";
};

// "90s", "30m", "24h", "7d" (a bare number means seconds).
StatusOr<std::chrono::seconds> ParseTtl(const std::string& text) {
  long long n = 0;  // NOLINT(runtime/int)
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, n);
  const std::string unit(ptr, end);
  long long mult = 0;  // NOLINT(runtime/int)
  if (unit.empty() || unit == "s") mult = 1;
  if (unit == "m") mult = 60;
  if (unit == "h") mult = 3600;
  if (unit == "d") mult = 86400;
  if (ec != std::errc() || n <= 0 || mult == 0 || n > 100LL * 365 * 86400 / mult) {
    return absl::InvalidArgumentError("--ttl '" + text +
                                      "' is not a positive duration like 90s, 30m, 24h or 7d");
  }
  return std::chrono::seconds(n * mult);
}

int Fail(const Status& st) {
  std::fprintf(stderr, "ambitctl ca: %s\n", std::string(st.message()).c_str());
  return 1;
}

int RunInit(const CaArgs& a) {
  auto ca = identity::BuiltinCa::CreateInDir(a.init_dir);
  if (!ca.ok()) return Fail(ca.status());
  std::printf("created CA in %s (ca.crt, ca.key)\n", a.init_dir.c_str());
  return 0;
}

int RunIssue(const CaArgs& a) {
  auto id = identity::Identity::Parse(a.identity);
  if (!id.ok()) return Fail(id.status());
  auto ttl = ParseTtl(a.ttl);
  if (!ttl.ok()) return Fail(ttl.status());
  auto ca = identity::BuiltinCa::LoadFromDir(a.ca_dir);
  if (!ca.ok()) return Fail(ca.status());
  auto bundle = ca->Issue(*id, *ttl);
  if (!bundle.ok()) return Fail(bundle.status());
  if (Status st = identity::WriteBundleToDir(*bundle, a.out_dir); !st.ok()) return Fail(st);
  std::printf("issued %s (serial %s) into %s (key.pem, cert-chain.pem, root-cert.pem)\n",
              id->ToString().c_str(), bundle->serial_hex.c_str(), a.out_dir.c_str());
  return 0;
}

}  // namespace

void RegisterCaCommands(CLI::App& app) {
  auto args = std::make_shared<CaArgs>();
  auto* ca = app.add_subcommand("ca", "built-in certificate authority");
  ca->require_subcommand(1);

  auto* init = ca->add_subcommand("init", "create a root CA (ca.crt, ca.key 0600) in DIR");
  init->add_option("dir", args->init_dir, "directory for the CA")->required();
  init->callback([args] { SetExitCode(RunInit(*args)); });

  auto* issue = ca->add_subcommand(
      "issue", "issue a workload certificate (key.pem, cert-chain.pem, root-cert.pem)");
  issue->add_option("--ca", args->ca_dir, "CA directory made by `ca init`")->required();
  issue
      ->add_option("--identity", args->identity,
                   "spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>")
      ->required();
  issue->add_option("--out", args->out_dir, "output directory")->required();
  issue->add_option("--ttl", args->ttl, "certificate lifetime (90s, 30m, 24h, 7d)")
      ->capture_default_str();
  issue->callback([args] { SetExitCode(RunIssue(*args)); });
}

}  // namespace ambit::ctl
