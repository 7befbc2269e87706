// `ambitctl waypoint generate|apply [--for service|workload|all|none] [-n NS] [NAME]`: the
// manifests of one Ambit waypoint, like `istioctl waypoint` (tools/ambitctl/README.md).
//   generate            prints them (kubectl apply -f - takes them as they are)
//   apply --out FILE    writes them to FILE
//   apply --config FILE puts the Gateway into a standalone config file (replacing the one
//                       of the same name and namespace); checked with the config loader
//                       first and replaced atomically, since agents watch the file
//   apply               pipes them to `kubectl apply -f -` ($KUBECTL, default kubectl)
#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/config/loader.h"
#include "tools/ambitctl/commands.h"
#include "tools/ambitctl/waypoint_manifests.h"

namespace ambit::ctl {
namespace {

struct WaypointArgs {
  WaypointSpec spec;
  std::string name_flag;
  std::string out_file;
  std::string config_file;
};

int Fail(const std::string& msg) {
  std::fprintf(stderr, "ambitctl waypoint: %s\n", msg.c_str());
  return 1;
}

Status Prepare(WaypointArgs& a) {
  if (!a.name_flag.empty()) a.spec.name = a.name_flag;
  return ValidateWaypointSpec(a.spec);
}

StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status WriteAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".ambitctl.tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return absl::InternalError("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::InternalError("cannot replace " + path);
  }
  return absl::OkStatus();
}

bool IsDocumentStart(const std::string& line) {
  return line == "---" || line.rfind("--- ", 0) == 0 || line == "---\r";
}

// Whether document `doc` is the Gateway API Gateway `name` in namespace `ns`.
bool IsThisGateway(const std::string& doc, const WaypointSpec& s) {
  try {
    YAML::Node n = YAML::Load(doc);
    if (!n.IsMap() || !n["kind"] || n["kind"].as<std::string>() != "Gateway") return false;
    const std::string api = n["apiVersion"] ? n["apiVersion"].as<std::string>() : "";
    if (api.rfind("gateway.networking.k8s.io/", 0) != 0) return false;
    YAML::Node meta = n["metadata"];
    if (!meta || !meta.IsMap() || !meta["name"]) return false;
    const std::string ns = meta["namespace"] ? meta["namespace"].as<std::string>() : "default";
    return meta["name"].as<std::string>() == s.name && ns == s.ns;
  } catch (const YAML::Exception&) {
    return false;  // not ours to judge: the loader check below reports bad documents
  }
}

// The config text with the Gateway document replaced, or appended when absent.
std::string UpsertGateway(const std::string& text, const WaypointSpec& s, bool* replaced) {
  std::vector<std::string> docs(1);
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (IsDocumentStart(line)) docs.emplace_back();
    docs.back() += line + "\n";
  }
  const std::string gateway = WaypointGatewayYaml(s);
  std::string out;
  *replaced = false;
  for (const std::string& d : docs) {
    std::string body = d;
    if (body.rfind("---", 0) == 0) body = body.substr(body.find('\n') + 1);
    if (!*replaced && IsThisGateway(body, s)) {
      out += (&d == &docs.front() ? "" : "---\n") + gateway;
      *replaced = true;
    } else {
      out += d;
    }
  }
  if (!*replaced) {
    if (!out.empty() && out.back() != '\n') out += "\n";
    out += "---\n" + gateway;
  }
  return out;
}

int RunGenerate(WaypointArgs& a) {
  if (Status st = Prepare(a); !st.ok()) return Fail(std::string(st.message()));
  std::fputs(WaypointManifestsYaml(a.spec).c_str(), stdout);
  return 0;
}

int ApplyToConfig(const WaypointArgs& a) {
  auto text = ReadFile(a.config_file);
  if (!text.ok()) return Fail(std::string(text.status().message()));
  bool replaced = false;
  const std::string updated = UpsertGateway(*text, a.spec, &replaced);
  if (auto cfg = config::ParseLocalConfig(updated, a.config_file); !cfg.ok()) {
    return Fail(fmt::format("{} would not load after the change, left unchanged: {}",
                            a.config_file, std::string(cfg.status().message())));
  }
  if (Status st = WriteAtomically(a.config_file, updated); !st.ok()) {
    return Fail(std::string(st.message()));
  }
  std::printf("waypoint %s/%s %s in %s\n", a.spec.ns.c_str(), a.spec.name.c_str(),
              replaced ? "updated" : "added", a.config_file.c_str());
  return 0;
}

