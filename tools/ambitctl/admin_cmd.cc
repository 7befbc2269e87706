// `ambitctl workloads|services|policies|certificates|connections|all` render
// the agent's GET /config_dump like `istioctl ztunnel-config` (same columns),
// as a table, JSON or YAML; `ambitctl log [--level SPEC | --reset]` lists or
// sets log levels through POST /logging.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <functional>
#include <cctype>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/admin/client.h"
#include "tools/ambitctl/commands.h"

namespace ambit::ctl {
namespace {

using nlohmann::json;
using Row = std::vector<std::string>;

struct AdminArgs {
  std::string admin = "http://127.0.0.1:15000";
  std::string output = "table";
  std::string ns;
  std::string address;
  std::string direction;
  std::string level;
  bool reset = false;
};

struct View {
  Row header;
  std::vector<Row> rows;
  json data;  // the filtered section, for -o json|yaml
};

// ---- fetching ------------------------------------------------------------

int Fail(const std::string& message) {
  std::fprintf(stderr, "ambitctl: %s\n", message.c_str());
  return 1;
}

// Calls the admin API; on failure prints an operator-facing error and returns nullopt.
std::optional<admin::ClientResponse> Call(const AdminArgs& a, const std::string& method,
                                          const std::string& target) {
  auto url = admin::ParseHttpUrl(a.admin);
  if (!url.ok()) {
    Fail("--admin: " + std::string(url.status().message()));
    return std::nullopt;
  }
  admin::ClientRequest req;
  req.method = method;
  req.target = target;
  auto resp = admin::Fetch(*url, req);
  if (!resp.ok()) {
    std::string why(resp.status().message());
    if (size_t p = why.rfind(": "); absl::IsUnavailable(resp.status()) && p != std::string::npos) {
      why = why.substr(p + 2);  // "connect 127.0.0.1:15000: connection refused" -> the reason
    }
    Fail("cannot reach the agent admin API at " + url->ToString() + ": " + why +
         " — is ambit-agent running, and are you in its network namespace?");
    return std::nullopt;
  }
  if (resp->status != 200) {
    Fail("the agent admin API answered " + std::to_string(resp->status) + " to " + method + " " +
         target + ": " + resp->body);
    return std::nullopt;
  }
  return std::move(*resp);
}

// ---- json helpers (the dump is untrusted input: never throw on its shape) --

std::string Str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

const json& Field(const json& j, const char* key) {
  static const json null;
  if (!j.is_object()) return null;
  auto it = j.find(key);
  return it != j.end() ? *it : null;
}

const json& Arr(const json& j, const char* key) {
  static const json empty = json::array();
  if (!j.is_object()) return empty;
  auto it = j.find(key);
  return it != j.end() && it->is_array() ? *it : empty;
}

const json& Obj(const json& j, const char* key) {
  static const json empty = json::object();
  if (!j.is_object()) return empty;
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : empty;
}

// "network/10.96.0.1" -> "10.96.0.1".
std::string StripNetwork(const std::string& s) {
  size_t slash = s.find('/');
  return slash == std::string::npos ? s : s.substr(slash + 1);
}

std::string JoinStrings(const json& arr, bool strip = false) {
  std::string out;
  for (const auto& v : arr) {
    if (!v.is_string()) continue;
    if (!out.empty()) out += ",";
    out += strip ? StripNetwork(v.get<std::string>()) : v.get<std::string>();
  }
  return out;
}

// GatewayAddress {destination: "ns/hostname" | "network/ip"} -> hostname or
// ip; absent -> None.
std::string Waypoint(const json& w) {
  if (std::string d = Str(w, "destination"); !d.empty()) return StripNetwork(d);
  return "None";
}

std::string Host(const std::string& addr) {  // "10.0.0.1:80" / "[::1]:80" -> ip
  if (!addr.empty() && addr[0] == '[') return addr.substr(1, addr.find(']') - 1);
  return addr.substr(0, addr.rfind(':'));
}

bool NsMatch(const AdminArgs& a, const std::string& ns) { return a.ns.empty() || a.ns == ns; }

// RFC 3339 "2025-01-10T08:00:00Z" -> seconds since the epoch; -1 if unparsable.
long long ParseTime(const std::string& s) {  // NOLINT(runtime/int)
  std::tm tm{};
  const char* end = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) return -1;
  return static_cast<long long>(::timegm(&tm));  // NOLINT(runtime/int)
}

// ---- views ---------------------------------------------------------------

View Workloads(const json& dump, const AdminArgs& a) {
  View v{{"NAMESPACE", "POD NAME", "ADDRESS", "NODE", "WAYPOINT", "PROTOCOL"}, {},
         json::array()};
  std::vector<const json*> items;
  for (const auto& w : Arr(dump, "workloads")) {
    if (!NsMatch(a, Str(w, "namespace"))) continue;
    const json& ips = Arr(w, "workloadIps");
    if (!a.address.empty() &&
        std::none_of(ips.begin(), ips.end(), [&](const json& ip) { return ip == a.address; })) {
      continue;
    }
    items.push_back(&w);
  }
  std::stable_sort(items.begin(), items.end(), [](const json* x, const json* y) {
    return std::pair(Str(*x, "namespace"), Str(*x, "name")) <
           std::pair(Str(*y, "namespace"), Str(*y, "name"));
  });
  for (const json* w : items) {
    v.rows.push_back({Str(*w, "namespace"), Str(*w, "name"), JoinStrings(Arr(*w, "workloadIps")),
                      Str(*w, "node"), Waypoint(Field(*w, "waypoint")),
                      Str(*w, "protocol")});
    v.data.push_back(*w);
  }
  return v;
}

View Services(const json& dump, const AdminArgs& a) {
  View v{{"NAMESPACE", "SERVICE NAME", "SERVICE VIP", "WAYPOINT", "ENDPOINTS"}, {},
         json::array()};
  for (const auto& s : Arr(dump, "services")) {
    if (!NsMatch(a, Str(s, "namespace"))) continue;
    const json& vips = Arr(s, "vips");
    if (!a.address.empty() && std::none_of(vips.begin(), vips.end(), [&](const json& vip) {
          return vip.is_string() && StripNetwork(vip.get<std::string>()) == a.address;
        })) {
      continue;
    }
    size_t healthy = 0, total = 0;
    for (const auto& [uid, ep] : Obj(s, "endpoints").items()) {
      ++total;
      if (Str(ep, "status") == "Healthy") ++healthy;
    }
    v.rows.push_back({Str(s, "namespace"), Str(s, "name"), JoinStrings(vips, true),
                      Waypoint(Field(s, "waypoint")),
                      std::to_string(healthy) + "/" + std::to_string(total)});
    v.data.push_back(s);
  }
  return v;
}

View Policies(const json& dump, const AdminArgs& a) {
  View v{{"NAMESPACE", "POLICY NAME", "ACTION", "SCOPE"}, {}, json::array()};
  for (const auto& p : Arr(dump, "policies")) {
    if (!NsMatch(a, Str(p, "namespace"))) continue;
    std::string action = Str(p, "action");
    if (Field(p, "dryRun") == true) action += " (dry-run)";
    v.rows.push_back({Str(p, "namespace"), Str(p, "name"), action, Str(p, "scope")});
    v.data.push_back(p);
  }
  return v;
}

void CertRows(const std::string& id, const std::string& state, const json& certs,
              const char* first_type, const char* rest_type, std::vector<Row>* rows) {
  const long long now = static_cast<long long>(std::time(nullptr));  // NOLINT(runtime/int)
  bool first = true;
  for (const auto& c : certs) {
    const std::string from = Str(c, "validFrom"), to = Str(c, "expirationTime");
    const long long f = ParseTime(from), t = ParseTime(to);  // NOLINT(runtime/int)
    const bool valid = f >= 0 && t >= 0 && f <= now && now < t;
    rows->push_back({id, first ? first_type : rest_type, state, valid ? "true" : "false",
                     Str(c, "serialNumber"), to, from});
    first = false;
  }
}

View Certificates(const json& dump, const AdminArgs& a) {
  View v{{"CERTIFICATE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER",
          "NOT BEFORE"},
         {},
         json::array()};
  for (const auto& c : Arr(dump, "certificates")) {
    const std::string id = Str(c, "identity");
    if (!a.ns.empty() && id.find("/ns/" + a.ns + "/") == std::string::npos) continue;
    const std::string state = Str(c, "state");
    const json& chain = Arr(c, "certChain");
    if (chain.empty()) v.rows.push_back({id, "-", state, "false", "-", "-", "-"});
    CertRows(id, state, chain, "Leaf", "Intermediate", &v.rows);
    CertRows(id, state, Arr(c, "rootCerts"), "Root", "Root", &v.rows);
    v.data.push_back(c);
  }
  return v;
}

bool ConnMatch(const AdminArgs& a, const json& c) {
  if (a.address.empty()) return true;
  return Host(Str(c, "src")) == a.address || Host(Str(c, "originalDst")) == a.address ||
         Host(Str(c, "actualDst")) == a.address;
}

View Connections(const json& dump, const AdminArgs& a) {
  View v{{"NAMESPACE", "POD NAME", "DIRECTION", "SRC", "DST", "ACTUAL DST", "PROTOCOL"}, {},
         json::object()};
  for (const auto& [uid, st] : Obj(dump, "workloadState").items()) {
    const json& info = Obj(st, "info");
    if (!NsMatch(a, Str(info, "namespace"))) continue;
    json kept = st;
    kept["connections"] = {{"inbound", json::array()}, {"outbound", json::array()}};
    for (const char* dir : {"inbound", "outbound"}) {
      if (!a.direction.empty() && a.direction != dir) continue;
      for (const auto& c : Arr(Obj(st, "connections"), dir)) {
        if (!ConnMatch(a, c)) continue;
        v.rows.push_back({Str(info, "namespace"), Str(info, "name"), dir, Str(c, "src"),
                          Str(c, "originalDst"), Str(c, "actualDst"), Str(c, "protocol")});
        kept["connections"][dir].push_back(c);
      }
    }
    const bool filtered = !a.address.empty() || !a.direction.empty();
    const json& kc = kept["connections"];
    if (filtered && kc["inbound"].empty() && kc["outbound"].empty()) continue;
    v.data[uid] = std::move(kept);
  }
  return v;
}

// ---- output --------------------------------------------------------------

std::string Table(const View& v) {
  std::vector<size_t> width(v.header.size(), 0);
  auto measure = [&](const Row& r) {
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], r[i].size());
    }
  };
  measure(v.header);
  for (const auto& r : v.rows) measure(r);
  std::string out;
  auto line = [&](const Row& r) {
    std::string l;
    for (size_t i = 0; i < r.size(); ++i) {
      l += r[i];
      if (i + 1 < r.size()) l += std::string(width[i] - r[i].size() + 1, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  };
  line(v.header);
  for (const auto& r : v.rows) line(r);
  return out;
}

YAML::Node ToYaml(const json& j) {
  YAML::Node n;
  if (j.is_object()) {
    n = YAML::Node(YAML::NodeType::Map);
    for (const auto& [k, v] : j.items()) n[k] = ToYaml(v);
    if (j.empty()) n.SetStyle(YAML::EmitterStyle::Flow);
  } else if (j.is_array()) {
    n = YAML::Node(YAML::NodeType::Sequence);
    for (const auto& v : j) n.push_back(ToYaml(v));
    if (j.empty()) n.SetStyle(YAML::EmitterStyle::Flow);
  } else if (j.is_string()) {
    n = j.get<std::string>();
  } else if (j.is_null()) {
    n = YAML::Node(YAML::NodeType::Null);
  } else {
    n = j.dump();  // numbers and booleans in their JSON spelling
  }
  return n;
}

std::string Render(const json& data, const std::string& output) {
  if (output == "json") return data.dump(2) + "\n";
  YAML::Emitter e;
  e << ToYaml(data);
  return std::string(e.c_str()) + "\n";
}

// The waypoint's route tables (its /config_dump "routes"): one row per route.
View Routes(const json& dump, const AdminArgs& a) {
  View v{{"LISTENER", "KIND", "ROUTE", "MATCH", "ACTION"}, {}, json::array()};
  for (const auto& t : Arr(dump, "routes")) {
    const std::string svc = Str(t, "service");
    if (!NsMatch(a, svc.substr(0, svc.find('/')))) continue;
    for (const auto& r : Arr(t, "routes")) {
      std::string action;
      if (r.contains("route")) {
        for (const auto& c : Arr(Field(r, "route"), "weightedClusters")) {
          if (!action.empty()) action += ", ";
          action += Str(c, "name") + " (" + Field(c, "weight").dump() + ")";
        }
      } else if (r.contains("redirect")) {
        action = "redirect " + Field(r, "redirect").dump();
      } else if (r.contains("directResponse")) {
        action = "direct response " + Field(Field(r, "directResponse"), "status").dump();
      }
      v.rows.push_back({Str(t, "name"), Str(t, "kind"), Str(r, "name"), Arr(r, "match").dump(),
                        action});
    }
    v.data.push_back(t);
  }
  return v;
}

// The agent's on-demand DNS cache of hostname-only workloads
// (/config_dump ambit.onDemandDns): one row per cached name.
View Dns(const json& dump, const AdminArgs&) {
  View v{{"HOSTNAME", "ADDRESSES", "EXPIRES IN", "ANSWER"}, {}, json::object()};
  const json& section = Obj(Obj(dump, "ambit"), "onDemandDns");
  for (const auto& e : Arr(section, "cache")) {
    std::string addrs;
    for (const auto& ip : Arr(e, "addresses")) {
      if (!addrs.empty()) addrs += ",";
      addrs += ip.is_string() ? ip.get<std::string>() : ip.dump();
    }
    const json& exp = Field(e, "expiresInSeconds");
    std::string expires = "-";
    if (exp.is_number()) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.1fs", exp.get<double>());
      expires = buf;
    }
    const std::string negative = Str(e, "negative");
    v.rows.push_back({Str(e, "hostname"), addrs.empty() ? "-" : addrs, expires,
                      negative.empty() ? "addresses" : negative});
  }
  v.data = section;
  return v;
}

