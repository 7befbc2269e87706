#!/usr/bin/env python3
"""Waypoint load balancing on real network namespaces (issue 17 item 4).

client pod (node 1, captured) -> agent node-1 ==HBONE==> waypoint pod
(node 2, locality r1/z1) ==HBONE==> agent node-2 -> lb-a, lb-b, lb-c
(r1/z1), far (r1/z2), slow (every answer waits 150 ms).

One topology, one service per policy (DestinationRule only, no
VirtualService: the service's default route):
  - rr   ROUND_ROBIN: 1,200 requests on one connection, exactly 400 each;
  - rnd  RANDOM: 1,200 requests, every endpoint 25-42 %;
  - lr   no DestinationRule (Istio's default LEAST_REQUEST) over lb-a, lb-b,
         slow: 1,000 requests as 20 concurrent h2 streams, slow gets few;
  - rh   ring hash on header x-user, mg Maglev on query parameter user:
         500 keys twice (1,000 requests): one key, one endpoint; then lb-c
         leaves both services: <= 1/3 + 5 % of the keys move, and only
         lb-c's keys for the ring;
  - ck   httpCookie with ttl: the first answer sets the cookie, the same
         client sticks to one endpoint with it;
  - loc  outlierDetection + localityLbSetting over lb-a (z1) and far (z2):
         every request on lb-a; lb-a unhealthy → every request on far;
  - bad input (a non-prime Maglev table, an unknown `simple`) is rejected
    with file:line and the last good config keeps serving.
"""
import argparse
import copy
import http.client
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, in_netns, require_root  # noqa: E402
from ambit_env import AmbitEnv, ROOT  # noqa: E402
from waypoint_env import WaypointPod  # noqa: E402

BACKEND = os.path.join(ROOT, "tests", "support", "echo_backend.py")
CLIENTS = os.path.join(ROOT, "tests", "support", "waypoint_clients.py")
PY = "/usr/bin/python3"
VIPS = {"rr": "10.96.0.60", "rnd": "10.96.0.61", "lr": "10.96.0.62", "rh": "10.96.0.63",
        "mg": "10.96.0.64", "ck": "10.96.0.65", "loc": "10.96.0.66"}
MEMBERS = {"rr": ["lb-a", "lb-b", "lb-c"], "rnd": ["lb-a", "lb-b", "lb-c"],
           "lr": ["lb-a", "lb-b", "slow"], "rh": ["lb-a", "lb-b", "lb-c"],
           "mg": ["lb-a", "lb-b", "lb-c"], "ck": ["lb-a", "lb-b", "lb-c"],
           "loc": ["lb-a", "far"]}
ZONES = {"lb-a": "z1", "lb-b": "z1", "lb-c": "z1", "far": "z2", "slow": "z1"}
FAILURES = []


def dr(name, lb, extra=None):
    tp = {"loadBalancer": lb}
    tp.update(extra or {})
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": "demo"},
            "spec": {"host": name, "trafficPolicy": tp}}


def docs(maglev_size=65537, simple="ROUND_ROBIN"):
    return [
        dr("rr", {"simple": simple}),
        dr("rnd", {"simple": "RANDOM"}),
        dr("rh", {"consistentHash": {"httpHeaderName": "x-user",
                                     "ringHash": {"minimumRingSize": 1024}}}),
        dr("mg", {"consistentHash": {"httpQueryParameterName": "user",
                                     "maglev": {"tableSize": maglev_size}}}),
        dr("ck", {"consistentHash": {"httpCookie": {"name": "sticky", "path": "/",
                                                    "ttl": "60s"}}}),
        dr("loc", {"simple": "ROUND_ROBIN",
                   "localityLbSetting": {"enabled": True,
                                         "failover": [{"from": "r1", "to": "r2"}]}},
           {"outlierDetection": {"consecutive5xxErrors": 5, "interval": "10s"}}),
    ]


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


def keepalive(ns, ip, requests, deadline_s=60.0):
    """[(path, headers)] on one HTTP/1.1 connection from inside `ns` →
    [(status, pod, set-cookie)]; bounded by count and `deadline_s`."""
    import time

    def body():
        out = []
        end = time.monotonic() + deadline_s
        c = http.client.HTTPConnection(ip, 80, timeout=10)
        for path, headers in requests:
            if time.monotonic() > end:
                break
            c.request("GET", path, headers=headers)
            r = c.getresponse()
            r.read()
            out.append((r.status, r.getheader("x-echo-pod", "-"), r.getheader("set-cookie")))
        c.close()
        return out
    return in_netns(ns, body)


