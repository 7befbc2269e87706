#!/usr/bin/env python3
"""A real Prometheus (Debian's `prometheus`) scrapes two agents and the
waypoint; the PromQL of Istio's Grafana dashboards returns data (issue 18
item 2, issue 21's dashboard acceptance).

    node 1: client (captured, sa sleep), outsider (not captured)
    node 2: sink (captured, TCP, service tcp-echo, no waypoint),
            echo (captured, HTTP + gRPC, service echo behind the waypoint),
            ext (not captured), the waypoint pod; prometheus in the node ns

Traffic, all at once for a few seconds while Prometheus scrapes every second:
mTLS pod-to-pod TCP (client -> tcp-echo VIP), plaintext inbound (outsider ->
sink's pod IP, the node-2 agent's 15006), plaintext outbound (client -> ext,
an uncaptured destination), HTTP through the waypoint (200s and 503s) and gRPC
(OK and NOT_FOUND). Then:
  * `promtool check metrics` on each /metrics: no error; lint findings only
    those Istio's own metric names force (PROMTOOL_ALLOWED);
  * each query of PANELS (the panel it stands for, same metric, matchers,
    aggregation and functions as the dashboard JSON in istio/istio
    manifests/addons/dashboards, variables substituted) returns data, and
    rates/ratios/quantiles are plausible (success rate strictly between 0 and
    1, finite positive p99);
  * the Kiali-style graph queries (HTTP by source/service/code, TCP bytes by
    source/destination workload) have the expected edges;
  * after the traffic stops and one more scrape, Prometheus's totals equal the
    counts the test made exactly.
Dashboard panels that cannot have data in ambient mode with upstream Istio
either (a sidecar's reporter="source"/"destination" HTTP panels, non-mTLS HTTP
at a waypoint) are listed in NOT_APPLICABLE with the reason.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, in_netns, require_root  # noqa: E402
from ambit_env import AmbitEnv, ROOT  # noqa: E402
from waypoint_env import WaypointPod  # noqa: E402
from istio_dashboards import ECHO, TCPSVC, RI, NOT_APPLICABLE, panels  # noqa: E402
from test_observability import SINK, exchange as tcp_exchange  # noqa: E402

FAILURES = []
PY = "/usr/bin/python3"
BACKEND = os.path.join(ROOT, "tests", "support", "echo_backend.py")
CLIENTS = os.path.join(ROOT, "tests", "support", "waypoint_clients.py")
ECHO_VIP, TCP_VIP = "10.96.0.40", "10.96.0.41"
UP, DOWN = 1500, 2500
PROM_PORT = 19090

# promtool lint findings that Istio's metric names force on us (we must keep
# Envoy's names byte-identical): (metric, message substring).
PROMTOOL_ALLOWED = [
    ("istio_request_duration_milliseconds", 'use base unit "seconds" instead of "milliseconds"'),
    # ztunnel's in-pod manager gauges (ISTIO-COMPAT §8.2), names kept as ztunnel exports them.
    ("workload_manager_active_proxy_count", 'should not have "_count" suffix'),
    ("workload_manager_pending_proxy_count", 'should not have "_count" suffix'),
]


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def exchange(ns, ip, port):
    return tcp_exchange(ns, ip, port, UP, DOWN)


# ---- Prometheus --------------------------------------------------------------
def prom_api(topo, path, **params):
    url = f"http://127.0.0.1:{PROM_PORT}{path}?" + urllib.parse.urlencode(params)

    def body():
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read())
    return in_netns(topo.node_ns(2), body)


def query(topo, q):
    r = prom_api(topo, "/api/v1/query", query=q)
    if r.get("status") != "success":
        raise RuntimeError(f"query failed: {r}")
    res = r["data"]["result"]
    if r["data"]["resultType"] == "scalar":
        res = [{"metric": {}, "value": res}]
    return [(x["metric"], float(x["value"][1])) for x in res]


def start_prometheus(topo, env, targets):
    d = tempfile.mkdtemp(prefix="prom-", dir=env.dir)
    cfg = os.path.join(d, "prometheus.yml")
    with open(cfg, "w") as f:
        json.dump({"global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                   "scrape_configs": [{"job_name": name, "static_configs": [{"targets": [t]}]}
                                      for name, t in targets.items()]}, f)  # JSON is YAML
    log = open(os.path.join(d, "prometheus.log"), "w")
    p = subprocess.Popen(["ip", "netns", "exec", topo.node_ns(2), "prometheus",
                          f"--config.file={cfg}", f"--storage.tsdb.path={d}/data",
                          f"--web.listen-address=127.0.0.1:{PROM_PORT}", "--log.level=warn"],
                         stdout=log, stderr=subprocess.STDOUT)
    topo.procs.append(p)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            r = prom_api(topo, "/api/v1/targets")
            up = [t for t in r["data"]["activeTargets"] if t["health"] == "up"]
            if len(up) == len(targets):
                return p, os.path.join(d, "prometheus.log")
        except OSError:
            pass  # not listening yet
        if p.poll() is not None:
            break
        time.sleep(0.2)  # poll interval of a wait-with-timeout
    raise RuntimeError(f"prometheus: targets not all up within 15 s:\n"
                       f"{open(os.path.join(d, 'prometheus.log')).read()[-3000:]}")


def promtool_check(name, text):
    """promtool check metrics: no error, lint findings only PROMTOOL_ALLOWED."""
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=20)
    findings = [l.strip() for l in (r.stdout + r.stderr).splitlines() if l.strip()]
    bad = [l for l in findings
           if not any(l.startswith(m + " ") and msg in l for m, msg in PROMTOOL_ALLOWED)]
    check(r.returncode in (0, 3) and not bad,
          f"promtool check metrics on {name}'s /metrics: exit {r.returncode}, "
          f"{len(findings) - len(bad)} allowed finding(s), other: {bad[:8]}")


def strict_parse(name, text):
    """prometheus_client's strict parser; histograms: buckets cumulative, a
    +Inf bucket equal to _count, _sum present, for every series."""
    from prometheus_client.parser import text_string_to_metric_families
    problems, hists = [], 0
    for fam in text_string_to_metric_families(text):
        if fam.type != "histogram":
            continue
        per = {}
        for smp in fam.samples:
            key = tuple(sorted((k, v) for k, v in smp.labels.items() if k != "le"))
            per.setdefault(key, {"b": [], "sum": None, "count": None})
            if smp.name.endswith("_bucket"):
                per[key]["b"].append((float(smp.labels["le"]), smp.value))
            elif smp.name.endswith("_sum"):
                per[key]["sum"] = smp.value
            elif smp.name.endswith("_count"):
                per[key]["count"] = smp.value
        for key, h in per.items():
            hists += 1
            counts = [v for _, v in sorted(h["b"])]
            if (not h["b"] or sorted(h["b"])[-1][0] != math.inf or counts != sorted(counts)
                    or counts[-1] != h["count"] or h["sum"] is None):
                problems.append(f"{fam.name}{dict(key)}")
    check(not problems, f"{name}: strict parse, {hists} histogram series with cumulative buckets, "
                        f"+Inf == _count, _sum ({problems[:3]})")


def duplicate_series(text):
    seen, dup = set(), []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key = line.rsplit(" ", 1)[0]
            if key in seen:
                dup.append(key)
            seen.add(key)
    return dup


# ---- traffic -----------------------------------------------------------------
class Traffic:
    def __init__(self, topo, client, outsider, sink, ext):
        self.topo, self.client, self.outsider, self.sink, self.ext = topo, client, outsider, sink, ext
        self.stop = threading.Event()
        self.counts = {k: 0 for k in ("mtls", "plain_in", "plain_out", "h200", "h503",
                                      "grpc_ok", "grpc_nf")}
        self.errors = []
        self.threads = [threading.Thread(target=f, daemon=True)
                        for f in (self.l4, self.http, self.grpc)]

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def l4(self):
        for _ in range(400):  # bounded; stops with the event
            if self.stop.is_set():
                return
            for key, ns, ip in (("mtls", self.client.ns, TCP_VIP),
                                ("plain_in", self.outsider.ns, self.sink.ip),
                                ("plain_out", self.client.ns, self.ext.ip)):
                try:
                    if exchange(ns, ip, 7000) == DOWN:
                        self.counts[key] += 1
                    else:
                        self.errors.append(f"{key}: short answer")
                except OSError as e:
                    self.errors.append(f"{key}: {e}")
            time.sleep(0.05)

    def http(self):
        import http.client

        def body():
            c = http.client.HTTPConnection(ECHO_VIP, 80, timeout=5)
            for i in range(2000):  # bounded; stops with the event
                if self.stop.is_set():
                    break
                path, want = ("/status/503", 503) if i % 5 == 4 else ("/", 200)
                c.request("GET", path, headers={"Host": ECHO})
                resp = c.getresponse()
                resp.read()
                if resp.status == want:
                    self.counts[f"h{want}"] += 1
                else:
                    self.errors.append(f"http {path}: {resp.status}")
                time.sleep(0.02)
            c.close()
        try:
            in_netns(self.client.ns, body)
        except OSError as e:
            self.errors.append(f"http: {e}")

    def grpc(self):
        for _ in range(20):  # bounded; stops with the event
            if self.stop.is_set():
                return
            for cmd, key in ((["grpc-unary", "--count", "10"], "grpc_ok"),
                             (["grpc-fail", "--code", "NOT_FOUND", "--count", "3"], "grpc_nf")):
                r = self.topo.ns_exec(self.client.ns, [PY, CLIENTS, cmd[0], "--target",
                                                       f"{ECHO_VIP}:9090", *cmd[1:]],
                                      check=False, timeout=30)
                try:
                    out = json.loads(r.stdout.strip().splitlines()[-1])
                except (IndexError, ValueError):
                    self.errors.append(f"{key}: {r.stderr[-300:]}")
                    continue
                want = "OK" if key == "grpc_ok" else "NOT_FOUND"
                self.counts[key] += out.get("codes", {}).get(want, 0)


def evaluate(topo, items, deadline):
    """Every query non-empty and plausible; retried until `deadline` (the
    first scrapes may not have both samples irate needs yet)."""
    pending = list(items)
    results = {}
    while pending and time.monotonic() < deadline:
        left = []
        for name, q, kind in pending:
            rows = query(topo, q)
            vals = [v for _, v in rows]
            ok = bool(rows)
            if kind == "pos":
                ok = ok and any(v > 0 for v in vals)
            elif kind == "ratio":
                ok = ok and all(0 <= v <= 1 for v in vals) and any(0 < v < 1 for v in vals)
            elif kind == "finite":
                ok = ok and any(math.isfinite(v) and v > 0 for v in vals)
            results[name] = (rows, q)
            (left if not ok else []).append((name, q, kind))
        pending = left
        if pending:
            time.sleep(0.5)  # the next scrape
    for name, q, kind in items:
        rows, _ = results.get(name, ([], q))
        check((name, q, kind) not in pending,
              f"{name}: {kind} data ({[round(v, 3) for _, v in rows][:4]})"
              + (f"\n       query: {q}" if (name, q, kind) in pending else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    require_root()
    if subprocess.run(["which", "prometheus"], capture_output=True).returncode != 0:
        print("prometheus not installed (tools/dev deps)", flush=True)
        return 77
    with Topology(nodes=2, tag="p") as topo:
        env = AmbitEnv(topo, args.build)
        client = env.pod(1, "client", sa="sleep")
        outsider = env.pod(1, "outsider", captured=False)
        sink = env.pod(2, "sink", sa="sink", services={f"demo/{TCPSVC}": {7000: 7000}})
        env.service("tcp-echo", vip=TCP_VIP, ports={7000: 7000})
        echo = env.pod(2, "echo", sa="echo", services={f"demo/{ECHO}": {80: 8080, 9090: 9090}})
        ext = env.pod(2, "ext", captured=False)
        wp = WaypointPod(env, node=2)
        env.service("echo", vip=ECHO_VIP, ports={80: {"targetPort": 8080, "appProtocol": "http",
                                                      "name": "http"}, 9090: 9090},
                    extra=wp.use())
        for pod in (sink, ext):
            p = topo.spawn(pod.ns, [PY, "-c", SINK, "7000", str(UP), str(DOWN)])
            topo.wait_line(p, "ready")
        b = topo.spawn(echo.ns, [PY, BACKEND, "--name", "echo", "--namespace", "demo",
                                 "--http", "8080", "--grpc", "9090"])
        topo.wait_line(b, "ready", timeout=15)
        env.start()
        wp.start()
        try:
            t0 = time.monotonic()
            targets = {"agent-node-1": "10.44.0.1:15020", "agent-node-2": "10.44.0.2:15020",
                       "waypoint": f"{wp.pod.ip}:15020"}
            prom, prom_log = start_prometheus(topo, env, targets)
            check(True, f"prometheus up, 3 targets healthy ({time.monotonic() - t0:.1f}s)")
            run_checks(topo, env, wp, Traffic(topo, client, outsider, sink, ext), targets)
            if FAILURES:
                print("---- prometheus log ----\n" + open(prom_log).read()[-2000:])
        finally:
            code = wp.stop()
            check(code == 0, f"waypoint exits 0 on SIGTERM (got {code})")
            if FAILURES:
                print("---- waypoint log (tail) ----\n" + "\n".join(wp.log().splitlines()[-30:]))
                for n in (1, 2):
                    print(f"---- agent {n} log (tail) ----\n" + env.log(n)[-3000:])
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)" if FAILURES else "all prometheus checks passed", flush=True)
    return 1 if FAILURES else 0


def run_checks(topo, env, wp, traffic, targets):
    traffic.start()
    time.sleep(4.0)  # several scrapes with traffic between them
    evaluate(topo, panels(), deadline=time.monotonic() + 15)
    for name, why in NOT_APPLICABLE:
        print(f"n/a  {name}: {why}", flush=True)
    # Kiali's graph: HTTP edges from the waypoint, TCP edges from the agents.
    rows = query(topo, 'sum(rate(istio_requests_total{reporter="waypoint"}[1m])) by '
                       "(source_workload, destination_service_name, response_code)")
    edges = {(m.get("source_workload"), m.get("destination_service_name"), m.get("response_code"))
             for m, _ in rows}
    check({("client", "echo", "200"), ("client", "echo", "503")} <= edges,
          f"Kiali HTTP graph: client -> echo with 200 and 503 ({sorted(edges)})")
    rows = query(topo, 'sum(rate(istio_requests_total{reporter="waypoint",request_protocol="grpc"}'
                       "[1m])) by (grpc_response_status)")
    codes = {m.get("grpc_response_status") for m, _ in rows}
    check({"0", "5"} <= codes, f"gRPC statuses OK (0) and NOT_FOUND (5) as labels ({codes})")
    rows = query(topo, 'sum(rate(istio_tcp_sent_bytes_total{reporter=~"source|destination"}[1m])) '
                       "by (source_workload, destination_workload, destination_service_name)")
    edges = {(m.get("source_workload"), m.get("destination_workload")) for m, _ in rows}
    check({("client", "sink"), ("unknown", "sink"), ("client", "unknown")} <= edges,
          f"Kiali TCP graph: client->sink (mTLS), unknown->sink (plaintext in), client->unknown "
          f"(plaintext out) ({sorted(edges)})")
    traffic.finish()
    c = traffic.counts
    check(not traffic.errors and all(v > 0 for v in c.values()),
          f"traffic ran: {c}, errors {traffic.errors[:5]}")

    # Exposition: promtool and no duplicate series, on each target, after traffic.
    texts = {"agent-node-1": in_netns(topo.node_ns(1), _get, "http://127.0.0.1:15020/metrics"),
             "agent-node-2": in_netns(topo.node_ns(2), _get, "http://127.0.0.1:15020/metrics"),
             "waypoint": wp.metrics()}
    for name, text in texts.items():
        promtool_check(name, text)
        strict_parse(name, text)
        dup = duplicate_series(text)
        check(not dup, f"{name}: no duplicate series ({dup[:3]})")

    # Totals: one scrape after the last request, Prometheus holds the exact counts.
    time.sleep(2.5)
    def total(q):
        rows = query(topo, q)
        return sum(v for _, v in rows)
    w = 'reporter="waypoint",destination_workload="echo",destination_service="%s"' % ECHO
    got = {
        "h200": total(f'sum(istio_requests_total{{{w},request_protocol="http",response_code="200"}})'),
        "h503": total(f'sum(istio_requests_total{{{w},response_code="503"}})'),
        "grpc_ok": total(f'sum(istio_requests_total{{{w},request_protocol="grpc",'
                         f'grpc_response_status="0"}})'),
        "grpc_nf": total(f'sum(istio_requests_total{{{w},grpc_response_status="5"}})'),
        "hist": total(f'sum(istio_request_duration_milliseconds_count{{{w}}})'),
        "mtls_up": total(f'sum(istio_tcp_received_bytes_total{{reporter="destination",'
                         f'destination_workload="sink",connection_security_policy="mutual_tls"}})'),
        "plain_in": total(f'sum(istio_tcp_connections_closed_total{{reporter="destination",'
                          f'destination_service="{TCPSVC}",connection_security_policy!="mutual_tls"}})'),
        "plain_out": total('sum(istio_tcp_connections_closed_total{reporter="source",'
                           'source_workload="client",destination_workload="unknown"})'),
    }
    want = {"h200": c["h200"], "h503": c["h503"], "grpc_ok": c["grpc_ok"], "grpc_nf": c["grpc_nf"],
            "hist": c["h200"] + c["h503"] + c["grpc_ok"] + c["grpc_nf"],
            "mtls_up": c["mtls"] * UP, "plain_in": c["plain_in"], "plain_out": c["plain_out"]}
    check(got == want, f"Prometheus totals equal what was sent: {got} (want {want})")


def _get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


if __name__ == "__main__":
    sys.exit(main())