int ApplyWithKubectl(const WaypointArgs& a) {
  const char* kubectl = std::getenv("KUBECTL");
  const std::string cmd = std::string(kubectl && *kubectl ? kubectl : "kubectl") + " apply -f -";
  FILE* pipe = popen(cmd.c_str(), "w");
  if (pipe == nullptr) return Fail("cannot run '" + cmd + "'");
  const std::string yaml = WaypointManifestsYaml(a.spec);
  const bool written = std::fwrite(yaml.data(), 1, yaml.size(), pipe) == yaml.size();
  const int status = pclose(pipe);
  if (!written || status != 0) {
    return Fail(fmt::format("'{}' failed (status {}); `ambitctl waypoint generate` prints the "
                            "manifests, `apply --out FILE` writes them",
                            cmd, status));
  }
  return 0;
}

int RunApply(WaypointArgs& a) {
  if (Status st = Prepare(a); !st.ok()) return Fail(std::string(st.message()));
  if (!a.out_file.empty() && !a.config_file.empty()) {
    return Fail("--out and --config exclude each other");
  }
  if (!a.config_file.empty()) return ApplyToConfig(a);
  if (!a.out_file.empty()) {
    if (Status st = WriteAtomically(a.out_file, WaypointManifestsYaml(a.spec)); !st.ok()) {
      return Fail(std::string(st.message()));
    }
    std::printf("waypoint %s/%s manifests written to %s\n", a.spec.ns.c_str(),
                a.spec.name.c_str(), a.out_file.c_str());
    return 0;
  }
  return ApplyWithKubectl(a);
}

void AddCommonOptions(CLI::App* cmd, WaypointArgs* a) {
  cmd->add_option("name", a->spec.name, "the waypoint (Gateway) name")->capture_default_str();
  cmd->add_option("--name", a->name_flag, "the waypoint name (instead of the positional NAME)");
  cmd->add_option("-n,--namespace", a->spec.ns, "namespace")->capture_default_str();
  cmd->add_option("--for", a->spec.waypoint_for,
                  "traffic it serves (istio.io/waypoint-for): service|workload|all|none")
      ->capture_default_str();
  cmd->add_option("--class", a->spec.class_name, "gatewayClassName: ambit-waypoint|istio-waypoint")
      ->capture_default_str();
  cmd->add_option("-r,--revision", a->spec.revision, "control plane revision (istiod-<rev>)");
  cmd->add_option("--image", a->spec.image, "container image")->capture_default_str();
  cmd->add_option("--istio-namespace", a->spec.istio_namespace, "istiod's namespace")
      ->capture_default_str();
}

}  // namespace

void RegisterWaypointCommands(CLI::App& app) {
  auto* wp = app.add_subcommand("waypoint", "manifests of an Ambit waypoint (like istioctl waypoint)");
  wp->require_subcommand(1);
  auto gen = std::make_shared<WaypointArgs>();
  auto* generate = wp->add_subcommand(
      "generate", "print the waypoint's Gateway, Deployment, Service, ServiceAccount and RBAC");
  AddCommonOptions(generate, gen.get());
  generate->callback([gen] { SetExitCode(RunGenerate(*gen)); });

  auto app_args = std::make_shared<WaypointArgs>();
  auto* apply = wp->add_subcommand(
      "apply", "kubectl apply the manifests, or write them (--out) or the Gateway into a "
               "standalone config (--config)");
  AddCommonOptions(apply, app_args.get());
  apply->add_option("--out", app_args->out_file, "write the manifests to this file");
  apply->add_option("--config", app_args->config_file,
                    "standalone config file: add or replace the waypoint's Gateway");
  apply->callback([app_args] { SetExitCode(RunApply(*app_args)); });
}

}  // namespace ambit::ctl
