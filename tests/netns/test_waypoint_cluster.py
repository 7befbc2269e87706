#!/usr/bin/env python3
"""ambit-waypoint in cluster mode (issue 19 item 3): no --config; workloads
and services from the fake istiod's workload xDS, its certificate from the
fake Istio CA (its own identity), L7 config from a fake Kubernetes API
server (fake_kube.py: real list/watch wire format over HTTPS, bearer token).

Two nodes with agents in Istio mode; client on node 1; echo-v1 (behind the
`echo` service) and echo-v2 (service `echo-v2`) on node 2 with the waypoint
pod; `echo` uses the waypoint. Checks: an HTTPRoute created through the API
routes echo to v2 within 2 s; an update (back to echo-v1 for /v1 paths) and a
delete apply; an API server restart with an update made while it was down
and its history compacted (410 Gone) recovers by a relist without losing the
update; malformed watch events are counted by reason and skipped; the Gateway's and the route's status conditions are written back
(merge patches); Telemetry is RBAC-forbidden (403): reported in /config_dump
and ambit_kube_errors, the rest works.
"""
import argparse
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, in_netns, require_root  # noqa: E402
from istio_env import CLUSTER, TOKEN, IstioEnv, b64_ip, service  # noqa: E402
from fake_kube import FakeKube  # noqa: E402

FAILURES = []
ECHO_VIP, V2_VIP, WP_VIP = "10.96.0.10", "10.96.0.12", "10.96.0.99"
KUBE_IP, KUBE_TOKEN = "10.44.0.101", "kube-token-1"
HOST = "echo.demo.svc.cluster.local"

