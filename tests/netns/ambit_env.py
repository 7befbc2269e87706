"""Runs real ambit-agent processes on a harness Topology (standalone mode).

    with Topology(nodes=2) as topo:
        env = AmbitEnv(topo, build_dir)
        client = env.pod(1, "client", sa="sleep")
        server = env.pod(2, "server", sa="httpbin", services={"demo/httpbin.demo.svc.cluster.local": {80: 8080}})
        env.service("httpbin", vip="10.96.0.10", ports={80: 8080})
        env.start()                    # CA, config, one agent per node, waits for capture
        ...
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from harness import Topology, run  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class AmbitEnv:
    def __init__(self, topo, build_dir, mode="redirect", backend="iptables", workers=2,
                 trust_domain="cluster.local"):
        self.topo = topo
        self.build = build_dir
        self.agent_bin = os.path.join(build_dir, "agent", "app", "ambit-agent")
        self.ctl_bin = os.path.join(build_dir, "tools", "ambitctl", "ambitctl")
        self.mode, self.backend, self.workers = mode, backend, workers
        self.trust_domain = trust_domain
        self.dir = tempfile.mkdtemp(prefix="ambit-netns-")
        self.config_path = os.path.join(self.dir, "config.yaml")
        self.ca_dir = os.path.join(self.dir, "ca")
        self.workloads, self.services, self.extra_docs = [], [], []
        self.policies = []  # native (ztunnel-format) policies, written as is
        self.agents = {}
        self.logs = {}
        self.uncaptured = []

    # ---- model ---------------------------------------------------------------
    def pod(self, node, name, sa="default", ns="demo", captured=True, services=None,
            protocol=None, trust_domain=None, labels=None, capacity=None, extra=None,
            family="v4"):
        """`extra`: more workload fields as the YAML spells them (applicationTunnel, waypoint).
        `family`: "v4", "v6" or "dual" (Topology(ipv6=True)); workloadIps lists them all."""
        p = self.topo.add_pod(node, name, family=family)
        p.name, p.sa, p.namespace = name, sa, ns
        if captured:
            w = {
                "uid": f"cluster1//Pod/{ns}/{name}", "name": name, "namespace": ns,
                "serviceAccount": sa, "trustDomain": trust_domain or self.trust_domain,
                "clusterId": "cluster1", "node": f"node-{node}", "workloadIps": list(p.ips),
                "protocol": protocol or "HBONE", "workloadName": name, "canonicalName": name,
                "canonicalRevision": "v1", "netns": p.path, "labels": labels or {"app": name},
            }
            if services:
                w["services"] = {k: {str(sp): tp for sp, tp in v.items()} for k, v in services.items()}
            if capacity:
                w["capacity"] = capacity
            w.update(extra or {})
            self.workloads.append(w)
        else:
            self.uncaptured.append(p)
        return p

    def service(self, name, vip, ports, ns="demo", extra=None):
        """`vip`: one address or a list (dual stack). `ports`: {port: target} (ztunnel's map, or {port: {targetPort, appProtocol,
        name}}), or a Kubernetes-style list [{port, targetPort, appProtocol, name}]."""
        if isinstance(ports, dict):
            ports = {str(k): v for k, v in ports.items()}
        self.services.append({
            "name": name, "namespace": ns, "hostname": f"{name}.{ns}.svc.cluster.local",
            "vips": [f"/{v}" for v in (vip if isinstance(vip, list) else [vip])], "ports": ports, **(extra or {}),
        })

    def write_config(self, workloads=None, services=None, extra_docs=None, raw=None):
        if raw is not None:
            text = raw
        else:
            doc = {"workloads": workloads if workloads is not None else self.workloads,
                   "services": services if services is not None else self.services,
                   "policies": self.policies}
            text = json.dumps(doc, indent=1)  # JSON is YAML
            for d in (extra_docs if extra_docs is not None else self.extra_docs):
                text += "\n---\n" + (d if isinstance(d, str) else json.dumps(d))
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.rename(tmp, self.config_path)  # atomic, like a ConfigMap swap

    # ---- processes ---------------------------------------------------------
    def start(self, extra_args=(), wait_pods=True):
        if not os.path.exists(os.path.join(self.ca_dir, "ca.crt")):
            run([self.ctl_bin, "ca", "init", self.ca_dir])
        self.write_config()
        for node in range(1, self.topo.node_count + 1):
            self.start_agent(node, extra_args)
        if wait_pods:
            for w in self.workloads:
                if not w.get("netns"):
                    continue  # not captured (e.g. a waypoint pod)
                node = int(w["node"].split("-")[1])
                self.wait_log(node, f"capturing pod {w['namespace']}/{w['name']}", timeout=15)

    def start_agent(self, node, extra_args=()):
        log_path = os.path.join(self.dir, f"agent-{node}.log")
        self.logs[node] = log_path
        logf = open(log_path, "a")
        cmd = ["ip", "netns", "exec", self.topo.node_ns(node), self.agent_bin,
               "--config", self.config_path, "--node", f"node-{node}", "--ca-dir", self.ca_dir,
               "--workers", str(self.workers), "--redirect", "auto",
               "--redirect-backend", self.backend, "--log-level", "info,access=debug",
               *extra_args]
        env = dict(os.environ, AMBIT_REDIRECT_MODE=self.mode)
        p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
        self.topo.procs.append(p)
        self.agents[node] = p
        return p

    def log(self, node):
        with open(self.logs[node]) as f:
            return f.read()

    def wait_log(self, node, needle, timeout=10.0, after=0, regex=False):
        """Waits until the agent's log (from offset `after`) contains `needle`
        (a substring, or a multiline regular expression when regex=True)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log(node)
            if (re.search(needle, text[after:], re.M) if regex else needle in text[after:]):
                return text
            p = self.agents[node]
            if p.poll() is not None:
                raise RuntimeError(f"agent on node {node} exited ({p.returncode}):\n{text}")
            time.sleep(0.05)  # poll interval of a wait-with-timeout
        raise TimeoutError(f"no {needle!r} in agent-{node} log within {timeout}s:\n{self.log(node)}")

    def access_lines(self, node, message="connection complete"):
        return [l for l in self.log(node).splitlines() if message in l]

    def cleanup(self):
        try:
            if os.environ.get("AMBIT_AGENT_EXIT_CHECK"):
                self.check_agent_exits()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def check_agent_exits(self, timeout=15.0):
        """Sanitizer runs (suite netns_asan): stops the agents still running
        with SIGTERM and requires exit 0, so LeakSanitizer (run by the agent
        before it exits) and any late ASan/UBSan report fail the test."""
        running = {n: p for n, p in self.agents.items() if p.poll() is None}
        for p in running.values():
            p.send_signal(signal.SIGTERM)
        bad = []
        for node, p in running.items():
            try:
                code = p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                code = "none (killed after %.0fs)" % timeout
            if code != 0:
                report = [l for l in self.log(node).splitlines()
                          if "Sanitizer" in l or "leak of" in l or "runtime error" in l]
                bad.append(f"agent on node {node} exited {code} after SIGTERM:\n  " +
                           "\n  ".join(report[:20] or self.log(node).splitlines()[-20:]))
        if bad:
            raise RuntimeError("\n".join(bad))
        print(f"ok   {len(running)} agent(s) exited 0 on SIGTERM (sanitizer exit checks)", flush=True)
