#!/usr/bin/env python3
"""Waypoint circuit breaking and outlier detection on real network namespaces
(issue 17 items 5-6).

client pod (node 1, captured) -> agent node-1 ==HBONE==> waypoint pod (node 2)
==HBONE==> agent node-2 -> reviews-v1 (echo backend) / payments-good (echo
backend) + payments-bad (answers 500 to everything).

Checks, with tools/examples/reviews-destination.yaml and
tools/examples/payments-circuit-breaker.yaml loaded verbatim:
  - reviews: 20 concurrent slow HTTP/1.1 requests → exactly 15 answered 200
    (10 connections + 5 pending) and 5 answered 503 UO at once; 30 h2c
    streams → exactly 20 200 and 10 503 UO (http2MaxRequests); counted in
    ambit_waypoint_upstream_rq_pending_overflow_total and istio_requests_total
    {response_flags="UO"};
  - payments: the bad endpoint answers exactly 5 requests (5 consecutive 5xx)
    and is ejected (config_dump, metrics); the good one answering 5xx too is
    never ejected (maxEjectionPercent 50); 3 concurrent → one 503 UO;
  - payments with baseEjectionTime 2s: ejected after 5, still out at 1.2s,
    back after 2s, a repeated ejection lasts longer;
  - bad input (percentage > 100, negative count, bad duration) rejects the
    change with file:line; the last good config stays.
"""
import argparse
import http.client
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, in_netns, require_root  # noqa: E402
from ambit_env import AmbitEnv, ROOT  # noqa: E402
from waypoint_env import WaypointPod  # noqa: E402

BACKEND = os.path.join(ROOT, "tests", "support", "echo_backend.py")
CLIENTS = os.path.join(ROOT, "tests", "support", "waypoint_clients.py")
EXAMPLES = os.path.join(ROOT, "tools", "examples")
PY = "/usr/bin/python3"
REVIEWS, PAYMENTS = "10.96.0.60", "10.96.0.61"
REVIEWS_CLUSTER = "inbound-vip|80|http|reviews.demo.svc.cluster.local"
PAYMENTS_CLUSTER = "inbound-vip|80|http|payments.demo.svc.cluster.local"
FAILURES = []

# A pod that answers 500 to every request (a broken payments replica).
BAD_SERVER = r'''
import http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b'{"pod": "payments-bad"}'
        self.send_response(500)
        self.send_header("x-echo-pod", "payments-bad")
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("0.0.0.0", 8080), H)
print("ready", flush=True)
s.serve_forever()
'''


def example(name):
    with open(os.path.join(EXAMPLES, name)) as f:
        return f.read()


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def client(topo, pod, *args, timeout=120):
    r = topo.ns_exec(pod.ns, [PY, CLIENTS, *args], check=False, timeout=timeout)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"ok": False, "raw": r.stdout[-2000:], "stderr": r.stderr[-2000:]}


def metric_sum(text, name, **labels):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def concurrent_http1(ns, ip, path, n, timeout=15):
    """n requests at once, each on its own HTTP/1.1 connection (connected
    inside the pod's netns; the sockets then work from any thread).
    Returns [(status, pod, body, seconds)]."""
    def connect():
        conns = []
        for _ in range(n):
            c = http.client.HTTPConnection(ip, 80, timeout=timeout)
            c.connect()
            conns.append(c)
        return conns
    conns = in_netns(ns, connect)
    out = [None] * n
    go = threading.Barrier(n)

    def one(i):
        go.wait()
        t0 = time.monotonic()
        try:
            conns[i].request("GET", path)
            r = conns[i].getresponse()
            body = r.read()
            out[i] = (r.status, r.getheader("x-echo-pod"), body, time.monotonic() - t0)
        except Exception as e:  # noqa: BLE001 - reported as a result
            out[i] = ("error", str(e), b"", time.monotonic() - t0)
        finally:
            conns[i].close()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    return out