HTTP_SERVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
tag = sys.argv[1]
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        body = tag.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
srv = ThreadingHTTPServer(("0.0.0.0", 8080), H)
print("ready", flush=True)
srv.serve_forever()
"""


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)
    return cond


def get(pod, path="/"):
    def body():
        try:
            with urllib.request.urlopen(f"http://{ECHO_VIP}{path}", timeout=3) as r:
                return r.read().decode()
        except urllib.error.HTTPError as e:
            return f"HTTP {e.code}"
        except OSError as e:
            return f"error {e}"
    return in_netns(pod.ns, body)


def wait_answer(pod, want, path="/", timeout=2.0):
    """(seconds until `path` answered `want`, last answer); None if never."""
    start = time.monotonic()
    last = None
    while time.monotonic() - start < timeout:
        last = get(pod, path)
        if last == want:
            return time.monotonic() - start, last
        time.sleep(0.05)  # poll interval of a wait-with-timeout
    return None, last


def route(name, rules):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": "demo"},
            "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "echo", "port": 80}],
                     "rules": rules}}


def to(svc, prefix=None):
    r = {"backendRefs": [{"name": svc, "port": 80}]}
    if prefix:
        r["matches"] = [{"path": {"type": "PathPrefix", "value": prefix}}]
    return r


def metric(wp_ns, name, **labels):
    def body():
        with urllib.request.urlopen("http://127.0.0.1:15020/metrics", timeout=3) as r:
            return r.read().decode()
    total = 0.0
    for line in in_netns(wp_ns, body).splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def dump(wp_ns):
    def body():
        with urllib.request.urlopen("http://127.0.0.1:15000/config_dump", timeout=3) as r:
            return json.loads(r.read())
    return in_netns(wp_ns, body)


def conditions(conds):
    """{type: status} of a list of conditions."""
    return {c.get("type"): c.get("status") for c in (conds or [])}


def wait_for(fn, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.05)  # poll interval of a wait-with-timeout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    require_root()
    with Topology(nodes=2, tag="wc") as topo:
        env = IstioEnv(topo, args.build)
        # The pods on node 2 reach the fakes in the fabric namespace.
        topo.ns_exec(topo.fabric, ["ip", "route", "add", "10.44.2.0/24", "via", "10.44.0.2"])
        topo.ns_exec(topo.fabric, ["ip", "addr", "add", f"{KUBE_IP}/24", "dev", "br0"])
        client = env.pod(1, "client", sa="sleep")
        v1 = env.pod(2, "echo-v1", sa="echo", services={f"demo/{HOST}": {80: 8080}})
        v2 = env.pod(2, "echo-v2", sa="echo",
                     services={"demo/echo-v2.demo.svc.cluster.local": {80: 8080}})
        wp = env.pod(2, "waypoint", sa="waypoint",
                     services={"demo/waypoint.demo.svc.cluster.local": {15008: 15008}})
        env.pods.remove(wp)  # never announced over ZDS: it terminates HBONE itself
        env.fake("set_workload", workload=wp.workload)
        echo = service("echo", "demo", ECHO_VIP, {80: 8080})
        echo["waypoint"] = {"address": {"network": "", "address": b64_ip(WP_VIP)},
                            "hboneMtlsPort": 15008}
        env.fake("set_service", service=echo)
        env.service("echo-v2", vip=V2_VIP, ports={80: 8080})
        env.service("waypoint", vip=WP_VIP, ports={15008: 15008})
        env.push_all()

        kube = FakeKube(topo.fabric, KUBE_IP, 6443, env.dir, token=KUBE_TOKEN,
                        forbidden={"telemetries"})
        kube.start()
        kube.apply({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                    "metadata": {"name": "waypoint", "namespace": "demo",
                                 "labels": {"istio.io/waypoint-for": "service"}},
                    "spec": {"gatewayClassName": "istio-waypoint",
                             "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]}})

        env.start_agents()
        for node in (1, 2):
            env.announce(node)
        for node in (1, 2):
            env.wait_ready(node)
        for pod, tag in ((v1, "v1"), (v2, "v2")):
            topo.spawn(pod.ns, [sys.executable, "-c", HTTP_SERVER, tag])
            topo.wait_line(topo.procs[-1], "ready")

        # The waypoint pod's environment, as Istio's waypoint Deployment sets it.
        wp_env = dict(os.environ, XDS_ADDRESS=env.fake.xds, CA_ADDRESS=env.fake.ca,
                      AUTH_TOKEN=TOKEN, CLUSTER_ID=CLUSTER, POD_NAME="waypoint",
                      POD_NAMESPACE="demo", SERVICE_ACCOUNT="waypoint", INSTANCE_IP=wp.ip,
                      ISTIO_META_WORKLOAD_NAME="waypoint", KUBERNETES_SERVICE_HOST=KUBE_IP,
                      KUBERNETES_SERVICE_PORT="6443")
        log_path = os.path.join(env.dir, "waypoint.log")
        logf = open(log_path, "a")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", wp.ns,
             os.path.join(args.build, "waypoint", "app", "ambit-waypoint"), "--workers", "1",
             "--root-cert", env.fake.root, "--kube-ca", kube.cert, "--kube-token",
             kube.token_path, "--log-level", "info"],
            stdout=logf, stderr=subprocess.STDOUT, env=wp_env)
        topo.procs.append(proc)

        def log():
            with open(log_path) as f:
                return f.read()
        try:
            ready = wait_for(lambda: proc.poll() is not None or "serving HBONE" in log(), 15)
            if not check(proc.poll() is None and ready, "waypoint started in cluster mode"):
                raise RuntimeError(log())
            d = wait_for(lambda: (lambda x: x if x.get("cluster", {}).get("kubernetes", {})
                                  .get("synced") else None)(dump(wp.ns)), 5) or {}
            kinds = {k["kind"]: k for k in d.get("cluster", {}).get("kubernetes", {})
                     .get("kinds", [])}
            check(d.get("workload", {}).get("identity") == "spiffe://cluster.local/ns/demo/sa/waypoint"
                  and d["cluster"]["xdsReady"] and not d["cluster"]["selfFromEnvironment"],
                  f"own workload from xDS, identity {d.get('workload', {}).get('identity')}")
            check(kinds.get("HTTPRoute", {}).get("state") == "watching"
                  and kinds["HTTPRoute"].get("resourceVersion"),
                  f"/config_dump: HTTPRoute watching at RV {kinds.get('HTTPRoute', {}).get('resourceVersion')}")
            check(kinds.get("Telemetry", {}).get("state") == "forbidden"
                  and "forbidden" in kinds["Telemetry"].get("lastError", ""),
                  f"403 kind reported: Telemetry {kinds.get('Telemetry', {}).get('state')}: "
                  f"{kinds.get('Telemetry', {}).get('lastError', '')[:80]}")
            check(metric(wp.ns, "ambit_kube_errors_total", kind="Telemetry", reason="forbidden") >= 1,
                  "ambit_kube_errors{kind=Telemetry,reason=forbidden} counted")
            check(any("Telemetry not watched" in f for f in d.get("findings", [])),
                  "the forbidden kind is a /config_dump finding")

            # Baseline: no route, echo -> v1.
            t, last = wait_answer(client, "v1", timeout=5)
            check(t is not None, f"client -> echo through the waypoint answers v1 ({last})")

            # 1. Create: echo -> echo-v2.
            kube.apply(route("to-v2", [to("echo-v2")]))
            t, last = wait_answer(client, "v2")
            check(t is not None, f"HTTPRoute created through the API routes within 2 s "
                                 f"({t and round(t, 2)} s, last {last})")
            # 2. Update: /v1 -> echo, rest -> echo-v2.
            kube.apply(route("to-v2", [to("echo", "/v1"), to("echo-v2")]))
            t, last = wait_answer(client, "v1", path="/v1/x")
            check(t is not None and get(client, "/other") == "v2",
                  f"HTTPRoute update applies ({t and round(t, 2)} s, /v1 -> {last})")

            # 3. Status write-back.
            def programmed():
                gw = kube.get("Gateway", "demo", "waypoint")
                return conditions((gw or {}).get("status", {}).get("conditions")) == {
                    "Accepted": "True", "Programmed": "True"}
            check(wait_for(programmed, 5), "Gateway status: Accepted and Programmed True")

            def route_status():
                r = kube.get("HTTPRoute", "demo", "to-v2")
                parents = (r or {}).get("status", {}).get("parents", [])
                return parents and conditions(parents[0].get("conditions")) == {
                    "Accepted": "True", "ResolvedRefs": "True"} and parents[0]
            p = wait_for(route_status, 5)
            check(bool(p) and p.get("controllerName") == "istio.io/mesh-controller"
                  and p.get("parentRef", {}).get("name") == "echo",
                  f"HTTPRoute status.parents[]: Accepted, ResolvedRefs True ({p and p.get('controllerName')})")
            n_patches = len(kube.patches)
            time.sleep(1.5)  # bookmarks flow; nothing changed: no new patches
            check(len(kube.patches) == n_patches,
                  f"unchanged status is not rewritten ({len(kube.patches) - n_patches} extra)")

            # 4. Restart + 410: an update made while the API server is down.
            relists = metric(wp.ns, "ambit_kube_relists_total", kind="HTTPRoute")
            kube.restart(down_s=0.5, while_down=lambda: kube.apply(route("to-v2", [to("echo")])))
            t, last = wait_answer(client, "v1", path="/other", timeout=5)
            check(t is not None, f"after restart + 410 the update made while down applies "
                                 f"({t and round(t, 2)} s, last {last})")
            check(metric(wp.ns, "ambit_kube_relists_total", kind="HTTPRoute", reason="gone") > relists,
                  "ambit_kube_relists{kind=HTTPRoute,reason=gone} increased")
            check(metric(wp.ns, "ambit_kube_watch_events_total", kind="HTTPRoute", type="BOOKMARK") >= 1,
                  "bookmarks received")

            # Malformed watch events are counted and skipped; later ones apply.
            for bad in ("{not json", '{"type":"SYNC","object":{}}',
                        '{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"p"}}}'):
                kube.inject("HTTPRoute", bad)
            for reason in ("json", "unknown_type", "wrong_kind"):
                check(wait_for(lambda: metric(wp.ns, "ambit_kube_errors_total", kind="HTTPRoute",
                                              reason=reason) >= 1, 3),
                      f"malformed watch event counted: ambit_kube_errors{{reason={reason}}}")

            # 5. Delete: back to the service's own endpoints (v1), then a
            # route to v2 again proves the watch still works after the relist.
            kube.apply(route("to-v2", [to("echo-v2")]))
            t, _ = wait_answer(client, "v2")
            kube.delete("HTTPRoute", "demo", "to-v2")
            t2, last = wait_answer(client, "v1")
            check(t is not None and t2 is not None,
                  f"after the relist: create applies, delete applies ({t2 and round(t2, 2)} s)")
            check(proc.poll() is None, "waypoint still running")
            # SIGTERM drains: the watch threads and the status writer stop.
            t0 = time.monotonic()
            proc.terminate()
            try:
                rc = proc.wait(10)
            except subprocess.TimeoutExpired:
                rc = None
            check(rc == 0, f"SIGTERM: exit {rc} in {round(time.monotonic() - t0, 2)} s")
        except Exception:
            print("---- waypoint log ----\n" + log()[-6000:])
            raise
        finally:
            kube.stop()
        if FAILURES:
            print("---- waypoint log ----\n" + log()[-6000:])
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
