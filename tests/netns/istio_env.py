"""Runs ambit-agent in Istio mode on a harness Topology, against
ambit-fake-istio (fake istiod: TLS xDS + CA; fake istio-cni: ZDS per node).

    with Topology(nodes=2) as topo:
        env = IstioEnv(topo, build_dir)          # fake on 10.44.0.100 in the fabric ns
        client = env.pod(1, "client", sa="sleep")
        server = env.pod(2, "server", sa="echo", services={SVC: {80: 8080}})
        env.service("echo", vip="10.96.0.10", ports={80: 8080})
        env.push_all()                           # workloads + services over xDS
        env.start_agents()                       # env as ztunnel's, no --config
        env.announce(1); env.announce(2)         # rules, ZDS accept, Add..., SnapshotSent
        env.wait_ready(1); env.wait_ready(2)

Pods carry a Kubernetes-style ZDS uid (`kube_uid`) and an xDS uid
`cluster1//Pod/<ns>/<name>`; the agent matches them by name/namespace/SA.
"""
import base64
import ipaddress
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid

from ambit_env import AmbitEnv
from harness import in_netns, run  # noqa: F401

FAKE_IP = "10.44.0.100"
TOKEN = "fake-istio-token-1"
CLUSTER = "cluster1"


def b64_ip(ip):
    return base64.b64encode(ipaddress.ip_address(ip).packed).decode()


def b64(raw):
    return base64.b64encode(raw).decode()


def workload(name, ns, sa, ip, node, services=None, protocol="HBONE", uid=None, policies=None,
             raw_addresses=None):
    """An istio.workload.Workload in protobuf JSON (IPs as base64 bytes)."""
    w = {"uid": uid or f"{CLUSTER}//Pod/{ns}/{name}", "name": name, "namespace": ns,
         "addresses": raw_addresses if raw_addresses is not None else [b64_ip(ip)],
         "tunnelProtocol": protocol, "trustDomain": "cluster.local", "serviceAccount": sa,
         "node": node, "canonicalName": name, "canonicalRevision": "v1", "workloadType": "POD",
         "workloadName": name, "clusterId": CLUSTER}
    if services:
        w["services"] = {k: {"ports": [{"servicePort": sp, "targetPort": tp} for sp, tp in v.items()]}
                         for k, v in services.items()}
    if policies:
        w["authorizationPolicies"] = list(policies)
    return w


def service(name, ns, vip, ports):
    """`vip`: one address or a list (dual stack)."""
    vips = vip if isinstance(vip, list) else [vip]
    return {"name": name, "namespace": ns, "hostname": f"{name}.{ns}.svc.cluster.local",
            "addresses": [{"network": "", "address": b64_ip(v)} for v in vips],
            "ports": [{"servicePort": sp, "targetPort": tp} for sp, tp in ports.items()]}


def policy(name, ns, action="DENY", scope="NAMESPACE", principals=(), namespaces=()):
    """An istio.security.Authorization with one rule/clause/match."""
    match = {}
    if principals:
        match["principals"] = [{"exact": p} for p in principals]
    if namespaces:
        match["namespaces"] = [{"exact": n} for n in namespaces]
    return {"name": name, "namespace": ns, "scope": scope, "action": action,
            "rules": [{"clauses": [{"matches": [match]}]}]}


class FakeIstioError(RuntimeError):
    pass