using ViewFn = std::function<View(const json&, const AdminArgs&)>;

struct Section {
  const char* key;
  ViewFn fn;
};

const std::vector<Section>& Sections() {
  static const std::vector<Section> s = {{"workloads", Workloads},
                                         {"services", Services},
                                         {"policies", Policies},
                                         {"certificates", Certificates},
                                         {"workloadState", Connections},
                                         {"routes", Routes},
                                         {"dns", Dns}};
  return s;
}

std::optional<json> FetchDump(const AdminArgs& a) {
  auto resp = Call(a, "GET", "/config_dump");
  if (!resp) return std::nullopt;
  json dump = json::parse(resp->body, nullptr, /*allow_exceptions=*/false);
  if (dump.is_discarded() || !dump.is_object()) {
    Fail("the agent's /config_dump is not a JSON object (is --admin pointing at an ambit "
         "agent's admin port?)");
    return std::nullopt;
  }
  return dump;
}

int RunView(const AdminArgs& a, const std::string& key) {
  auto dump = FetchDump(a);
  if (!dump) return 1;
  std::string out;
  json combined = json::object();
  bool first = true;
  for (const Section& s : Sections()) {
    if (key != "all" && key != s.key) continue;
    // An agent has no route tables: "all" shows them only for a waypoint.
    if (key == "all" && std::string_view(s.key) == "routes" && !dump->contains("routes")) {
      continue;
    }
    // Nor a waypoint (or an older agent) an on-demand DNS cache.
    if (key == "all" && std::string_view(s.key) == "dns" &&
        !(dump->contains("ambit") && (*dump)["ambit"].contains("onDemandDns"))) {
      continue;
    }
    View v = s.fn(*dump, a);
    if (a.output == "table") {
      if (!first) out += "\n";
      out += Table(v);
      first = false;
    } else {
      combined[s.key] = std::move(v.data);
    }
  }
  if (a.output != "table") out = Render(key == "all" ? combined : combined[key], a.output);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int RunLog(const AdminArgs& a) {
  std::string target = "/logging";
  if (a.reset) {
    target += "?reset";
  } else if (!a.level.empty()) {
    std::string enc;
    for (char c : a.level) {
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.') {
        enc.push_back(c);
      } else {
        char buf[4];
        std::snprintf(buf, sizeof(buf), "%%%02X", static_cast<unsigned char>(c));
        enc += buf;
      }
    }
    target += "?level=" + enc;
  }
  auto resp = Call(a, "POST", target);
  if (!resp) return 1;
  std::fwrite(resp->body.data(), 1, resp->body.size(), stdout);
  return 0;
}