def metric_sum(text, name, **labels):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def counts(results):
    out = {}
    for status, pod, _ in results:
        key = pod if status == 200 else f"status {status}"
        out[key] = out.get(key, 0) + 1
    return out


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
        for name, zone in ZONES.items():
            svcs = {f"demo/{s}.demo.svc.cluster.local": {80: 8080}
                    for s, members in MEMBERS.items() if name in members}
            pods[name] = env.pod(2, name, sa="lb", labels={"app": name}, services=svcs,
                                 extra={"locality": {"region": "r1", "zone": zone}})
        http_port = [{"port": 80, "targetPort": 8080, "appProtocol": "http", "name": "http"}]
        for name, vip in VIPS.items():
            env.service(name, vip=vip, ports=http_port, extra=wp.use())
        for name, p in pods.items():
            extra = ["--delay", "150ms"] if name == "slow" else []
            b = topo.spawn(p.ns, [PY, BACKEND, "--name", name, "--namespace", "demo",
                                  "--http", "8080", *extra])
            topo.wait_line(b, "ready", timeout=15)
        env.extra_docs = docs()
        env.start()
        wp.start()
        try:
            run_checks(topo, env, wp, cl)
        finally:
            code = wp.stop()
            check(code == 0, f"waypoint exits 0 on SIGTERM (got {code})")
            if FAILURES:
                print("---- waypoint log (tail) ----\n" + "\n".join(wp.log().splitlines()[-60:]))
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)" if FAILURES else "all waypoint lb checks passed",
          flush=True)
    return 1 if FAILURES else 0


def reload(env, wp, mark_needle="config applied"):
    mark = len(wp.log())
    env.write_config()
    wp.wait_log(mark_needle, timeout=10, after=mark)
    return wp.log()[mark:]


def hashed_pods(cl, vip, keys, header):
    reqs = []
    for k in keys:
        if header:
            reqs.append(("/", {"x-user": k}))
        else:
            reqs.append((f"/?user={k}", {}))
    res = keepalive(cl.ns, vip, reqs)
    return [(k, r[1] if r[0] == 200 else None) for k, r in zip(keys, res)]


