#!/usr/bin/env python3
"""Waypoint connection pools on real network namespaces (issue 17 item 5:
the connectionPool fields that shape upstream connections, retries across
localities, PASSTHROUGH).

client pod (node 1, captured) -> agent node-1 ==HBONE==> waypoint pod
(node 2, locality r1/z1) ==HBONE==> agent node-2 -> one echo backend per
service (pool-*), near (r1/z1) and far (r1/z2). The backends count the
upstream connections they accept, by protocol (/__stats).

  - idle  http.idleTimeout 1s: two requests on one client connection share
          one upstream HTTP/1.1 connection; after 2.3s idle the next one
          needs a new one; ambit_waypoint_upstream_cx_idle_timeout_total;
  - upg   h2UpgradePolicy UPGRADE (+ idleTimeout 1s): HTTP/1.1 requests
          reach the backend as HTTP/2 (GET, POST body, streamed response),
          on one h2 session until it idles out;
  - mcs   maxConcurrentStreams 2: 6 concurrent h2c streams → 3 sessions;
  - lim   maxConnections 1 + http1MaxPendingRequests 1 + maxConcurrentStreams
          2 on HTTP/2: 6 concurrent streams → 3×200 (one waited), 3×503 UO,
          counted per cluster; one upstream session;
  - rpc   maxRequestsPerConnection 2 on HTTP/2: 6 requests → 3 sessions;
  - tcp   tcp.idleTimeout 1s: a silent TCP-relayed connection is closed
          after ~1s; ambit_waypoint_tcp_idle_timeout_total;
  - loc   retries (3 × on 503) over near/far with locality priorities:
          without retryRemoteLocalities all 4 tries stay on near; with it
          tries 3-4 go to far (Envoy's previous_priorities, frequency 2);
  - pt    PASSTHROUGH on a service: LEAST_REQUEST fallback, counted.
"""
import argparse
import http.client
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, in_netns, require_root  # noqa: E402
from ambit_env import AmbitEnv, ROOT  # noqa: E402
from waypoint_env import WaypointPod, echo_stats, metric_sum, run_client  # noqa: E402

BACKEND = os.path.join(ROOT, "tests", "support", "echo_backend.py")
PY = "/usr/bin/python3"
VIPS = {"idle": "10.96.0.80", "upg": "10.96.0.81", "mcs": "10.96.0.82", "lim": "10.96.0.83",
        "rpc": "10.96.0.84", "tcpidle": "10.96.0.85", "loc": "10.96.0.86", "pt": "10.96.0.87"}
# backend pod → the services it serves
PODS = {"pool-a": ["idle", "pt"], "pool-b": ["upg"], "pool-c": ["mcs"], "pool-d": ["lim"],
        "pool-e": ["rpc"], "pool-f": ["tcpidle"], "near": ["loc"], "far": ["loc"]}
ZONES = {"far": "z2"}
FAILURES = []


def cluster(svc, port=80):
    return f"inbound-vip|{port}|http|{svc}.demo.svc.cluster.local"


def dr(host, tp):
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": host, "namespace": "demo"},
            "spec": {"host": host, "trafficPolicy": tp}}


def docs():
    retries = {"attempts": 3, "retryOn": "503"}
    return [
        dr("idle", {"connectionPool": {"http": {"idleTimeout": "1s"}}}),
        dr("upg", {"connectionPool": {"http": {"idleTimeout": "1s",
                                               "h2UpgradePolicy": "UPGRADE"}}}),
        dr("mcs", {"connectionPool": {"http": {"maxConcurrentStreams": 2}}}),
        dr("lim", {"connectionPool": {"tcp": {"maxConnections": 1},
                                      "http": {"http1MaxPendingRequests": 1,
                                               "maxConcurrentStreams": 2}}}),
        dr("rpc", {"connectionPool": {"http": {"maxRequestsPerConnection": 2}}}),
        dr("tcpidle", {"connectionPool": {"tcp": {"idleTimeout": "1s"}}}),
        dr("loc", {"outlierDetection": {"consecutive5xxErrors": 0}}),
        dr("pt", {"loadBalancer": {"simple": "PASSTHROUGH"}}),
        {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
         "metadata": {"name": "loc", "namespace": "demo"},
         "spec": {"hosts": ["loc.demo.svc.cluster.local"], "http": [
             {"match": [{"headers": {"x-remote": {"exact": "1"}}}],
              "retries": dict(retries, retryRemoteLocalities=True),
              "route": [{"destination": {"host": "loc.demo.svc.cluster.local"}}]},
             {"retries": retries,
              "route": [{"destination": {"host": "loc.demo.svc.cluster.local"}}]}]}},
    ]


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def keepalive(ns, ip, steps, deadline_s=30.0):
    """On one HTTP/1.1 connection from inside `ns`: each step is (sleep_s,
    method, path, body, headers) → [(status, echo JSON or None)]."""
    def body():
        out = []
        end = time.monotonic() + deadline_s
        c = http.client.HTTPConnection(ip, 80, timeout=10)
        for sleep_s, method, path, data, headers in steps:
            time.sleep(sleep_s)
            if time.monotonic() > end:
                break
            c.request(method, path, body=data, headers=headers or {})
            r = c.getresponse()
            raw = r.read()
            try:
                js = json.loads(raw)
            except ValueError:
                js = {"raw": raw[:200].decode("latin-1")}
            out.append((r.status, js))
        c.close()
        return out
    return in_netns(ns, body)