void AddCommon(CLI::App* cmd, const std::shared_ptr<AdminArgs>& args, bool output) {
  cmd->add_option("--admin", args->admin, "agent admin API URL")->capture_default_str();
  if (!output) return;
  cmd->add_option("-o,--output", args->output, "output format: table, json or yaml")
      ->capture_default_str()
      ->check(CLI::IsMember({"table", "json", "yaml"}));
  cmd->add_option("--namespace", args->ns, "only this namespace");
}

}  // namespace

void RegisterAdminCommands(CLI::App& app) {
  auto args = std::make_shared<AdminArgs>();
  struct Cmd {
    const char* name;
    const char* help;
  };
  const Cmd views[] = {
      {"workloads", "workloads known to the agent (like istioctl ztunnel-config workloads)"},
      {"services", "services and their endpoints"},
      {"policies", "authorization policies"},
      {"certificates", "workload certificates held by the agent"},
      {"connections", "open connections per pod (in-pod mode)"},
      {"routes", "a waypoint's route tables per service port (--admin of the waypoint)"},
      {"dns", "the agent's on-demand DNS cache of hostname-only workloads"},
      {"all", "every view above"}};
  for (const Cmd& c : views) {
    auto* cmd = app.add_subcommand(c.name, c.help);
    AddCommon(cmd, args, true);
    const std::string key = std::string(c.name) == "connections" ? "workloadState" : c.name;
    if (key == "workloads" || key == "services" || key == "workloadState" || key == "all") {
      cmd->add_option("--address", args->address, "only entries with this IP");
    }
    if (key == "workloadState" || key == "all") {
      cmd->add_option("--direction", args->direction, "inbound or outbound")
          ->check(CLI::IsMember({"inbound", "outbound"}));
    }
    cmd->callback([args, key] { SetExitCode(RunView(*args, key)); });
  }
  auto* log = app.add_subcommand("log", "list or set the agent's log levels (POST /logging)");
  AddCommon(log, args, false);
  log->add_option("--level", args->level, "e.g. info, or access:debug,hbone:trace");
  log->add_flag("--reset", args->reset, "reset every module to info");
  log->callback([args] { SetExitCode(RunLog(*args)); });
}

}  // namespace ambit::ctl
