#!/usr/bin/env python3
"""Waypoint rate limits on real network namespaces (issue 17 item 7).

client pod (node 1, captured) -> agent node-1 ==HBONE==> waypoint (node 2)
==HBONE==> agent node-2 -> backend. The RateLimitService fake
(ambit-fake-rls, the real rls.proto) runs in the waypoint pod on 127.0.0.1.

Checks:
  - RateLimitPolicy, a 10 rps bucket per x-api-key (5 tokens per 500 ms):
    over 10 s at ~30 rps per key, each key gets 100 ± 10 answers 200 and
    the rest 429 `local_rate_limited` with x-ratelimit-* headers; requests
    without the header are never limited; h2c streams share the buckets;
    counters and flag RL;
  - global: the fake says OVER_LIMIT for api_key=blocked → 429, others pass
    (its response header comes back); a fake slower than the 100ms timeout:
    requests pass after ~100 ms, or get 500 RLSE with failureModeDeny; with
    the fake stopped every request passes (fail-open), counted as rls errors;
  - the Istio EnvoyFilter shape (TypedStruct local_ratelimit targeted at the
    waypoint's Gateway): 4 tokens then 429 with x-local-rate-limit: true;
  - bad input: a 10ms fill interval and negative tokens reject the change
    (the last good config keeps limiting); an unknown field is a finding
    with file:line in /config_dump; rateLimits are in /config_dump.
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
PY = "/usr/bin/python3"
LIMITED, GLOBAL, PLAIN = "10.96.0.60", "10.96.0.61", "10.96.0.62"
RLS_ADDR, SLOW_ADDR = "127.0.0.1:18081", "127.0.0.1:18082"
FAILURES = []

POLICIES = """apiVersion: ambit.dev/v1alpha1
kind: RateLimitPolicy
metadata:
  name: api-key-local
  namespace: demo
spec:
  targetRefs:
  - {kind: Service, name: limited}
  descriptor: {header: x-api-key, key: api_key}
  tokenBucket: {maxTokens: 5, tokensPerFill: 5, fillInterval: 500ms}
---
apiVersion: ambit.dev/v1alpha1
kind: RateLimitPolicy
metadata:
  name: api-key-global
  namespace: demo
spec:
  targetRefs:
  - {kind: Service, name: global}
  descriptor: {header: x-api-key, key: api_key}
  global: {domain: production, service: "%s", timeout: 100ms}
---
apiVersion: ambit.dev/v1alpha1
kind: RateLimitPolicy
metadata:
  name: slow-service
  namespace: demo
spec:
  targetRefs:
  - {kind: Service, name: global}
  descriptor: {header: x-slow-key}
  global: {domain: production, service: "%s", timeout: 100ms}
---
apiVersion: ambit.dev/v1alpha1
kind: RateLimitPolicy
metadata:
  name: deny-on-error
  namespace: demo
spec:
  targetRefs:
  - {kind: Service, name: global}
  descriptor: {header: x-strict-key}
  global: {domain: production, service: "%s", timeout: 50ms, failureModeDeny: true}
""" % (RLS_ADDR, SLOW_ADDR, SLOW_ADDR)

ENVOY_FILTER = """apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: filter-local-ratelimit-waypoint
  namespace: demo
spec:
  targetRefs:
  - kind: Gateway
    group: gateway.networking.k8s.io
    name: waypoint
  configPatches:
  - applyTo: HTTP_FILTER
    match:
      context: SIDECAR_INBOUND
      listener:
        filterChain:
          filter:
            name: envoy.filters.network.http_connection_manager
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.local_ratelimit
        typed_config:
          "@type": type.googleapis.com/udpa.type.v1.TypedStruct
          type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
          value:
            stat_prefix: http_local_rate_limiter
            token_bucket:
              max_tokens: {tokens}
              tokens_per_fill: 4
              fill_interval: {interval}
            filter_enabled:
              runtime_key: local_rate_limit_enabled
              default_value: {{numerator: 100, denominator: HUNDRED}}
            filter_enforced:
              runtime_key: local_rate_limit_enforced
              default_value: {{numerator: 100, denominator: HUNDRED}}
            response_headers_to_add:
            - append: false
              header: {{key: x-local-rate-limit, value: 'true'}}
            enable_x_ratelimit_headers: DRAFT_VERSION_03
            some_future_field: 1