def run_checks(topo, env, wp, cl):
    # ROUND_ROBIN: exact over one connection (one worker's cursor).
    res = keepalive(cl.ns, VIPS["rr"], [("/", {})] * 1200)
    c = counts(res)
    check(c == {"lb-a": 400, "lb-b": 400, "lb-c": 400},
          f"ROUND_ROBIN: 1,200 requests split exactly 400/400/400 ({c})")

    # RANDOM.
    res = keepalive(cl.ns, VIPS["rnd"], [("/", {})] * 1200)
    c = counts(res)
    check(set(c) == {"lb-a", "lb-b", "lb-c"} and all(300 <= v <= 504 for v in c.values()),
          f"RANDOM: 1,200 requests, every endpoint 25-42 % ({c})")

    # LEAST_REQUEST (no DestinationRule): the slow endpoint holds requests,
    # so its peers take most.
    r = client(topo, cl, "h2-concurrent", "--url", f"http://{VIPS['lr']}/", "--count", "1000",
               "--streams", "20", "--deadline", "60")
    pods = r.get("pods", {})
    slow = pods.get("slow", 0)
    check(r.get("statuses") == {"200": 1000} and slow < 150 and
          pods.get("lb-a", 0) > 3 * slow and pods.get("lb-b", 0) > 3 * slow,
          f"LEAST_REQUEST (default): 1,000 requests, the 150 ms endpoint gets few ({pods}, "
          f"{r.get('statuses')}, {r.get('elapsed_s')} s)")

    # Ring hash (header) and Maglev (query): one key, one endpoint.
    keys = [f"user-{i}" for i in range(500)]
    before = {}
    for svc, header in (("rh", True), ("mg", False)):
        first = hashed_pods(cl, VIPS[svc], keys, header)
        second = hashed_pods(cl, VIPS[svc], keys, header)
        stable = sum(1 for (k, a), (_, b) in zip(first, second) if a is not None and a == b)
        spread = {}
        for _, p in first:
            spread[p] = spread.get(p, 0) + 1
        check(stable == len(keys) and set(spread) == {"lb-a", "lb-b", "lb-c"},
              f"{svc}: 500 keys asked twice (1,000 requests) each stay on one endpoint "
              f"({stable}/500 stable, spread {spread})")
        before[svc] = dict(first)

    # lb-c leaves rh and mg: at most 1/3 + 5 % of the keys move.
    saved = copy.deepcopy(env.workloads)
    for w in env.workloads:
        if w["name"] == "lb-c":
            for s in ("rh", "mg"):
                w["services"].pop(f"demo/{s}.demo.svc.cluster.local", None)
    reload(env, wp)
    for svc, header in (("rh", True), ("mg", False)):
        after = dict(hashed_pods(cl, VIPS[svc], keys, header))
        moved = sum(1 for k in keys if after[k] != before[svc][k])
        others_moved = sum(1 for k in keys if before[svc][k] != "lb-c" and
                           after[k] != before[svc][k])
        on_c = sum(1 for k in keys if after[k] == "lb-c")
        ok = moved <= len(keys) * (1 / 3 + 0.05) and on_c == 0
        if svc == "rh":
            ok = ok and others_moved == 0
        check(ok, f"{svc}: removing 1 of 3 endpoints moves {moved}/500 keys "
                  f"({others_moved} not from lb-c; bound {len(keys) * (1 / 3 + 0.05):.0f})")
    env.workloads = saved
    reload(env, wp)

    # httpCookie with ttl: issued when absent, then sticky.
    sticky_ok, issued_ok, spread = 0, 0, set()
    for i in range(40):
        res = keepalive(cl.ns, VIPS["ck"], [("/", {})])
        cookie = res[0][2] or ""
        if cookie.startswith('sticky="') and "Max-Age=60" in cookie and "Path=/" in cookie:
            issued_ok += 1
        value = cookie.split(";", 1)[0]
        follow = keepalive(cl.ns, VIPS["ck"], [("/", {"cookie": value})] * 25)
        got = {p for _, p, _ in follow}
        if got == {res[0][1]} and all(sc is None for _, _, sc in follow):
            sticky_ok += 1
        spread.add(res[0][1])
    check(issued_ok == 40 and sticky_ok == 40 and len(spread) >= 2,
          f"httpCookie ttl 60s: 40 clients get Set-Cookie ({issued_ok}), then 25 requests "
          f"each (1,000) stay on their endpoint ({sticky_ok}/40); clients spread over {spread}")

    # Locality failover.
    res = keepalive(cl.ns, VIPS["loc"], [("/", {})] * 500)
    c = counts(res)
    check(c == {"lb-a": 500}, f"locality: every request on the waypoint's zone ({c})")
    for w in env.workloads:
        if w["name"] == "lb-a":
            w["status"] = "Unhealthy"
    reload(env, wp)
    res = keepalive(cl.ns, VIPS["loc"], [("/", {})] * 500)
    c = counts(res)
    check(c == {"far": 500}, f"locality: the local endpoint unhealthy → the next zone ({c})")
    text = wp.metrics()
    fo = metric_sum(text, "ambit_waypoint_route_outcomes_total", outcome="lb_locality_failover")
    ck = metric_sum(text, "ambit_waypoint_route_outcomes_total", outcome="lb_hash_cookie_issued")
    check(fo >= 500 and ck >= 40, f"failover picks ({fo}) and issued cookies ({ck}) are counted")
    for w in env.workloads:
        if w["name"] == "lb-a":
            w.pop("status", None)
    reload(env, wp)

    # config_dump shows each cluster's effective policy.
    dump = wp.config_dump()
    clusters = {c["name"]: c for c in dump.get("clusters", [])}
    lb = clusters.get("inbound-vip|80|http|mg.demo.svc.cluster.local", {}).get("loadBalancer", {})
    check(lb.get("policy") == "MAGLEV" and lb.get("hashKey") == "httpQueryParameterName" and
          lb.get("tableSize") == 65537,
          f"config_dump shows the Maglev cluster's policy ({lb})")
    lb = clusters.get("inbound-vip|80|http|lr.demo.svc.cluster.local", {}).get("loadBalancer", {})
    check(lb.get("policy") == "LEAST_REQUEST", f"and the default elsewhere ({lb})")

    # Bad input: rejected with file:line, last good config stays.
    for bad, needle in ((docs(maglev_size=1000), "not a prime number"),
                        (docs(simple="FASTEST"), "unknown value 'FASTEST'")):
        env.extra_docs = bad
        text = reload(env, wp, "config rejected")
        check(needle in text and env.config_path + ":" in text,
              f"bad input rejected with file:line ({needle}: {text.strip()[-200:]})")
        res = keepalive(cl.ns, VIPS["rr"], [("/", {})] * 300)
        c = counts(res)
        check(c == {"lb-a": 100, "lb-b": 100, "lb-c": 100},
              f"the last good config keeps serving ROUND_ROBIN ({c})")
    env.extra_docs = docs()


if __name__ == "__main__":
    sys.exit(main())
