// Golden tests of `ambitctl workloads|services|policies|certificates|
// connections|all|log`: the binary runs against a test HttpServer serving
// tests/golden/config_dump.json. UPDATE_GOLDEN=1 rewrites the goldens.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "common/admin/handlers.h"
#include "tests/unit/admin/admin_test_util.h"
#include "tests/unit/ambitctl/schema_check.h"

using namespace ambit;
using namespace ambit::admin;
using namespace ambit::admin::testing;

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  REQUIRE_MESSAGE(v != nullptr, name << " must be set (run through meson test)");
  return v;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

Result Ambitctl(const std::string& args) {
  const std::string err_path = "/tmp/ambitctl-test-" + std::to_string(::getpid()) + ".err";
  const std::string cmd = Env("AMBITCTL") + " " + args + " 2>" + err_path;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  Result r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = ReadFile(err_path);
  std::remove(err_path.c_str());
  return r;
}

void CheckGolden(const std::string& name, const std::string& got) {
  const std::string path = Env("GOLDEN_DIR") + "/ambitctl/" + name;
  if (std::getenv("UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path, std::ios::binary) << got;
  }
  const std::string want = ReadFile(path);
  CHECK_MESSAGE(got == want, "golden " << path << " differs; got:\n" << got);
}

}  // namespace

TEST_CASE("every view in table, json and yaml matches its golden file") {
  const std::string dump = ReadFile(Env("GOLDEN_DIR") + "/config_dump.json");
  REQUIRE(!dump.empty());
  ServerThread st(io::BackendKind::kAuto,
                  [&](HttpServer& s) { AddConfigDumpHandler(s, [&] { return dump; }); });
  const std::string admin = " --admin http://127.0.0.1:" + std::to_string(st.port());
  for (const char* view :
       {"workloads", "services", "policies", "certificates", "connections", "all"}) {
    for (const char* fmt : {"table", "json", "yaml"}) {
      CAPTURE(view);
      CAPTURE(fmt);
      Result r = Ambitctl(std::string(view) + admin + " -o " + fmt);
      CHECK(r.code == 0);
      CHECK(r.err.empty());
      CheckGolden(std::string(view) + "." + fmt, r.out);
    }
  }
}

TEST_CASE("filters: --namespace, --address, --direction") {
  const std::string dump = ReadFile(Env("GOLDEN_DIR") + "/config_dump.json");
  ServerThread st(io::BackendKind::kAuto,
                  [&](HttpServer& s) { AddConfigDumpHandler(s, [&] { return dump; }); });
  const std::string admin = " --admin http://127.0.0.1:" + std::to_string(st.port());
  struct Case {
    const char* args;
    const char* golden;
  } cases[] = {
      {"workloads --namespace shop", "workloads-ns-shop.table"},
      {"workloads --address 10.244.2.8", "workloads-address.table"},
      {"services --address 10.96.33.7", "services-address.table"},
      {"connections --direction outbound", "connections-outbound.table"},
      {"connections --address 10.244.2.8 -o json", "connections-address.json"},
      {"certificates --namespace shop", "certificates-ns-shop.table"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.args);
    Result r = Ambitctl(std::string(c.args) + admin);
    CHECK(r.code == 0);
    CheckGolden(c.golden, r.out);
  }
  Result bad = Ambitctl("connections --direction sideways" + admin);
  CHECK(bad.code != 0);
  CHECK(bad.err.find("--direction") != std::string::npos);
}