"""


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def metric_sum(text, name, **labels):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def client(topo, pod, *args, timeout=60):
    r = topo.ns_exec(pod.ns, [PY, CLIENTS, *args], check=False, timeout=timeout)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"ok": False, "raw": r.stdout[-2000:], "stderr": r.stderr[-2000:]}


def get(ns, ip, headers=None, count=1):
    """`count` GETs on one keep-alive connection from inside `ns`."""
    def body():
        out = []
        c = http.client.HTTPConnection(ip, 80, timeout=10)
        for _ in range(count):
            c.request("GET", "/", headers=dict(headers or {}))
            r = c.getresponse()
            out.append((r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()))
        c.close()
        return out
    return in_netns(ns, body)


def paced(ns, ip, headers, seconds, rps):
    """Requests at `rps` for `seconds` on one connection; status counts."""
    def body():
        counts = {}
        c = http.client.HTTPConnection(ip, 80, timeout=10)
        start = time.monotonic()
        i = 0
        while True:
            due = start + i / rps
            now = time.monotonic()
            if due - start >= seconds:
                break
            if due > now:
                time.sleep(due - now)  # pacing of a bounded load loop
            c.request("GET", "/", headers=dict(headers or {}))
            r = c.getresponse()
            r.read()
            counts[r.status] = counts.get(r.status, 0) + 1
            i += 1
        c.close()
        return counts
    return in_netns(ns, body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    require_root()
    with Topology(nodes=2) as topo:
        env = AmbitEnv(topo, args.build)
        cl = env.pod(1, "client", sa="client", labels={"app": "client"})
        svcs = {f"demo/{s}.demo.svc.cluster.local": {80: 8080}
                for s in ("limited", "global", "plain")}
        be = env.pod(2, "backend", sa="backend", labels={"app": "backend"}, services=svcs)
        wp = WaypointPod(env, node=2)
        http_port = [{"port": 80, "targetPort": 8080, "appProtocol": "http", "name": "http"}]
        for name, vip in (("limited", LIMITED), ("global", GLOBAL), ("plain", PLAIN)):
            env.service(name, vip=vip, ports=http_port, extra=wp.use())
        b = topo.spawn(be.ns, [PY, BACKEND, "--name", be.name, "--namespace", "demo",
                               "--http", "8080"])
        topo.wait_line(b, "ready", timeout=15)
        env.extra_docs = [POLICIES]
        env.start()
        wp.start(log_level=os.environ.get("AMBIT_TEST_LOG_LEVEL", "info,access=info"))
        rls_bin = os.path.join(args.build, "tests", "support", "ambit-fake-rls")
        rls = topo.spawn(wp.pod.ns, [rls_bin, "--listen", RLS_ADDR,
                                     "--over-limit", "api_key=blocked", "--limit", "50"])
        topo.wait_line(rls, "ready", timeout=10)
        slow = topo.spawn(wp.pod.ns, [rls_bin, "--listen", SLOW_ADDR, "--delay-ms", "1000"])
        topo.wait_line(slow, "ready", timeout=10)
        try:
            run_checks(env, wp, cl, rls, rls_bin, args)
        finally:
            code = wp.stop()
            check(code == 0, f"waypoint exits 0 on SIGTERM (got {code})")
            if FAILURES:
                lines = [ln for ln in wp.log().splitlines() if "\taccess\t" not in ln]
                print("---- waypoint log (no access lines, tail) ----\n" + "\n".join(lines[-60:]))
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)" if FAILURES else "all waypoint rate limit checks passed",
          flush=True)
    return 1 if FAILURES else 0


def run_checks(env, wp, cl, rls, rls_bin, args):
    # 1. Local, per x-api-key: 10 rps over the window, keys independent,
    # requests without the key never limited.
    results = {}

    def run(label, headers):
        results[label] = paced(cl.ns, LIMITED, headers, args.seconds, 30)

    threads = [threading.Thread(target=run, args=(k, h)) for k, h in
               (("alice", {"x-api-key": "alice"}), ("bob", {"x-api-key": "bob"}),
                ("none", {}))]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.seconds + 30)
    took = time.monotonic() - t0
    want = 10 * args.seconds
    for key in ("alice", "bob"):
        r = results.get(key, {})
        check(abs(r.get(200, 0) - want) <= 10 and r.get(429, 0) > 0 and set(r) <= {200, 429},
              f"x-api-key {key}: {r.get(200, 0)} of {sum(r.values())} admitted over "
              f"{args.seconds:.0f}s at 10 rps (want {want:.0f} ± 10), rest 429 ({r}, {took:.1f}s)")
    r = results.get("none", {})
    check(set(r) == {200}, f"requests without x-api-key are never limited ({r})")
    out = get(cl.ns, LIMITED, {"x-api-key": "dave"}, count=12)
    limited = [o for o in out if o[0] == 429]
    check(bool(limited) and limited[0][2] == b"local_rate_limited",
          f"a limited request answers 429 local_rate_limited ({[o[0] for o in out]})")
    if limited:
        h = limited[0][1]
        check(h.get("x-ratelimit-limit") == "5" and h.get("x-ratelimit-remaining") == "0" and
              h.get("x-ratelimit-reset") in ("0", "1") and h.get("x-envoy-ratelimited") == "true",
              f"429 carries x-ratelimit-limit/remaining/reset ({h})")
    ok = [o for o in out if o[0] == 200]
    check(bool(ok) and ok[0][1].get("x-ratelimit-limit") == "5",
          f"an admitted response carries x-ratelimit-* too ({ok[0][1] if ok else None})")
    # h2c: the same buckets, one per key, across streams of one connection.
    r = client(env.topo, cl, "h2-concurrent", "--url", f"http://{LIMITED}/", "--count", "20",
               "--streams", "5", "--header", "x-api-key:h2key")
    check(r.get("statuses") == {"200": 5, "429": 15},
          f"h2c: 5 tokens for a new key, the other streams 429 ({r.get('statuses')})")
    time.sleep(1.0)  # lets the access log flush the last lines
    log = wp.log()
    check("response_code=429 response_flags=RL" in log,
          "the access log shows the 429 with response flag RL")
    m = wp.metrics()
    over = metric_sum(m, "ambit_waypoint_ratelimit_over_limit_total",
                      policy="RateLimitPolicy demo/api-key-local", source="local")
    check(over >= 2 * (3 * args.seconds * 10 - want - 20),
          f"ambit_waypoint_ratelimit_over_limit_total counts the 429s ({over})")
    check(metric_sum(m, "ambit_waypoint_ratelimit_ok_total",
                     policy="RateLimitPolicy demo/api-key-local") >= 2 * want - 20,
          "ambit_waypoint_ratelimit_ok_total counts the admitted ones")

    # 2. Global: OVER_LIMIT → 429, OK → passes with the service's header.
    out = get(cl.ns, GLOBAL, {"x-api-key": "blocked"}, count=3)
    check([o[0] for o in out] == [429] * 3 and out[0][1].get("x-envoy-ratelimited") == "true",
          f"global: OVER_LIMIT from the RateLimitService answers 429 ({[o[0] for o in out]})")
    out = get(cl.ns, GLOBAL, {"x-api-key": "carol"}, count=20)
    check([o[0] for o in out] == [200] * 20 and out[0][1].get("x-fake-rls") == "production" and
          out[0][1].get("x-ratelimit-limit") == "50, 50;w=1",
          f"global: OK passes, with the service's headers ({[o[0] for o in out][:5]}, "
          f"{out[0][1] if out else None})")
    out = get(cl.ns, GLOBAL, {}, count=3)
    check([o[0] for o in out] == [200] * 3, "global: no x-api-key, no descriptor: passes")
    # A service that answers too late: the 100ms timeout bounds each request.
    t = time.monotonic()
    out = get(cl.ns, GLOBAL, {"x-slow-key": "k"}, count=5)
    per = (time.monotonic() - t) / 5
    check([o[0] for o in out] == [200] * 5 and 0.09 <= per < 0.4,
          f"global: a service slower than the 100ms timeout: requests pass after "
          f"{per * 1000:.0f} ms each ({[o[0] for o in out]})")
    out = get(cl.ns, GLOBAL, {"x-strict-key": "k"}, count=2)
    check([o[0] for o in out] == [500, 500],
          f"global: failureModeDeny answers 500 when the service is late ({[o[0] for o in out]})")
    time.sleep(0.5)  # lets the access log flush the lines
    check("response_code=500 response_flags=RLSE" in wp.log(),
          "the access log shows the 500 with response flag RLSE")
    # The service goes away: fail open, each request within the timeout.
    rls.terminate()
    rls.wait(5)
    t = time.monotonic()
    out = get(cl.ns, GLOBAL, {"x-api-key": "blocked"}, count=20)
    per = (time.monotonic() - t) / 20
    check([o[0] for o in out] == [200] * 20 and per < 0.5,
          f"global: the service down, requests pass (fail-open) in {per * 1000:.0f} ms each "
          f"({[o[0] for o in out][:5]})")
    m = wp.metrics()
    errs = metric_sum(m, "ambit_waypoint_ratelimit_rls_errors_total",
                      policy="RateLimitPolicy demo/api-key-global")
    late = metric_sum(m, "ambit_waypoint_ratelimit_rls_errors_total",
                      policy="RateLimitPolicy demo/slow-service", reason="timeout")
    check(errs >= 20 and late >= 5,
          f"ambit_waypoint_ratelimit_rls_errors_total counts the failures ({errs}, {late} timeouts)")

    # 3. The Istio EnvoyFilter shape targeted at the waypoint.
    good = ENVOY_FILTER.format(tokens=4, interval="60s")
    env.extra_docs = [POLICIES, good]
    mark = len(wp.log())
    env.write_config()
    wp.wait_log("config applied", after=mark, timeout=10)
    out = get(cl.ns, PLAIN, {}, count=6)
    codes = [o[0] for o in out]
    check(codes == [200] * 4 + [429] * 2,
          f"EnvoyFilter local_ratelimit: 4 tokens, then 429 ({codes})")
    if codes[-1] == 429:
        h = out[-1][1]
        check(h.get("x-local-rate-limit") == "true" and h.get("x-ratelimit-limit") == "4",
              f"EnvoyFilter response_headers_to_add and x-ratelimit-* on the 429 ({h})")
    dump = wp.config_dump()
    names = [p.get("name", "") for p in dump.get("rateLimits", [])]
    check(len(names) == 5 and any(n.startswith("EnvoyFilter demo/filter-local-ratelimit") for n in names),
          f"/config_dump lists the rate limit policies ({names})")
    finding = [f for f in dump.get("findings", []) if "some_future_field" in f]
    check(bool(finding) and ".yaml:" in finding[0],
          f"an unknown LocalRateLimit field is a finding with file:line ({finding[:1]})")

    # 4. Bad values reject the change; the last good config keeps limiting.
    for bad, what in ((ENVOY_FILTER.format(tokens=4, interval="10ms"), "a 10ms fill interval"),
                      (ENVOY_FILTER.format(tokens=-3, interval="60s"), "negative max_tokens")):
        env.extra_docs = [POLICIES, bad]
        mark = len(wp.log())
        env.write_config()
        try:
            text = wp.wait_log("config rejected", after=mark, timeout=10)
            line = [ln for ln in text[mark:].splitlines() if "config rejected" in ln][:1]
            check(bool(line) and "token_bucket" in line[0],
                  f"{what} rejects the change, naming the field ({line})")
        except TimeoutError:
            check(False, f"{what} rejects the change")
        out = get(cl.ns, PLAIN, {}, count=2)
        check([o[0] for o in out] == [429, 429],
              f"after {what}: the last good bucket still limits ({[o[0] for o in out]})")
    env.extra_docs = [POLICIES]
    env.write_config()


if __name__ == "__main__":
    sys.exit(main())