STATS_CALLS = {}


def stats(pod):
    """The backend's /__stats, its HTTP/1.1 connection count without the
    connections these /__stats calls made themselves (since the last reset)."""
    STATS_CALLS[pod.name] = STATS_CALLS.get(pod.name, 0) + 1
    s = echo_stats(pod)
    c = s.setdefault("connections", {})
    c["http1"] = c.get("http1", 0) - STATS_CALLS[pod.name]
    return s


def conns(pod, kind):
    return stats(pod)["connections"].get(kind, 0)


def paths(pod, path):
    return stats(pod).get("paths", {}).get(path, 0)


def reset(pod):
    def body():
        import urllib.request
        with urllib.request.urlopen(f"http://{pod.ip}:8080/__stats?reset=1", timeout=5) as r:
            r.read()
    in_netns(pod.ns, body)
    STATS_CALLS[pod.name] = 0


def tcp_idle_close(ns, ip, port, limit_s=6.0):
    """Connects, reads the hello line, sends a byte and reads its echo, then
    stays silent; seconds until the connection ends (None: not within limit_s)."""
    def body():
        s = socket.create_connection((ip, port), timeout=5)
        try:
            hello = s.recv(256)
            s.sendall(b"x")
            echo = s.recv(16)
            if not hello.startswith(b"hello from") or not echo:
                return {"error": f"unexpected {hello!r} {echo!r}"}
            t0 = time.monotonic()
            s.settimeout(limit_s)
            try:
                data = s.recv(16)
            except socket.timeout:
                return {"closed_after": None}
            except OSError:
                data = b""
            return {"closed_after": time.monotonic() - t0, "data": data.decode("latin-1")}
        finally:
            s.close()
    return in_netns(ns, body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    require_root()
    with Topology(nodes=2) as topo:
        env = AmbitEnv(topo, args.build)
        cl = env.pod(1, "client", sa="client", labels={"app": "client"})
        wp = WaypointPod(env, node=2)
        for w in env.workloads:
            if w["uid"] == wp.uid:
                w["locality"] = {"region": "r1", "zone": "z1"}
        pods = {}
        for name, svcs in PODS.items():
            ports = {9000: 9000} if name == "pool-f" else {80: 8080}
            pods[name] = env.pod(
                2, name, sa="pool", labels={"app": name},
                services={f"demo/{s}.demo.svc.cluster.local": ports for s in svcs},
                extra={"locality": {"region": "r1", "zone": ZONES.get(name, "z1")}})
        http_port = [{"port": 80, "targetPort": 8080, "appProtocol": "http", "name": "http"}]
        tcp_port = [{"port": 9000, "targetPort": 9000, "appProtocol": "tcp", "name": "tcp"}]
        for name, vip in VIPS.items():
            env.service(name, vip=vip, ports=tcp_port if name == "tcpidle" else http_port,
                        extra=wp.use())
        procs = []
        for name, p in pods.items():
            listen = ["--tcp", "9000", "--http", "8080"] if name == "pool-f" else ["--http", "8080"]
            procs.append(topo.spawn(p.ns, [PY, BACKEND, "--name", name, "--namespace", "demo",
                                           *listen]))
        for b in procs:
            topo.wait_line(b, "ready", timeout=15)
        env.extra_docs = docs()
        env.start()
        wp.start()
        try:
            run_checks(topo, wp, cl, pods)
        finally:
            code = wp.stop()
            check(code == 0, f"waypoint exits 0 on SIGTERM (got {code})")
            if FAILURES:
                print("---- waypoint log (tail) ----\n" + "\n".join(wp.log().splitlines()[-60:]))
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)" if FAILURES else "all waypoint pool checks passed",
          flush=True)
    return 1 if FAILURES else 0