TEST_CASE("dns: the on-demand DNS cache of hostname-only workloads; absent from 'all' without it") {
  using nlohmann::json;
  json dump = json::parse(ReadFile(Env("GOLDEN_DIR") + "/config_dump.json"));
  dump["ambit"]["onDemandDns"] = {
      {"cache",
       {{{"hostname", "ext.example.test"},
         {"addresses", {"192.0.2.10", "2001:db8::10"}},
         {"expiresInSeconds", 1.93}},
        {{"hostname", "nope.example.test"},
         {"addresses", json::array()},
         {"expiresInSeconds", 4.5},
         {"negative", "nxdomain"}}}},
      {"capacity", 4096}, {"hits", 3}, {"misses", 2}, {"queries", 4}, {"failures", 1}};
  const std::string text = dump.dump();
  ServerThread st(io::BackendKind::kAuto,
                  [&](HttpServer& s) { AddConfigDumpHandler(s, [&] { return text; }); });
  const std::string admin = " --admin http://127.0.0.1:" + std::to_string(st.port());
  Result r = Ambitctl("dns" + admin);
  CHECK(r.code == 0);
  CHECK(r.out ==
        "HOSTNAME          ADDRESSES               EXPIRES IN ANSWER\n"
        "ext.example.test  192.0.2.10,2001:db8::10 1.9s       addresses\n"
        "nope.example.test -                       4.5s       nxdomain\n");
  Result j = Ambitctl("dns -o json" + admin);
  CHECK(json::parse(j.out)["hits"] == 3);
  Result all = Ambitctl("all" + admin);
  CHECK(all.out.find("HOSTNAME") != std::string::npos);

  const std::string plain = ReadFile(Env("GOLDEN_DIR") + "/config_dump.json");
  ServerThread old(io::BackendKind::kAuto,
                   [&](HttpServer& s) { AddConfigDumpHandler(s, [&] { return plain; }); });
  Result none = Ambitctl("all --admin http://127.0.0.1:" + std::to_string(old.port()));
  CHECK(none.out.find("HOSTNAME") == std::string::npos);
}

TEST_CASE("log: list, set, bad level") {
  base::Logger logger;
  ServerThread st(io::BackendKind::kAuto, [&](HttpServer& s) { AddLoggingHandler(s, logger); });
  const std::string admin = " --admin http://127.0.0.1:" + std::to_string(st.port());
  Result list = Ambitctl("log" + admin);
  CHECK(list.code == 0);
  CHECK(list.out == "current log level is " + logger.DescribeLevels() + "\n");
  Result set = Ambitctl("log --level access:debug,hbone:trace" + admin);
  CHECK(set.code == 0);
  CHECK(logger.Enabled(base::LogLevel::kTrace, "hbone"));
  CHECK(set.out.find("hbone=trace") != std::string::npos);
  Result bad = Ambitctl("log --level loud" + admin);
  CHECK(bad.code == 1);
  CHECK(bad.err.find("answered 400 to POST /logging?level=loud: invalid level 'loud'") !=
        std::string::npos);
  Result reset = Ambitctl("log --reset" + admin);
  CHECK(reset.code == 0);
  CHECK_FALSE(logger.Enabled(base::LogLevel::kTrace, "hbone"));
}

TEST_CASE("unreachable agent: exit code 1 and a clear message") {
  // A port that was bound and released: nothing listens there.
  uint16_t port = 0;
  {
    ServerThread st(io::BackendKind::kAuto, [](HttpServer&) {});
    port = st.port();
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  Result r = Ambitctl("workloads --admin " + url);
  CHECK(r.code == 1);
  CHECK(r.out.empty());
  CHECK(r.err == "ambitctl: cannot reach the agent admin API at " + url +
                     ": connection refused — is ambit-agent running, and are you in its "
                     "network namespace?\n");
}

TEST_CASE("the sample dump conforms to config_dump.schema.json; violations are caught") {
  using nlohmann::json;
  const json schema = json::parse(ReadFile(Env("GOLDEN_DIR") + "/config_dump.schema.json"));
  const json dump = json::parse(ReadFile(Env("GOLDEN_DIR") + "/config_dump.json"));
  ambit::testing::SchemaCheck check(schema);
  CHECK(check.Check(dump, schema) == "");

  json no_uid = dump;
  no_uid["workloads"][1].erase("uid");
  CHECK(check.Check(no_uid, schema) == "/workloads/1: missing required \"uid\"");

  json bad_state = dump;
  bad_state["certificates"][0]["state"] = "Ready";
  CHECK(check.Check(bad_state, schema).starts_with("/certificates/0/state: \"Ready\" not in"));

  json bad_port = dump;
  bad_port["services"][0]["ports"]["http"] = 80;
  CHECK(check.Check(bad_port, schema).starts_with("/services/0/ports/http: 'http' does not"));

  json no_section = dump;
  no_section.erase("workloadState");
  CHECK(check.Check(no_section, schema) == ": missing required \"workloadState\"");
}
