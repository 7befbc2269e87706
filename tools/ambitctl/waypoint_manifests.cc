#include "tools/ambitctl/waypoint_manifests.h"

#include <fmt/format.h>

#include <string_view>

namespace ambit::ctl {
namespace {

// A YAML double-quoted scalar (JSON escapes are valid YAML).
std::string Q(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

bool IsDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

// metadata: name, namespace, the chart's labels (Helm's own replaced by managed-by ambitctl).
std::string Meta(const WaypointSpec& s, std::string_view extra_labels = "") {
  return fmt::format(
      "metadata:\n"
      "  name: {0}\n"
      "  namespace: {1}\n"
      "  labels:\n"
      "{2}"
      "    gateway.networking.k8s.io/gateway-name: {0}\n"
      "    app.kubernetes.io/name: {0}\n"
      "    app.kubernetes.io/managed-by: ambitctl\n"
      "    app.kubernetes.io/part-of: ambit\n"
      "    app.kubernetes.io/version: {3}\n",
      Q(s.name), Q(s.ns), extra_labels, Q(kWaypointChartVersion));
}

std::string Istiod(const WaypointSpec& s) {
  return fmt::format("istiod{}.{}.svc:15012", s.revision.empty() ? "" : "-" + s.revision,
                     s.istio_namespace);
}

std::string FieldEnv(std::string_view name, std::string_view path) {
  return fmt::format(
      "        - name: {}\n"
      "          valueFrom:\n"
      "            fieldRef:\n"
      "              fieldPath: {}\n",
      name, path);
}

std::string ValueEnv(std::string_view name, std::string_view value) {
  return fmt::format("        - name: {}\n          value: {}\n", name, Q(value));
}

std::string Deployment(const WaypointSpec& s) {
  std::string env = ValueEnv("CA_ADDRESS", Istiod(s)) + ValueEnv("XDS_ADDRESS", Istiod(s)) +
                    ValueEnv("GATEWAY_NAME", s.name) + FieldEnv("POD_NAME", "metadata.name") +
                    FieldEnv("POD_NAMESPACE", "metadata.namespace") +
                    FieldEnv("INSTANCE_IP", "status.podIP") + FieldEnv("HOST_IP", "status.hostIP") +
                    FieldEnv("SERVICE_ACCOUNT", "spec.serviceAccountName") +
                    FieldEnv("ISTIO_META_SERVICE_ACCOUNT", "spec.serviceAccountName") +
                    FieldEnv("ISTIO_META_NODE_NAME", "spec.nodeName") +
                    "        - name: ISTIO_CPU_LIMIT\n"
                    "          valueFrom:\n"
                    "            resourceFieldRef:\n"
                    "              resource: limits.cpu\n" +
                    ValueEnv("ISTIO_META_CLUSTER_ID", "Kubernetes") +
                    ValueEnv("ISTIO_META_WORKLOAD_NAME", s.name) +
                    ValueEnv("ISTIO_META_OWNER",
                             fmt::format("kubernetes://apis/apps/v1/namespaces/{}/deployments/{}",
                                         s.ns, s.name)) +
                    ValueEnv("RUST_LOG", "info");
  return fmt::format(
      "apiVersion: apps/v1\n"
      "kind: Deployment\n"
      "{meta}"
      "spec:\n"
      "  replicas: 1\n"
      "  selector:\n"
      "    matchLabels:\n"
      "      gateway.networking.k8s.io/gateway-name: {name}\n"
      "  template:\n"
      "    metadata:\n"
      "      labels:\n"
      "        sidecar.istio.io/inject: \"false\"\n"
      "        istio.io/dataplane-mode: none\n"
      "        service.istio.io/canonical-name: {name}\n"
      "        service.istio.io/canonical-revision: latest\n"
      "        gateway.networking.k8s.io/gateway-name: {name}\n"
      "        gateway.networking.k8s.io/gateway-class-name: {cls}\n"
      "      annotations:\n"
      "        istio.io/rev: {rev}\n"
      "        prometheus.io/path: /metrics\n"
      "        prometheus.io/port: \"15020\"\n"
      "        prometheus.io/scrape: \"true\"\n"
      "    spec:\n"
      "      serviceAccountName: {name}\n"
      "      terminationGracePeriodSeconds: 30\n"
      "      containers:\n"
      "      - name: istio-proxy\n"
      "        image: {image}\n"
      "        # No --config: cluster mode (istiod's workload xDS, the Istio CA, the Kubernetes API).\n"
      "        ports:\n"
      "        - {{containerPort: 15008, name: mesh, protocol: TCP}}\n"
      "        - {{containerPort: 15020, name: metrics, protocol: TCP}}\n"
      "        - {{containerPort: 15021, name: status-port, protocol: TCP}}\n"
      "        resources:\n"
      "          requests: {{cpu: 100m, memory: 128Mi}}\n"
      "        securityContext:\n"
      "          allowPrivilegeEscalation: false\n"
      "          privileged: false\n"
      "          capabilities: {{drop: [ALL]}}\n"
      "          readOnlyRootFilesystem: true\n"
      "          runAsGroup: 1337\n"
      "          runAsNonRoot: true\n"
      "          runAsUser: 1337\n"
      "        startupProbe:\n"
      "          httpGet: {{path: /healthz/ready, port: 15021}}\n"
      "          periodSeconds: 1\n"
      "          failureThreshold: 30\n"
      "          timeoutSeconds: 1\n"
      "        readinessProbe:\n"
      "          httpGet: {{path: /healthz/ready, port: 15021}}\n"
      "          periodSeconds: 15\n"
      "          failureThreshold: 4\n"
      "          timeoutSeconds: 1\n"
      "        env:\n"
      "{env}"
      "        volumeMounts:\n"
      "        - {{mountPath: /var/run/secrets/istio, name: istiod-ca-cert}}\n"
      "        - {{mountPath: /var/run/secrets/tokens, name: istio-token}}\n"
      "        - {{mountPath: /tmp, name: tmp}}\n"
      "      volumes:\n"
      "      - name: istio-token\n"
      "        projected:\n"
      "          sources:\n"
      "          - serviceAccountToken: {{path: istio-token, expirationSeconds: 43200, "
      "audience: istio-ca}}\n"
      "      - name: istiod-ca-cert\n"
      "        configMap: {{name: istio-ca-root-cert}}\n"
      "      - name: tmp\n"
      "        emptyDir: {{}}\n",
      fmt::arg("meta", Meta(s)), fmt::arg("name", Q(s.name)), fmt::arg("cls", Q(s.class_name)),
      fmt::arg("rev", Q(s.revision.empty() ? "default" : s.revision)),
      fmt::arg("image", Q(s.image)), fmt::arg("env", env));
}

}  // namespace

Status ValidateWaypointSpec(const WaypointSpec& s) {
  if (!IsDnsLabel(s.name)) {
    return absl::InvalidArgumentError("waypoint name '" + s.name +
                                      "' is not a DNS label (a-z, 0-9, '-', at most 63)");
  }
  if (!IsDnsLabel(s.ns)) {
    return absl::InvalidArgumentError("namespace '" + s.ns + "' is not a DNS label");
  }
  if (!IsDnsLabel(s.istio_namespace)) {
    return absl::InvalidArgumentError("--istio-namespace '" + s.istio_namespace +
                                      "' is not a DNS label");
  }
  if (!s.revision.empty() && !IsDnsLabel(s.revision)) {
    return absl::InvalidArgumentError("--revision '" + s.revision + "' is not a DNS label");
  }
  if (s.waypoint_for != "service" && s.waypoint_for != "workload" && s.waypoint_for != "all" &&
      s.waypoint_for != "none") {
    return absl::InvalidArgumentError("--for '" + s.waypoint_for +
                                      "' must be service, workload, all or none");
  }
  if (s.class_name != "ambit-waypoint" && s.class_name != "istio-waypoint") {
    return absl::InvalidArgumentError("--class '" + s.class_name +
                                      "' must be ambit-waypoint or istio-waypoint");
  }
  if (s.image.empty()) return absl::InvalidArgumentError("--image must not be empty");
  return absl::OkStatus();
}

std::string WaypointGatewayYaml(const WaypointSpec& s) {
  std::string extra = fmt::format("    istio.io/waypoint-for: {}\n", Q(s.waypoint_for));
  if (!s.revision.empty()) extra += fmt::format("    istio.io/rev: {}\n", Q(s.revision));
  return fmt::format(
      "apiVersion: gateway.networking.k8s.io/v1\n"
      "kind: Gateway\n"
      "{}"
      "spec:\n"
      "  gatewayClassName: {}\n"
      "  listeners:\n"
      "  - name: mesh\n"
      "    port: 15008\n"
      "    protocol: HBONE\n",
      Meta(s, extra), Q(s.class_name));
}

std::string WaypointManifestsYaml(const WaypointSpec& s) {
  const std::string sa = "apiVersion: v1\nkind: ServiceAccount\n" + Meta(s);
  const std::string role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n" + Meta(s) +
                           "rules:\n"
                           "- apiGroups: [networking.istio.io]\n"
                           "  resources: [virtualservices, destinationrules, serviceentries, "
                           "envoyfilters]\n"
                           "  verbs: [get, list, watch]\n"
                           "- apiGroups: [security.istio.io]\n"
                           "  resources: [authorizationpolicies]\n"
                           "  verbs: [get, list, watch]\n"
                           "- apiGroups: [telemetry.istio.io]\n"
                           "  resources: [telemetries]\n"
                           "  verbs: [get, list, watch]\n"
                           "- apiGroups: [gateway.networking.k8s.io]\n"
                           "  resources: [gateways, httproutes, grpcroutes]\n"
                           "  verbs: [get, list, watch]\n"
                           "- apiGroups: [gateway.networking.k8s.io]\n"
                           "  resources: [gateways/status, httproutes/status, grpcroutes/status]\n"
                           "  verbs: [get, update, patch]\n";
  const std::string binding = fmt::format(
      "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n{}"
      "roleRef:\n"
      "  apiGroup: rbac.authorization.k8s.io\n"
      "  kind: Role\n"
      "  name: {}\n"
      "subjects:\n"
      "- kind: ServiceAccount\n"
      "  name: {}\n"
      "  namespace: {}\n",
      Meta(s), Q(s.name), Q(s.name), Q(s.ns));
  const std::string service = fmt::format(
      "apiVersion: v1\nkind: Service\n{}"
      "spec:\n"
      "  type: ClusterIP\n"
      "  ipFamilyPolicy: PreferDualStack\n"
      "  selector:\n"
      "    gateway.networking.k8s.io/gateway-name: {}\n"
      "  ports:\n"
      "  - {{name: mesh, port: 15008, targetPort: 15008, protocol: TCP}}\n",
      Meta(s), Q(s.name));
  return "---\n" + sa + "---\n" + role + "---\n" + binding + "---\n" + service + "---\n" +
         Deployment(s) + "---\n" + WaypointGatewayYaml(s);
}

}  // namespace ambit::ctl
