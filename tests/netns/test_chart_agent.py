#!/usr/bin/env python3
"""The agent exactly as charts/ambit-agent runs it (issue 19 acceptance): the DaemonSet is
rendered (tests/charts/render, Helm's semantics), and its container — the image's
entrypoint `ambit-agent` with the rendered `args`, and only the rendered `env` with the
downward-API fields filled in as the kubelet fills them — runs in each node netns against
the fake istiod (xDS + CA) and fake istio-cni (ZDS). The mounts are reproduced in a
per-node root directory used as the working directory, as the container's `/`: the
projected token at var/run/secrets/tokens/istio-token, the root certificate at
var/run/secrets/istio/root-cert.pem. Values set for the test only: caAddress/xdsAddress
(the fake's addresses), multiCluster.clusterName, and cniSocketPath (the ZDS socket's
directory, which also sets INPOD_UDS). Checks: ready, cross-node HBONE traffic, CA
requests with the projected token and the cluster id, ztunnel's xDS node id.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "charts"))
from harness import Topology, require_root, tcp_exchange  # noqa: E402
from istio_env import CLUSTER, TOKEN, IstioEnv  # noqa: E402
import test_charts  # noqa: E402  (the renderer's build)

FAILURES = []
RELEASE_NS = "istio-system"


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)
    return cond


def render_daemonset(renderer, workdir, values):
    vf = os.path.join(workdir, "values.yaml")
    with open(vf, "w") as f:
        yaml.safe_dump(values, f)
    out = subprocess.run([renderer, "-chart", os.path.join(test_charts.ROOT, "charts", "ambit-agent"),
                          "-name", "ztunnel", "-namespace", RELEASE_NS, "-values", vf],
                         capture_output=True, text=True, check=True).stdout
    (ds,) = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "DaemonSet"]
    return ds


def kubelet_env(container, pod):
    """The container's environment as the kubelet builds it (downward API included)."""
    fields = {"metadata.name": pod["name"], "metadata.namespace": pod["namespace"],
              "spec.nodeName": pod["node"], "status.podIP": pod["ip"],
              "spec.serviceAccountName": pod["serviceAccount"]}
    env = {}
    for e in container["env"]:
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif "fieldRef" in e.get("valueFrom", {}):
            env[e["name"]] = fields[e["valueFrom"]["fieldRef"]["fieldPath"]]
        elif "resourceFieldRef" in e.get("valueFrom", {}):
            # limits.cpu without a limit: the node's allocatable CPUs, rounded up.
            env[e["name"]] = "2"
        else:
            raise ValueError(f"env {e['name']}: unsupported source {e}")
    return env