def sequential(ns, ip, path, n):
    """n requests one after another, a fresh connection each; [(status, pod)]."""
    def run():
        res = []
        for _ in range(n):
            c = http.client.HTTPConnection(ip, 80, timeout=10)
            try:
                c.request("GET", path)
                r = c.getresponse()
                r.read()
                res.append((r.status, r.getheader("x-echo-pod")))
            except Exception as e:  # noqa: BLE001
                res.append(("error", str(e)))
            finally:
                c.close()
        return res
    return in_netns(ns, run)


def resilience(wp, cluster):
    for c in wp.config_dump().get("resilience", []):
        if c["cluster"] == cluster:
            return c
    return {}


def endpoint_state(wp, cluster, pod_ip):
    od = resilience(wp, cluster).get("outlierDetection", {})
    for e in od.get("endpoints", []):
        if e["address"].startswith(pod_ip + ":"):
            return e
    return {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    require_root()
    with Topology(nodes=2) as topo:
        env = AmbitEnv(topo, args.build)
        cl = env.pod(1, "productpage", sa="productpage", labels={"app": "productpage"})
        reviews = env.pod(2, "reviews-v1", sa="reviews",
                          labels={"app": "reviews", "version": "v1"},
                          services={"demo/reviews.demo.svc.cluster.local": {80: 8080}})
        good = env.pod(2, "payments-good", sa="payments", labels={"app": "payments"},
                       services={"demo/payments.demo.svc.cluster.local": {80: 8080}})
        bad = env.pod(2, "payments-bad", sa="payments", labels={"app": "payments"},
                      services={"demo/payments.demo.svc.cluster.local": {80: 8080}})
        wp = WaypointPod(env, node=2)
        http_port = [{"port": 80, "targetPort": 8080, "appProtocol": "http", "name": "http"}]
        env.service("reviews", vip=REVIEWS, ports=http_port, extra=wp.use())
        env.service("payments", vip=PAYMENTS, ports=http_port, extra=wp.use())
        for p in (reviews, good):
            b = topo.spawn(p.ns, [PY, BACKEND, "--name", p.name, "--namespace", "demo",
                                  "--http", "8080"])
            topo.wait_line(b, "ready", timeout=15)
        b = topo.spawn(bad.ns, [PY, "-c", BAD_SERVER])
        topo.wait_line(b, "ready", timeout=15)
        env.extra_docs = [example("reviews-destination.yaml"),
                          example("payments-circuit-breaker.yaml")]
        env.start()
        wp.start()
        try:
            run_checks(topo, env, wp, cl, bad)
        finally:
            code = wp.stop()
            check(code == 0, f"waypoint exits 0 on SIGTERM (got {code})")
            if FAILURES:
                print("---- waypoint log (tail) ----\n" + "\n".join(wp.log().splitlines()[-60:]))
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)" if FAILURES else "all waypoint resilience checks passed",
          flush=True)
    return 1 if FAILURES else 0