def run_checks(topo, wp, cl, pods):
    dump = wp.config_dump()
    res = {c["cluster"]: c.get("connectionPool", {}) for c in dump.get("resilience", [])}
    check(res.get(cluster("idle"), {}).get("httpIdleTimeoutMs") == 1000 and
          res.get(cluster("upg"), {}).get("h2UpgradePolicy") == "UPGRADE" and
          res.get(cluster("upg"), {}).get("upstreamHttp2ForHttp1") is True and
          res.get(cluster("mcs"), {}).get("maxConcurrentStreams") == 2,
          f"/config_dump shows the pool settings ({json.dumps(res)[:600]})")
    tcp_cluster = [k for k in res if "tcpidle" in k]
    check(len(tcp_cluster) == 1 and res[tcp_cluster[0]].get("tcpIdleTimeoutMs") == 1000,
          f"/config_dump: tcp idleTimeout 1s ({tcp_cluster})")
    findings = [f for f in dump.get("findings", []) if "connectionPool" in f or "retries" in f]
    check(not findings, f"no findings for the applied fields ({findings})")

    # 1. http.idleTimeout on HTTP/1.1 and on upgraded (h2) upstreams.
    steps = [(0, "GET", "/", None, None), (0.2, "GET", "/", None, None),
             (2.3, "GET", "/", None, None)]
    a, b = pods["pool-a"], pods["pool-b"]
    out = {}
    t = threading.Thread(target=lambda: out.update(upg=keepalive(cl.ns, VIPS["upg"], steps)))
    t.start()
    idle = keepalive(cl.ns, VIPS["idle"], steps)
    t.join(40)
    upg = out.get("upg", [])
    check([s for s, _ in idle] == [200, 200, 200], f"idle: 3×200 ({[s for s, _ in idle]})")
    check(conns(a, "http1") == 2,
          f"idle: 2 upstream connections for 3 requests (reused once, closed idle) "
          f"({stats(a)['connections']})")
    check([s for s, _ in upg] == [200, 200, 200] and
          all(js.get("proto") == "HTTP/2" for _, js in upg),
          f"upg: HTTP/1.1 requests arrive as HTTP/2 ({[(s, js.get('proto')) for s, js in upg]})")
    check(conns(b, "h2") == 2 and conns(b, "http1") == 0,
          f"upg: one h2 session reused, then a new one after the idle timeout "
          f"({stats(b)['connections']})")
    text = wp.metrics()
    n_idle = metric_sum(text, "ambit_waypoint_upstream_cx_idle_timeout_total",
                        cluster=cluster("idle"))
    n_upg = metric_sum(text, "ambit_waypoint_upstream_cx_idle_timeout_total",
                       cluster=cluster("upg"))
    check(n_idle >= 1 and n_upg >= 1,
          f"ambit_waypoint_upstream_cx_idle_timeout_total per cluster (idle {n_idle}, upg {n_upg})")

    # 2. more of the upgrade: a POST body, a streamed (chunked) response.
    more = keepalive(cl.ns, VIPS["upg"], [
        (0, "POST", "/post", b"x" * 1000, {"content-type": "text/plain"}),
        (0, "GET", "/stream?n=3&interval=10ms", None, None),
        (0, "GET", "/status/404", None, None)])
    check(len(more) == 3 and more[0][0] == 200 and more[0][1].get("body_bytes") == 1000 and
          more[0][1].get("proto") == "HTTP/2",
          f"upg: a POST body goes up as HTTP/2 DATA ({more[:1]})")
    check(len(more) == 3 and more[1][0] == 200 and more[1][1].get("raw", "").count("\n") == 3,
          f"upg: a streamed h2 response comes back whole as HTTP/1.1 ({more[1:2]})")
    check(len(more) == 3 and more[2][0] == 404, f"upg: statuses pass ({[s for s, _ in more]})")

    # 3. maxConcurrentStreams 2: 6 concurrent streams need 3 sessions.
    r = run_client(topo, cl, "h2-concurrent", "--url", f"http://{VIPS['mcs']}/?delay=500ms",
                   "--count", "6", "--streams", "6")
    c = pods["pool-c"]
    check(r.get("statuses") == {"200": 6} and conns(c, "h2") == 3,
          f"mcs: 6 concurrent streams → 3 upstream sessions ({r.get('statuses')}, "
          f"{stats(c)['connections']})")

    # 4. maxConnections 1 + pending 1 on HTTP/2.
    r = run_client(topo, cl, "h2-concurrent", "--url", f"http://{VIPS['lim']}/?delay=1s",
                   "--count", "6", "--streams", "6")
    d = pods["pool-d"]
    check(r.get("statuses") == {"200": 3, "503": 3},
          f"lim: 6 concurrent h2 streams → 3×200 (2 streams + 1 pending), 3×503 UO "
          f"({r.get('statuses')}, {r.get('errors')})")
    check(conns(d, "h2") == 1, f"lim: one upstream session ({stats(d)['connections']})")
    text = wp.metrics()
    n_uo = metric_sum(text, "ambit_waypoint_upstream_rq_pending_overflow_total",
                      cluster=cluster("lim"))
    flagged = metric_sum(text, "istio_requests_total", response_flags="UO",
                         destination_service="lim.demo.svc.cluster.local")
    check(n_uo == 3 and flagged == 3,
          f"lim: overflow counted per cluster ({n_uo}) and flagged UO ({flagged})")

    # 5. maxRequestsPerConnection 2 on HTTP/2.
    r = run_client(topo, cl, "h2-concurrent", "--url", f"http://{VIPS['rpc']}/",
                   "--count", "6", "--streams", "1")
    e = pods["pool-e"]
    check(r.get("statuses") == {"200": 6} and conns(e, "h2") == 3,
          f"rpc: 6 requests, 2 per session → 3 sessions ({r.get('statuses')}, "
          f"{stats(e)['connections']})")

    # 6. tcp.idleTimeout on the TCP relay.
    t = tcp_idle_close(cl.ns, VIPS["tcpidle"], 9000)
    after = t.get("closed_after")
    check(after is not None and 0.8 <= after <= 3.0,
          f"tcp: a silent relayed connection is closed after ~1s ({t})")
    n_tcp = metric_sum(wp.metrics(), "ambit_waypoint_tcp_idle_timeout_total")
    check(n_tcp == 1, f"ambit_waypoint_tcp_idle_timeout_total counts it ({n_tcp})")

    # 7. retries and locality priorities.
    near, far = pods["near"], pods["far"]
    reset(near)
    reset(far)
    plain = keepalive(cl.ns, VIPS["loc"], [(0, "GET", "/status/503", None, None)])
    n_near, n_far = paths(near, "/status/503"), paths(far, "/status/503")
    check([s for s, _ in plain] == [503] and (n_near, n_far) == (4, 0),
          f"loc: without retryRemoteLocalities all 4 tries stay on the local priority "
          f"(near {n_near}, far {n_far})")
    reset(near)
    reset(far)
    remote = keepalive(cl.ns, VIPS["loc"], [(0, "GET", "/status/503", None, {"x-remote": "1"})])
    n_near, n_far = paths(near, "/status/503"), paths(far, "/status/503")
    check([s for s, _ in remote] == [503] and (n_near, n_far) == (2, 2),
          f"loc: with retryRemoteLocalities tries 3-4 go to the next priority "
          f"(near {n_near}, far {n_far})")

    # 8. PASSTHROUGH on a service: LEAST_REQUEST fallback, counted.
    pt = keepalive(cl.ns, VIPS["pt"], [(0, "GET", "/", None, None)] * 3)
    n_pt = metric_sum(wp.metrics(), "ambit_waypoint_route_outcomes_total",
                      outcome="lb_passthrough_fallback")
    check([s for s, _ in pt] == [200] * 3 and n_pt == 3,
          f"pt: PASSTHROUGH serves through the fallback, counted ({[s for s, _ in pt]}, {n_pt})")


if __name__ == "__main__":
    sys.exit(main())