class FakeIstioProc:
    """ambit-fake-istio in the fabric namespace, one JSON line per request."""

    def __init__(self, topo, build, workdir, listen=FAKE_IP):
        self.bin = os.path.join(build, "tests", "support", "ambit-fake-istio")
        self.dir = os.path.join(workdir, "istiod")
        os.makedirs(self.dir, exist_ok=True)
        topo.ns_exec(topo.fabric, ["ip", "addr", "add", f"{listen}/24", "dev", "br0"])
        self.stderr_path = os.path.join(workdir, "fake-istio.stderr")
        self.stderr = open(self.stderr_path, "w")
        self.p = subprocess.Popen(["ip", "netns", "exec", topo.fabric, self.bin, "--listen", listen,
                                   "--dir", self.dir], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.stderr, text=True)
        topo.procs.append(self.p)
        self.lock = threading.Lock()
        self.hello = self._read(15.0)
        if not self.hello.get("ok"):
            raise FakeIstioError(f"ambit-fake-istio did not start: {self.hello}")
        self.xds, self.ca, self.root = self.hello["xds"], self.hello["ca"], self.hello["root"]

    def _read(self, timeout):
        box = {}
        t = threading.Thread(target=lambda: box.update(line=self.p.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        if not box.get("line"):
            raise FakeIstioError(f"ambit-fake-istio: no reply within {timeout}s "
                                 f"(exit {self.p.poll()}); stderr: {self.stderr_tail()}")
        return json.loads(box["line"])

    def stderr_tail(self):
        with open(self.stderr_path) as f:
            return f.read()[-2000:]

    def call(self, cmd, **kw):
        """The reply dict, whether ok or not."""
        wait_s = kw.get("timeout_ms", 5000) / 1000.0 + 10.0
        with self.lock:
            self.p.stdin.write(json.dumps(dict(cmd=cmd, **kw)) + "\n")
            self.p.stdin.flush()
            return self._read(wait_s)

    def __call__(self, cmd, **kw):
        """The reply dict; raises FakeIstioError if it is not ok."""
        r = self.call(cmd, **kw)
        if not r.get("ok"):
            raise FakeIstioError(f"{cmd} {kw}: {r.get('error')}")
        return r


class IstioEnv(AmbitEnv):
    def __init__(self, topo, build_dir, workers=2, zds_uids="kube"):
        """zds_uids: "kube" (a Kubernetes pod UID over ZDS, as istio-cni) or
        "xds" (the xDS uid over ZDS too; a diagnostic aid only)."""
        super().__init__(topo, build_dir, workers=workers)
        self.zds_uids = zds_uids
        self.fake = FakeIstioProc(topo, build_dir, self.dir)
        self.pods = []
        self.svcs = []
        self.zds_paths = {}
        for node in range(1, topo.node_count + 1):
            path = os.path.join(self.dir, f"ztunnel-{node}.sock")
            self.fake("zds_listen", node=f"node-{node}", path=path)
            self.zds_paths[node] = path

    # ---- model ---------------------------------------------------------------
    def pod(self, node, name, sa="default", ns="demo", services=None, push=True, family="v4"):
        """`family`: "v4", "v6" or "dual" (Topology(ipv6=True)): the xDS addresses."""
        p = self.topo.add_pod(node, name, family=family)
        p.name, p.sa, p.namespace = name, sa, ns
        p.uid = f"{CLUSTER}//Pod/{ns}/{name}"
        p.kube_uid = str(uuid.uuid4()) if self.zds_uids == "kube" else p.uid
        p.identity = f"spiffe://cluster.local/ns/{ns}/sa/{sa}"
        p.workload = workload(name, ns, sa, p.ip, f"node-{node}", services=services,
                              raw_addresses=[b64_ip(a) for a in p.ips])
        p.push = push
        self.pods.append(p)
        return p

    def service(self, name, vip, ports, ns="demo", extra=None):
        self.svcs.append({**service(name, ns, vip, ports), **(extra or {})})

    def push_all(self):
        for p in self.pods:
            if p.push:
                self.fake("set_workload", workload=p.workload)
        for s in self.svcs:
            self.fake("set_service", service=s)

    # ---- agents --------------------------------------------------------------
    def agent_env(self, node):
        return {"XDS_ADDRESS": self.fake.xds, "XDS_ROOT_CA": self.fake.root,
                "CA_ADDRESS": self.fake.ca, "CA_ROOT_CA": self.fake.root,
                "AUTH_TOKEN": TOKEN, "CLUSTER_ID": CLUSTER, "NODE_NAME": f"node-{node}",
                "POD_NAME": f"ztunnel-{node}", "POD_NAMESPACE": "istio-system",
                "INSTANCE_IP": f"10.44.0.{node}", "INPOD_UDS": self.zds_paths[node]}

    def start_agents(self, extra_args=()):
        for node in range(1, self.topo.node_count + 1):
            self.start_istio_agent(node, extra_args)

    def start_istio_agent(self, node, extra_args=()):
        log_path = os.path.join(self.dir, f"agent-{node}.log")
        self.logs[node] = log_path
        logf = open(log_path, "a")
        # As the Istio chart runs ztunnel's image: `args: [proxy, ztunnel]` first.
        cmd = ["ip", "netns", "exec", self.topo.node_ns(node), self.agent_bin, "proxy", "ztunnel",
               "--workers", str(self.workers), "--log-level", "info,access=debug", *extra_args]
        env = dict(os.environ, **self.agent_env(node))
        p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
        self.topo.procs.append(p)
        self.agents[node] = p
        return p

    # ---- ZDS -----------------------------------------------------------------
    def install_rules(self, p):
        run([self.ctl_bin, "redirect", "install", "--netns", p.path])

    def zds_add(self, p, fds=1, node=None):
        return self.fake("zds_add", node=f"node-{node or p.node}", uid=p.kube_uid, name=p.name,
                         namespace=p.namespace, service_account=p.sa, netns=p.path, fds=fds)

    def announce(self, node, pods=None, timeout_ms=10000):
        """istio-cni's part for one node: in-pod rules, accept the agent's
        connection, Add every pod, SnapshotSent. Returns the ack results."""
        pods = [p for p in self.pods if p.node == node] if pods is None else pods
        for p in pods:
            if not getattr(p, "rules", False):
                self.install_rules(p)
                p.rules = True
        self.fake("zds_accept", node=f"node-{node}", timeout_ms=timeout_ms)
        acks = [self.zds_add(p)["result"] for p in pods]
        acks.append(self.fake("zds_snapshot", node=f"node-{node}")["result"])
        return acks

    # ---- observation ---------------------------------------------------------
    def http(self, node, path, port=15021):
        def body():
            try:
                r = urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3)
                return r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode()
            except OSError as e:
                return None, str(e)
        return in_netns(self.topo.node_ns(node), body)

    def ready(self, node):
        return self.http(node, "/healthz/ready")

    def wait_ready(self, node, timeout=20.0, want=200, contains=None):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.ready(node)
            if last[0] == want and (contains is None or contains in last[1]):
                return last
            p = self.agents[node]
            if p.poll() is not None:
                raise RuntimeError(f"agent on node {node} exited ({p.returncode}):\n{self.log(node)}")
            time.sleep(0.1)  # poll interval of a wait-with-timeout
        raise TimeoutError(f"agent {node} readiness not {want} {contains or ''} within {timeout}s: "
                           f"{last}")

    def wait_ready_body(self, node, want, timeout=10.0):
        """(status, body) once the readiness body is exactly `want` (stripped),
        else the last answer; stops early if the agent exits."""
        deadline = time.monotonic() + timeout
        last = self.ready(node)
        while last[1].strip() != want and time.monotonic() < deadline:
            if self.agents[node].poll() is not None:
                break
            time.sleep(0.1)  # poll interval of a wait-with-timeout
            last = self.ready(node)
        return last

    def metric(self, node, name, label=None):
        """Sum of the samples of `name` on :15020 whose labels contain `label`
        (e.g. 'reason="ConnectionError"'); None if /metrics does not answer."""
        status, text = self.http(node, "/metrics", port=15020)
        if status != 200:
            return None
        total = 0.0
        for m in re.finditer(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", text, re.M):
            if label is None or label in (m.group(1) or ""):
                total += float(m.group(2))
        return total

    def cert(self, node, identity):
        """(serial, validFrom, expirationTime, state) of `identity`'s leaf in /config_dump."""
        for c in self.config_dump(node)["certificates"]:
            if c["identity"] == identity and c["certChain"]:
                leaf = c["certChain"][0]
                return leaf["serialNumber"], leaf["validFrom"], leaf["expirationTime"], c["state"]
        return None

    def config_dump(self, node):
        status, text = self.http(node, "/config_dump", port=15000)
        if status != 200:
            raise RuntimeError(f"agent {node} /config_dump: {status} {text[:200]}")
        return json.loads(text)

    def dump_tails(self, n=6000):
        for node in sorted(self.logs):
            text = self.log(node)
            control = [line for line in text.splitlines() if "\txds\t" in line or "\tzds\t" in line]
            print(f"---- agent {node} xds/zds lines ----\n" + "\n".join(control[-40:]))
            print(f"---- agent {node} log ----\n" + text[-n:])
        print("---- fake-istio stderr ----\n" + self.fake.stderr_tail())