def run_checks(topo, env, wp, cl, bad):
    dump = wp.config_dump()
    check(not [f for f in dump.get("findings", []) if "DestinationRule" in f],
          f"the two examples compile without findings ({dump.get('findings')})")
    rv = resilience(wp, REVIEWS_CLUSTER)
    check(rv.get("connectionPool", {}).get("maxConnections") == 10 and
          rv["connectionPool"].get("http1MaxPendingRequests") == 5 and
          rv["connectionPool"].get("http2MaxRequests") == 20 and
          rv.get("outlierDetection", {}).get("maxEjectionPercent") == 50,
          f"/config_dump shows reviews' limits ({rv.get('connectionPool')})")

    # 1. reviews over HTTP/1.1: 10 busy connections + 5 pending, the rest UO.
    res = concurrent_http1(cl.ns, REVIEWS, "/?delay=1s", 20)
    ok = [r for r in res if r[0] == 200]
    uo = [r for r in res if r[0] == 503]
    check(len(ok) == 15 and len(uo) == 5,
          f"20 concurrent HTTP/1.1 → 15×200, 5×503 ({sorted(str(r[0]) for r in res)})")
    check(all(b"overflow" in r[2] for r in uo) and all(r[3] < 0.5 for r in uo),
          f"the 503s are overflow answers given at once "
          f"({[(round(r[3], 3), r[2][:60]) for r in uo]})")
    slow = sorted(r[3] for r in ok)
    check(len(slow) == 15 and slow[-1] >= 1.8 and slow[9] < 1.8,
          f"5 pending requests waited for a connection (seconds {[round(s, 2) for s in slow]})")
    text = wp.metrics()
    n_uo = metric_sum(text, "ambit_waypoint_upstream_rq_pending_overflow_total",
                      cluster=REVIEWS_CLUSTER)
    check(n_uo == 5, f"ambit_waypoint_upstream_rq_pending_overflow_total counts 5 ({n_uo})")
    lines = [ln for ln in wp.log().splitlines() if "response_flags=UO" in ln]
    check(len(lines) == 5 and all('path="/?delay=1s"' in ln for ln in lines),
          f"one access log line per overflowed request ({len(lines)})")
    flagged = metric_sum(text, "istio_requests_total", response_flags="UO",
                         destination_service="reviews.demo.svc.cluster.local")
    check(flagged == 5, f"istio_requests_total{{response_flags=\"UO\"}} counts 5 ({flagged})")
    inflight = resilience(wp, REVIEWS_CLUSTER)["connectionPool"]["inFlight"]
    check(inflight == {"requests": 0, "connections": 0, "pending": 0, "retries": 0},
          f"every slot is released afterwards ({inflight})")

    # 2. reviews over h2c: http2MaxRequests 20 of 30 streams.
    r = client(topo, cl, "h2-concurrent", "--url", f"http://{REVIEWS}/?delay=1s",
               "--count", "30", "--streams", "30")
    check(r.get("statuses") == {"200": 20, "503": 10},
          f"30 concurrent h2c streams → 20×200, 10×503 UO ({r.get('statuses')}, "
          f"{r.get('errors')})")

    # 3. payments: the bad endpoint is ejected after exactly 5 5xx.
    res = sequential(cl.ns, PAYMENTS, "/", 30)
    from_bad = [x for x in res if x[1] == "payments-bad"]
    check(len(from_bad) == 5 and all(x[0] == 500 for x in from_bad) and
          all(x[0] == 200 for x in res if x[1] != "payments-bad"),
          f"payments-bad answers exactly 5 of 30 requests, then gets none "
          f"({[x[0] for x in res]})")
    e = endpoint_state(wp, PAYMENTS_CLUSTER, bad.ip)
    check(e.get("ejected") is True and 25000 < e.get("ejectedForMs", 0) <= 30000,
          f"/config_dump: payments-bad ejected for ~30s ({e})")
    text = wp.metrics()
    check(metric_sum(text, "ambit_waypoint_outlier_ejections_total",
                     cluster=PAYMENTS_CLUSTER) == 1 and
          metric_sum(text, "ambit_waypoint_outlier_ejected_endpoints",
                     cluster=PAYMENTS_CLUSTER) == 1,
          "ejections counted (ambit_waypoint_outlier_ejections_total, ..._ejected_endpoints)")
    check("endpoint " + bad.ip in wp.log() and "ejected for 30000ms" in wp.log(),
          "the ejection is logged")
    # The good endpoint failing too is never ejected: 2 of 2 would be 100%.
    res = sequential(cl.ns, PAYMENTS, "/status/503", 12)
    check(all(x == (503, "payments-good") for x in res),
          f"payments-good answering 5xx stays in (maxEjectionPercent 50) ({res})")
    od = resilience(wp, PAYMENTS_CLUSTER).get("outlierDetection", {})
    check(od.get("ejectedNow") == 1, f"still exactly one endpoint ejected ({od.get('ejectedNow')})")
    # maxConnections 1 + http1MaxPendingRequests 1: the third concurrent one overflows.
    res = concurrent_http1(cl.ns, PAYMENTS, "/?delay=500ms", 3)
    check(sorted(r[0] for r in res) == [200, 200, 503],
          f"payments: 3 concurrent → 2×200, 1×503 UO ({[r[0] for r in res]})")

    # 4. baseEjectionTime 2s: out for 2s, back, longer the second time.
    fast = example("payments-circuit-breaker.yaml").replace("baseEjectionTime: 30s",
                                                            "baseEjectionTime: 2s")
    fast = fast.replace("interval: 10s", "interval: 5s")
    mark = len(wp.log())
    env.extra_docs[1] = fast
    env.write_config()
    wp.wait_log("config applied", timeout=5, after=mark)
    e = endpoint_state(wp, PAYMENTS_CLUSTER, bad.ip)
    check(not e, f"a changed outlierDetection starts without ejections ({e})")
    res = sequential(cl.ns, PAYMENTS, "/", 20)
    ejected_at = time.monotonic()
    check(len([x for x in res if x[1] == "payments-bad"]) == 5,
          f"ejected again after 5 5xx ({[x[0] for x in res]})")
    e = endpoint_state(wp, PAYMENTS_CLUSTER, bad.ip)
    check(e.get("ejected") is True and 0 < e.get("ejectedForMs", 0) <= 2000,
          f"ejected for baseEjectionTime 2s ({e})")
    time.sleep(max(0.0, ejected_at + 1.2 - time.monotonic()))
    res = sequential(cl.ns, PAYMENTS, "/", 6)
    check(not [x for x in res if x[1] == "payments-bad"], f"still out at 1.2s ({res})")
    time.sleep(max(0.0, ejected_at + 2.3 - time.monotonic()))
    res = sequential(cl.ns, PAYMENTS, "/", 20)
    n_bad = len([x for x in res if x[1] == "payments-bad"])
    check(n_bad == 5, f"back in service after 2s: gets requests again until 5 more 5xx "
                      f"({n_bad} of 20)")
    e = endpoint_state(wp, PAYMENTS_CLUSTER, bad.ip)
    check(e.get("ejected") is True and e.get("timesEjected") == 2 and
          2000 < e.get("ejectedForMs", 0) <= 4000,
          f"the second ejection lasts 2 × baseEjectionTime ({e})")

    # 5. Bad input: the change is refused with file:line, the last good stays.
    broken = (fast.replace("maxEjectionPercent: 50", "maxEjectionPercent: 150")
              .replace("maxConnections: 1", "maxConnections: -1")
              .replace("interval: 5s", "interval: soon"))
    mark = len(wp.log())
    env.extra_docs[1] = broken
    env.write_config()
    text = wp.wait_log("config rejected", timeout=5, after=mark)[mark:]
    check(env.config_path + ":" in text and "maxEjectionPercent: 150 is out of range" in text and
          "maxConnections: -1 is out of range" in text and "interval: 'soon'" in text,
          f"the rejection names each bad field with file:line ({text[:600]})")
    od = resilience(wp, PAYMENTS_CLUSTER).get("outlierDetection", {})
    pool = resilience(wp, PAYMENTS_CLUSTER).get("connectionPool", {})
    check(od.get("maxEjectionPercent") == 50 and od.get("baseEjectionTimeMs") == 2000 and
          pool.get("maxConnections") == 1,
          f"the last good policy stays ({od.get('maxEjectionPercent')}, "
          f"{od.get('baseEjectionTimeMs')}, {pool.get('maxConnections')})")
    res = sequential(cl.ns, REVIEWS, "/", 3)
    check(all(x[0] == 200 for x in res), f"traffic still flows ({res})")


if __name__ == "__main__":
    sys.exit(main())