class ChartAgents(IstioEnv):
    def __init__(self, topo, build, renderer):
        super().__init__(topo, build)
        self.renderer = renderer
        self.rendered = {}

    def start_istio_agent(self, node, extra_args=()):
        sock_dir = os.path.join(self.dir, f"cni-{node}")
        os.makedirs(sock_dir, exist_ok=True)
        os.symlink(self.zds_paths[node], os.path.join(sock_dir, "ztunnel.sock"))
        ds = render_daemonset(self.renderer, self.dir, {
            "caAddress": self.fake.ca, "xdsAddress": self.fake.xds,
            "multiCluster": {"clusterName": CLUSTER}, "cniSocketPath": sock_dir})
        pod_spec = ds["spec"]["template"]["spec"]
        (c,) = pod_spec["containers"]
        root = os.path.join(self.dir, f"root-{node}")
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        token_dir = root + mounts["istio-token"]
        ca_dir = root + mounts["istiod-ca-cert"]
        os.makedirs(token_dir, exist_ok=True)
        os.makedirs(ca_dir, exist_ok=True)
        with open(os.path.join(token_dir, "istio-token"), "w") as f:
            f.write(TOKEN)
        shutil.copy(self.fake.root, os.path.join(ca_dir, "root-cert.pem"))
        os.makedirs(root + mounts["tmp"], exist_ok=True)
        pod = {"name": f"ztunnel-{node}", "namespace": RELEASE_NS, "node": f"node-{node}",
               "ip": f"10.44.0.{node}", "serviceAccount": pod_spec["serviceAccountName"]}
        env = kubelet_env(c, pod)
        env["PATH"] = os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        self.rendered[node] = (c, env)
        log_path = os.path.join(self.dir, f"agent-{node}.log")
        self.logs[node] = log_path
        logf = open(log_path, "a")
        cmd = ["ip", "netns", "exec", self.topo.node_ns(node), self.agent_bin, *c["args"]]
        p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=root)
        self.topo.procs.append(p)
        self.agents[node] = p
        return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    require_root()
    renderer = test_charts.build_renderer(os.path.join(args.build, "tests", "netns", "chart-render"))
    with Topology(nodes=2, tag="ch") as topo:
        env = ChartAgents(topo, args.build, renderer)
        f = env.fake
        client = env.pod(1, "client", sa="sleep")
        server = env.pod(2, "server", sa="echo")
        try:
            topo.echo_server(server.ns, "0.0.0.0", 8080, "server")
            env.push_all()
            env.start_agents()
            c, penv = env.rendered[1]
            check(c["args"] == ["proxy", "ztunnel"] and "command" not in c,
                  "the rendered container: the image's entrypoint with args proxy ztunnel")
            check({"CA_ADDRESS", "XDS_ADDRESS", "INPOD_UDS", "ISTIO_META_CLUSTER_ID",
                   "ZTUNNEL_CPU_LIMIT", "TERMINATION_GRACE_PERIOD_SECONDS"} <= set(penv) and
                  "AUTH_TOKEN" not in penv and "XDS_ROOT_CA" not in penv,
                  f"only the chart's environment ({len(penv) - 1} variables, no test-only ones)")
            for node in (1, 2):
                env.wait_log(node, "readiness on", timeout=15)
                check("mode=istio" in env.log(node), f"node {node}: Istio mode from the chart's pod spec")
            for node in (1, 2):
                acks = env.announce(node)
                check(set(acks) == {"ack"}, f"node {node}: ZDS pods acked over the chart's socket path")
            for node in (1, 2):
                st, body = env.wait_ready(node, want=200, timeout=30)
                check(st == 200, f"node {node}: ready ({body.strip()[:200]})")
            line = ""
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not line.startswith("peer="):
                try:
                    line = tcp_exchange(client.ns, server.ip, 8080, b"hi\n", timeout=3).strip()
                except OSError as e:
                    line = f"<{e.__class__.__name__}>"
                    time.sleep(0.2)  # poll interval while the pods' certificates arrive
            check(line.startswith(f"peer={client.ip}:") and "tag=server" in line,
                  f"client on node 1 reaches the server on node 2 ({line})")
            reqs = f("ca_requests")["requests"]
            check(reqs and all(r["authorization"] == f"Bearer {TOKEN}" and r["clusterid"] == CLUSTER
                               for r in reqs),
                  f"CA requests carry the projected token and the chart's cluster id ({len(reqs)})")
            check({r["impersonated_identity"] for r in reqs} ==
                  {client.identity, server.identity}, "CA impersonation for the two pods")
            init = f("xds_requests", initial=True, type="address")["requests"]
            ids = sorted({r["node_id"] for r in init})
            check(ids == [f"ztunnel~10.44.0.{n}~ztunnel-{n}.istio-system~istio-system.svc.cluster.local"
                          for n in (1, 2)], f"xDS node ids from the downward-API env ({ids})")
        except Exception as e:  # reported with the logs below
            check(False, f"{e.__class__.__name__}: {str(e)[:600]}")
        if FAILURES:
            env.dump_tails()
    print(f"{len(FAILURES)} failure(s)" if FAILURES else "all checks passed")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
