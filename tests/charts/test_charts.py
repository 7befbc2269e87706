#!/usr/bin/env python3
"""Offline checks of charts/ambit-agent and charts/ambit-waypoint (meson test `charts`).

Renders each case with tests/charts/render (Go text/template + Sprig + Helm's functions,
built here from the Debian Go packages, no network), then for every case:
  - yamllint (tests/charts/yamllint.yaml),
  - every object validated against the Kubernetes / Gateway API schemas (validate.js with
    the npm packages kubernetes-models and @kubernetes-models/gateway-api from
    AMBIT_NPM_DIR, default /var/cache/ambit-npm, installed by `tools/dev deps`),
  - the golden file tests/charts/golden/<case>.yaml (UPDATE_GOLDEN=1 rewrites it),
  - targeted assertions (env names = Istio's ztunnel chart's set, no hostNetwork,
    capabilities, probes, volumes, waypoint labels/ports/RBAC),
and checks that bad values fail to render with a clear message. With --ambitctl, the
output of `ambitctl waypoint generate` must be the chart's objects.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NPM_DIR = os.environ.get("AMBIT_NPM_DIR", "/var/cache/ambit-npm")
GOPATH = "/usr/share/gocode"

# (case, chart, values file or None, release name, namespace)
CASES = [
    ("agent-default", "ambit-agent", None, "ztunnel", "istio-system"),
    ("agent-full", "ambit-agent", "agent-full.yaml", "ztunnel", "istio-system"),
    ("agent-istio-defaults", "ambit-agent", "agent-istio-defaults.yaml", "ztunnel", "istio-system"),
    ("waypoint-default", "ambit-waypoint", None, "waypoint", "demo"),
    ("waypoint-full", "ambit-waypoint", "waypoint-full.yaml", "reviews", "shop"),
    ("waypoint-class", "ambit-waypoint", "waypoint-class.yaml", "waypoint", "demo"),
]
# Values the chart does not use, reported by NOTES.txt: case -> keys.
UNUSED = {"agent-istio-defaults": ["profile", "resourceScope"]}
# Values that must not render: (chart, values file, text the error must contain).
BAD = [
    ("ambit-agent", "agent-bad-io.yaml", "io: uring cannot work under seccompProfile RuntimeDefault"),
    ("ambit-waypoint", "waypoint-bad-for.yaml", "waypointFor must be service, workload, all or none"),
    ("ambit-waypoint", "waypoint-bad-class.yaml", "gatewayClass.create only creates the ambit-waypoint class"),
]
# The env names of Istio's ztunnel DaemonSet with default values (ISTIO-COMPAT §10),
# including ZTUNNEL_RESOURCE_CPU_REQUEST (set because the default requests a CPU).
ISTIO_ZTUNNEL_ENV = {
    "CA_ADDRESS", "XDS_ADDRESS", "RUST_LOG", "RUST_BACKTRACE", "ISTIO_META_CLUSTER_ID",
    "INPOD_ENABLED", "TERMINATION_GRACE_PERIOD_SECONDS", "POD_NAME", "POD_NAMESPACE",
    "NODE_NAME", "INSTANCE_IP", "SERVICE_ACCOUNT", "ZTUNNEL_CPU_LIMIT",
    "ZTUNNEL_RESOURCE_CPU_REQUEST",
}
# Labels only Helm adds (ambitctl writes its own managed-by).
HELM_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance")

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL {what}")
    return cond


def build_renderer(workdir):
    out = os.path.join(workdir, "render")
    env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOFLAGS="",
               GOCACHE=os.path.join(workdir, "gocache"), GOPROXY="off", CGO_ENABLED="0")
    subprocess.run(["go", "build", "-o", out, "."], cwd=os.path.join(HERE, "render"),
                   env=env, check=True)
    return out


def render(renderer, chart, values, name, ns, notes=None):
    cmd = [renderer, "-chart", os.path.join(ROOT, "charts", chart), "-name", name,
           "-namespace", ns]
    if notes:
        cmd += ["-notes", notes]
    if values:
        cmd += ["-values", os.path.join(HERE, "values", values)]
    return subprocess.run(cmd, capture_output=True, text=True)


def objects(text):
    return [d for d in yaml.safe_load_all(text) if d is not None]


def find(objs, kind):
    found = [o for o in objs if o.get("kind") == kind]
    check(len(found) == 1, f"exactly one {kind} (found {len(found)})")
    return found[0] if found else {}


def env_map(container):
    return {e["name"]: e for e in container.get("env", [])}


def assert_agent(case, objs):
    ds = find(objs, "DaemonSet")
    spec = ds.get("spec", {}).get("template", {}).get("spec", {})
    tmeta = ds.get("spec", {}).get("template", {}).get("metadata", {})
    check("hostNetwork" not in spec, f"{case}: no hostNetwork")
    check(spec.get("priorityClassName") == "system-node-critical", f"{case}: system-node-critical")
    check(spec.get("nodeSelector", {}).get("kubernetes.io/os") == "linux", f"{case}: linux nodes")
    check(ds["spec"]["selector"]["matchLabels"] == {"app": "ztunnel"}, f"{case}: selector app=ztunnel")
    labels = tmeta.get("labels", {})
    check(labels.get("istio.io/dataplane-mode") == "none", f"{case}: pod not captured")
    check(labels.get("sidecar.istio.io/inject") == "false", f"{case}: no sidecar")
    ann = tmeta.get("annotations", {})
    check(ann.get("prometheus.io/port") == "15020" and ann.get("prometheus.io/scrape") == "true",
          f"{case}: metrics annotations")
    (c,) = spec["containers"]
    check(c["name"] == "istio-proxy", f"{case}: container istio-proxy")
    check(c["args"] == ["proxy", "ztunnel"], f"{case}: args proxy ztunnel")
    check({"containerPort": 15020, "name": "ztunnel-stats", "protocol": "TCP"} in c["ports"],
          f"{case}: port 15020 ztunnel-stats")
    sc = c["securityContext"]
    check(sc["capabilities"] == {"drop": ["ALL"], "add": ["NET_ADMIN", "SYS_ADMIN", "NET_RAW"]},
          f"{case}: capabilities")
    check(sc["privileged"] is False and sc["allowPrivilegeEscalation"] is True, f"{case}: not privileged")
    check(sc["readOnlyRootFilesystem"] is True and sc["runAsUser"] == 0 and sc["runAsGroup"] == 1337,
          f"{case}: read-only root, uid 0, gid 1337")
    check(c["readinessProbe"] == {"httpGet": {"port": 15021, "path": "/healthz/ready"}},
          f"{case}: readiness :15021/healthz/ready")
    vols = {v["name"]: v for v in spec["volumes"]}
    token = vols["istio-token"]["projected"]["sources"][0]["serviceAccountToken"]
    check(token == {"path": "istio-token", "expirationSeconds": 43200, "audience": "istio-ca"},
          f"{case}: istio-ca token")
    check(vols["tmp"] == {"name": "tmp", "emptyDir": {}}, f"{case}: /tmp emptyDir")
    check(vols["cni-ztunnel-sock-dir"]["hostPath"]["type"] == "DirectoryOrCreate",
          f"{case}: ZDS hostPath")
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    check(mounts.get("istio-token") == "/var/run/secrets/tokens", f"{case}: token mount")
    check(mounts.get("istiod-ca-cert") == "/var/run/secrets/istio", f"{case}: root cert mount")
    check(mounts.get("tmp") == "/tmp", f"{case}: tmp mount")
    env = env_map(c)
    if case in ("agent-default", "agent-istio-defaults"):
        check(set(env) == ISTIO_ZTUNNEL_ENV,
              f"{case}: env names {sorted(set(env) ^ ISTIO_ZTUNNEL_ENV)} differ from Istio's chart")
        check(env["CA_ADDRESS"]["value"] == "istiod.istio-system.svc:15012", f"{case}: CA_ADDRESS")
        check(mounts.get("cni-ztunnel-sock-dir") == "/var/run/ztunnel", f"{case}: ZDS mount")
        check(vols["istiod-ca-cert"]["configMap"]["name"] == "istio-ca-root-cert", f"{case}: root cert map")
        check("seccompProfile" not in sc, f"{case}: seccomp left to the runtime")
        check(ds["metadata"]["name"] == "ztunnel", f"{case}: named ztunnel")
    if case == "agent-istio-defaults":
        check(c["image"] == "docker.io/istio/ztunnel:1.24.0", f"{case}: image from Istio's values")
    if case == "agent-full":
        check(ds["metadata"]["name"] == "ztunnel-ambit", f"{case}: resourceName")
        check(c["image"] == "registry.example/mesh/ambit-agent:1.2.3-debug", f"{case}: image")
        check(env["CA_ADDRESS"]["value"] == "ca.example:15012", f"{case}: caAddress")
        check(env["NETWORK"]["value"] == "network1", f"{case}: global.network")
        check(env["ISTIO_META_CLUSTER_ID"]["value"] == "east", f"{case}: clusterName")
        check(env["LOG_FORMAT"]["value"] == "json", f"{case}: logAsJson")
        check(env["AMBIT_IO"]["value"] == "uring", f"{case}: io")
        check(env["INPOD_UDS"]["value"] == "/run/istio-cni/ztunnel.sock", f"{case}: cniSocketPath")
        check(env["POOL_MAX_STREAMS_PER_CONNECTION"]["value"] == "100", f"{case}: proxyMetadata")
        check(env["ZTUNNEL_RESOURCE_CPU_LIMIT"]["value"] == "2", f"{case}: cpu limit")
        check(env["TERMINATION_GRACE_PERIOD_SECONDS"]["value"] == "45", f"{case}: grace env")
        check(spec["terminationGracePeriodSeconds"] == 45, f"{case}: grace")
        check(sc["seLinuxOptions"] == {"type": "spc_t"}, f"{case}: seLinuxOptions")
        check(sc["seccompProfile"]["type"] == "Localhost", f"{case}: seccomp")
        ctb = vols["istiod-ca-cert"]["projected"]["sources"][0]["clusterTrustBundle"]
        check(ctb["name"] == "istio.io:istiod-ca:mesh-root", f"{case}: cluster trust bundle")
        check(ds["metadata"]["annotations"]["istio.io/rev"] == "canary", f"{case}: revision")
        check(ds["spec"]["updateStrategy"]["type"] == "RollingUpdate", f"{case}: updateStrategy")
        sa = find(objs, "ServiceAccount")
        check(sa.get("imagePullSecrets") == [{"name": "regcred"}], f"{case}: pull secrets")


def assert_waypoint(case, objs, name, ns):
    gw = find(objs, "Gateway")
    check(gw["spec"]["listeners"] == [{"name": "mesh", "port": 15008, "protocol": "HBONE"}],
          f"{case}: listener mesh 15008 HBONE")
    check(gw["metadata"]["namespace"] == ns, f"{case}: namespace")
    dep = find(objs, "Deployment")
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    check(labels.get("istio.io/dataplane-mode") == "none", f"{case}: waypoint not captured")
    check(labels.get("gateway.networking.k8s.io/gateway-name") == name, f"{case}: gateway-name label")
    check(dep["spec"]["selector"]["matchLabels"] == {"gateway.networking.k8s.io/gateway-name": name},
          f"{case}: selector")
    (c,) = pod["spec"]["containers"]
    check("args" not in c and "command" not in c, f"{case}: no --config (cluster mode)")
    check(sorted(p["containerPort"] for p in c["ports"]) == [15008, 15020, 15021], f"{case}: ports")
    check(c["readinessProbe"]["httpGet"] == {"path": "/healthz/ready", "port": 15021}, f"{case}: readiness")
    env = env_map(c)
    for n in ("POD_NAME", "POD_NAMESPACE", "SERVICE_ACCOUNT", "INSTANCE_IP", "CA_ADDRESS",
              "XDS_ADDRESS", "ISTIO_META_CLUSTER_ID", "ISTIO_META_WORKLOAD_NAME", "GATEWAY_NAME"):
        check(n in env, f"{case}: env {n}")
    sc = c["securityContext"]
    check(sc["runAsNonRoot"] is True and sc["capabilities"] == {"drop": ["ALL"]}, f"{case}: unprivileged")
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    check(mounts.get("istio-token") == "/var/run/secrets/tokens", f"{case}: token mount")
    check(mounts.get("istiod-ca-cert") == "/var/run/secrets/istio", f"{case}: root cert mount")
    svc = find(objs, "Service")
    check(svc["spec"]["ports"][0]["port"] == 15008, f"{case}: service 15008")
    check(svc["spec"]["selector"] == {"gateway.networking.k8s.io/gateway-name": name}, f"{case}: service selector")
    role = find(objs, "Role")
    granted = {(g, r): set(rule["verbs"]) for rule in role["rules"]
               for g in rule["apiGroups"] for r in rule["resources"]}
    for g, r in [("networking.istio.io", "virtualservices"), ("networking.istio.io", "destinationrules"),
                 ("networking.istio.io", "serviceentries"), ("networking.istio.io", "envoyfilters"),
                 ("security.istio.io", "authorizationpolicies"), ("telemetry.istio.io", "telemetries"),
                 ("gateway.networking.k8s.io", "gateways"), ("gateway.networking.k8s.io", "httproutes"),
                 ("gateway.networking.k8s.io", "grpcroutes")]:
        check({"get", "list", "watch"} <= granted.get((g, r), set()), f"{case}: RBAC watch {r}")
    for r in ("gateways/status", "httproutes/status", "grpcroutes/status"):
        check("update" in granted.get(("gateway.networking.k8s.io", r), set()), f"{case}: RBAC {r}")
    rb = find(objs, "RoleBinding")
    sa = find(objs, "ServiceAccount")
    check(rb["subjects"][0]["name"] == sa["metadata"]["name"] == pod["spec"]["serviceAccountName"],
          f"{case}: the binding names the pod's service account")
    kinds = sorted(o["kind"] for o in objs)
    classes = [o for o in objs if o["kind"] == "GatewayClass"]
    if case == "waypoint-class":
        check(len(classes) == 1 and classes[0]["metadata"]["name"] == "ambit-waypoint" and
              classes[0]["spec"]["controllerName"] == "ambit.dev/waypoint-controller",
              f"{case}: GatewayClass ambit-waypoint")
    else:
        check(not classes, f"{case}: no GatewayClass unless asked")
    if case == "waypoint-default":
        check(gw["spec"]["gatewayClassName"] == "ambit-waypoint", f"{case}: class")
        check(gw["metadata"]["labels"]["istio.io/waypoint-for"] == "service", f"{case}: waypoint-for")
        check(dep["spec"]["replicas"] == 1, f"{case}: replicas")
        check("HorizontalPodAutoscaler" not in kinds and "PodDisruptionBudget" not in kinds,
              f"{case}: no HPA/PDB by default")
    if case == "waypoint-full":
        check(gw["spec"]["gatewayClassName"] == "istio-waypoint", f"{case}: class")
        check(gw["metadata"]["labels"]["istio.io/waypoint-for"] == "all", f"{case}: waypoint-for")
        check("replicas" not in dep["spec"], f"{case}: the HPA owns replicas")
        hpa = find(objs, "HorizontalPodAutoscaler")
        check((hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10), f"{case}: HPA bounds")
        pdb = find(objs, "PodDisruptionBudget")
        check(pdb["spec"].get("maxUnavailable") == 1 and "minAvailable" not in pdb["spec"], f"{case}: PDB")
        check(env["AMBIT_IO"]["value"] == "epoll", f"{case}: io")
        check(env["TRUST_DOMAIN"]["value"] == "example.org", f"{case}: trust domain")
        check(sa["metadata"]["name"] == "reviews-waypoint-sa", f"{case}: service account name")


def strip_helm(objs):
    for o in objs:
        for k in HELM_LABELS:
            o.get("metadata", {}).get("labels", {}).pop(k, None)
    return sorted(objs, key=lambda o: (o["kind"], o["metadata"]["name"]))


def check_ambitctl(ambitctl, renderer, workdir):
    """`ambitctl waypoint generate` prints the chart's objects (Helm's own labels aside)."""
    runs = [
        (["--namespace", "demo", "waypoint"], {}, "waypoint", "demo"),
        (["--for", "workload", "--namespace", "shop", "--class", "istio-waypoint", "--revision",
          "canary", "reviews-wp"],
         {"waypointFor": "workload", "gatewayClassName": "istio-waypoint", "revision": "canary"},
         "reviews-wp", "shop"),
        (["--for", "all", "-n", "prod", "--image", "registry.example/ambit-waypoint:9", "edge"],
         {"waypointFor": "all", "image": "registry.example/ambit-waypoint:9"}, "edge", "prod"),
    ]
    for args, values, name, ns in runs:
        got = subprocess.run([ambitctl, "waypoint", "generate"] + args, capture_output=True, text=True)
        if not check(got.returncode == 0, f"ambitctl waypoint generate {args}: {got.stderr.strip()}"):
            continue
        vf = os.path.join(workdir, "ambitctl-values.yaml")
        with open(vf, "w") as f:
            yaml.safe_dump(values, f)
        r = subprocess.run([renderer, "-chart", os.path.join(ROOT, "charts", "ambit-waypoint"),
                            "-name", name, "-namespace", ns, "-values", vf],
                           capture_output=True, text=True)
        check(r.returncode == 0, f"render for ambitctl {args}: {r.stderr.strip()}")
        want, have = strip_helm(objects(r.stdout)), strip_helm(objects(got.stdout))
        ok = check(want == have, f"ambitctl waypoint generate {args} equals the chart")
        if not ok:
            for w, h in zip(want, have):
                if w != h:
                    print("chart:   ", json.dumps(w, sort_keys=True))
                    print("ambitctl:", json.dumps(h, sort_keys=True))
                    break
    bad = subprocess.run([ambitctl, "waypoint", "generate", "--for", "pods", "x"],
                         capture_output=True, text=True)
    check(bad.returncode != 0 and "pods" in bad.stderr, "ambitctl rejects --for pods")
    bad = subprocess.run([ambitctl, "waypoint", "generate", "Bad_Name"], capture_output=True, text=True)
    check(bad.returncode != 0 and "DNS label" in bad.stderr, "ambitctl rejects a bad name")
    check_ambitctl_apply(ambitctl, workdir)


def check_ambitctl_apply(ambitctl, workdir):
    gen = subprocess.run([ambitctl, "waypoint", "generate", "-n", "demo", "wp"],
                         capture_output=True, text=True).stdout
    # --out FILE: the generated manifests.
    out = os.path.join(workdir, "wp-manifests.yaml")
    r = subprocess.run([ambitctl, "waypoint", "apply", "-n", "demo", "wp", "--out", out],
                       capture_output=True, text=True)
    check(r.returncode == 0 and open(out).read() == gen, "apply --out writes the manifests")
    # No target: piped to $KUBECTL apply -f -.
    fake = os.path.join(workdir, "fake-kubectl")
    got = os.path.join(workdir, "kubectl-stdin.yaml")
    with open(fake, "w") as f:
        f.write(f"#!/bin/sh\n[ \"$1 $2 $3\" = \"apply -f -\" ] || exit 3\ncat > {got}\n")
    os.chmod(fake, 0o755)
    r = subprocess.run([ambitctl, "waypoint", "apply", "-n", "demo", "wp"], capture_output=True,
                       text=True, env=dict(os.environ, KUBECTL=fake))
    check(r.returncode == 0 and open(got).read() == gen, f"apply pipes to kubectl apply -f - {r.stderr}")
    r = subprocess.run([ambitctl, "waypoint", "apply", "-n", "demo", "wp"], capture_output=True,
                       text=True, env=dict(os.environ, KUBECTL="/bin/false"))
    check(r.returncode != 0 and "failed" in r.stderr, "apply reports a failing kubectl")
    # --config FILE: the Gateway is added to a standalone config, then replaced in place.
    cfg = os.path.join(workdir, "standalone.yaml")
    head = ("# my mesh\nworkloads: []\nnamespaces:\n- name: demo\n"
            "  labels: {istio.io/use-waypoint: wp}\n")
    tail = ("---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
            "metadata: {name: other, namespace: demo}\nspec:\n  gatewayClassName: istio-waypoint\n"
            "  listeners: [{name: mesh, port: 15008, protocol: HBONE}]\n")
    with open(cfg, "w") as f:
        f.write(head + tail)
    r = subprocess.run([ambitctl, "waypoint", "apply", "-n", "demo", "wp", "--config", cfg],
                       capture_output=True, text=True)
    check(r.returncode == 0 and "added" in r.stdout, f"apply --config adds the Gateway {r.stderr}")
    docs = objects(open(cfg).read())
    gws = [d for d in docs if d.get("kind") == "Gateway"]
    check([g["metadata"]["name"] for g in gws] == ["other", "wp"], "apply --config: both Gateways")
    check(open(cfg).read().startswith(head + tail), "apply --config keeps the other documents as written")
    r = subprocess.run([ambitctl, "waypoint", "apply", "-n", "demo", "wp", "--for", "all", "--config", cfg],
                       capture_output=True, text=True)
    check(r.returncode == 0 and "updated" in r.stdout, f"apply --config replaces the Gateway {r.stderr}")
    gws = [d for d in objects(open(cfg).read()) if d.get("kind") == "Gateway"]
    check(len(gws) == 2 and gws[1]["metadata"]["labels"]["istio.io/waypoint-for"] == "all",
          "apply --config: the replaced Gateway has the new labels")
    # A config that does not load is left alone.
    with open(cfg, "w") as f:
        f.write("workloads: {not: a list}\n")
    r = subprocess.run([ambitctl, "waypoint", "apply", "wp", "--config", cfg], capture_output=True, text=True)
    check(r.returncode != 0 and "left unchanged" in r.stderr and open(cfg).read() == "workloads: {not: a list}\n",
          "apply --config refuses a config that would not load")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", help="scratch directory (default: a temporary one)")
    ap.add_argument("--ambitctl", help="ambitctl binary: compare `waypoint generate` with the chart")
    args = ap.parse_args()
    for tool in ("go", "node", "yamllint"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            sys.exit(f"{tool} is missing: run `tools/dev deps`")
    if not os.path.isdir(os.path.join(NPM_DIR, "node_modules", "kubernetes-models")):
        sys.exit(f"{NPM_DIR}/node_modules has no kubernetes-models: run `tools/dev deps`")
    workdir = args.workdir or tempfile.mkdtemp(prefix="charts-")
    os.makedirs(workdir, exist_ok=True)
    renderer = build_renderer(workdir)
    update = os.environ.get("UPDATE_GOLDEN") == "1"

    for case, chart, values, name, ns in CASES:
        notes = os.path.join(workdir, case + ".notes")
        r = render(renderer, chart, values, name, ns, notes)
        if not check(r.returncode == 0, f"{case}: renders ({r.stderr.strip()})"):
            continue
        text = open(notes).read()
        want = UNUSED.get(case)
        warned = text.split("values not used by this chart, ignored: ")[1].split("\n")[0].split(", ") \
            if "WARNING" in text else None
        check(warned == want, f"{case}: NOTES.txt reports unused values {want} (got {warned})")
        check("CA_TRUSTED_NODE_ACCOUNTS" in text if chart == "ambit-agent" else "istio.io/use-waypoint" in text,
              f"{case}: NOTES.txt says what to do next")
        out = os.path.join(workdir, case + ".yaml")
        with open(out, "w") as f:
            f.write(r.stdout)
        lint = subprocess.run(["yamllint", "-s", "-c", os.path.join(HERE, "yamllint.yaml"), out],
                              capture_output=True, text=True)
        check(lint.returncode == 0, f"{case}: yamllint\n{lint.stdout}{lint.stderr}")
        objs = objects(r.stdout)
        js = os.path.join(workdir, case + ".json")
        with open(js, "w") as f:
            json.dump(objs, f)
        v = subprocess.run(["node", os.path.join(HERE, "validate.js"), js], capture_output=True,
                           text=True, env=dict(os.environ, NODE_PATH=os.path.join(NPM_DIR, "node_modules")))
        print(v.stdout, end="")
        check(v.returncode == 0, f"{case}: schema validation {v.stderr.strip()}")
        golden = os.path.join(HERE, "golden", case + ".yaml")
        if update:
            with open(golden, "w") as f:
                f.write(r.stdout)
        else:
            want = open(golden).read() if os.path.exists(golden) else ""
            check(want == r.stdout, f"{case}: matches {golden} (UPDATE_GOLDEN=1 to rewrite; "
                                    f"diff -u {golden} {out})")
        if chart == "ambit-agent":
            assert_agent(case, objs)
        else:
            assert_waypoint(case, objs, (yaml.safe_load(open(os.path.join(HERE, "values", values)))
                                         if values else {}).get("name") or name, ns)
        print(f"case {case}: {len(objs)} objects checked")

    for chart, values, text in BAD:
        r = render(renderer, chart, values, "x", "default")
        check(r.returncode != 0 and text in r.stderr, f"{chart} {values} fails with '{text}'")

    # The charts' own YAML files (values, Chart.yaml) and the test values: the same rules,
    # without the document-start marker.
    sources = [os.path.join(ROOT, "charts", c, f) for c in ("ambit-agent", "ambit-waypoint")
               for f in ("Chart.yaml", "values.yaml")]
    sources += sorted(os.path.join(HERE, "values", f) for f in os.listdir(os.path.join(HERE, "values")))
    src_rules = os.path.join(workdir, "yamllint-sources.yaml")
    with open(src_rules, "w") as f:
        f.write(f"extends: {os.path.join(HERE, 'yamllint.yaml')}\nrules: {{document-start: disable}}\n")
    lint = subprocess.run(["yamllint", "-s", "-c", src_rules] + sources, capture_output=True, text=True)
    check(lint.returncode == 0, f"yamllint of the charts' values and Chart.yaml\n{lint.stdout}{lint.stderr}")

    # The validator itself: bad-objects.json has unknown fields at every depth and a wrong type.
    v = subprocess.run(["node", os.path.join(HERE, "validate.js"), os.path.join(HERE, "bad-objects.json")],
                       capture_output=True, text=True,
                       env=dict(os.environ, NODE_PATH=os.path.join(NPM_DIR, "node_modules")))
    for field in (".metadata.bogusMeta", "containers[0].readinesProbe", "capabilities.drop2",
                  "fieldRef.bad", "hostPath.typo", ".spec.listeners[0].bogus", ".spec.extra"):
        check(v.returncode == 1 and field in v.stdout, f"validate.js reports the unknown field {field}")

    notes = os.path.join(workdir, "typo.notes")
    r = render(renderer, "ambit-waypoint", "waypoint-typo.yaml", "x", "default", notes)
    check(r.returncode == 0 and "ignored: replicas\n" in open(notes).read(),
          "a misspelt value (replicas) is reported in NOTES.txt")

    if args.ambitctl:
        check_ambitctl(args.ambitctl, renderer, workdir)

    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all chart checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
