#!/usr/bin/env python3
"""Waypoint retries on real network namespaces (issue 17 item 2).

client pod (node 1, captured) -> agent node-1 ==HBONE==> waypoint pod
(node 2) ==HBONE==> agent node-2 -> `flaky` (one pod, so its try counts
are exact) and `pair` (two pods).

The backend counts the tries of each ?uuid= (echo_backend.py /retry and
/__stats), so every check counts tries where they land:
  - the seed's reviews-routing retries (3 × 2 s on 5xx,reset,connect-failure,
    retriable-4xx, timeout 10 s), verbatim: a backend failing the first N
    tries (503, or a reset) succeeds within attempts; one failing past
    attempts returns its status with flag URX after exactly 1 + attempts;
  - 503 not listed → no retry (1 try); numeric retryOn codes; retriable-4xx
    (409); h2c streams reset (RST_STREAM) retried;
  - Istio's default policy (no retries written): a reset is not retried;
  - a per-try timeout is retried; the overall timeout wins → 504 UT;
  - a POST body is replayed (the backend sees the same sha256 on the last
    try); a body past the replay bound is not retried (counted);
  - a retry goes to the other endpoint of `pair`;
  - HTTPRoute retry (codes, attempts, backoff) and backendRequest as the
    per-try timeout;
  - ambit_waypoint_retries counts, the access log's upstream.attempts,
    retry_policy in /config_dump; an unknown retryOn token is refused with
    file:line and the last good config stays.
"""
import argparse
import hashlib
import http.client
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import in_netns, Topology, require_root  # noqa: E402
from ambit_env import AmbitEnv, ROOT  # noqa: E402
from waypoint_env import WaypointPod, echo_stats, metric_sum, run_client as client  # noqa: E402

BACKEND = os.path.join(ROOT, "tests", "support", "echo_backend.py")
PY = "/usr/bin/python3"
FLAKY, PAIR, GWFLAKY, GRPC = "10.96.0.60", "10.96.0.61", "10.96.0.62", "10.96.0.63"
FAILURES = []

# The seed's reviews-routing retry stanza, verbatim, on `flaky`, plus rules
# that pin the other semantics (first match wins).
def flaky_vs(seed_retry_on="5xx,reset,connect-failure,retriable-4xx"):
    return f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: flaky-routing
  namespace: demo
spec:
  hosts:
  - flaky
  http:
  - name: default-policy
    match:
    - uri:
        prefix: /default/
    rewrite:
      uri: /
    route:
    - destination:
        host: flaky
  - name: not-listed
    match:
    - uri:
        prefix: /only4xx/
    rewrite:
      uri: /
    route:
    - destination:
        host: flaky
    retries:
      attempts: 3
      retryOn: retriable-4xx
  - name: codes
    match:
    - uri:
        prefix: /codes/
    rewrite:
      uri: /
    route:
    - destination:
        host: flaky
    retries:
      attempts: 2
      retryOn: "503,429"
  - name: per-try
    match:
    - uri:
        prefix: /pertry/
    rewrite:
      uri: /
    route:
    - destination:
        host: flaky
    retries:
      attempts: 2
      perTryTimeout: 300ms
      retryOn: 5xx
  - name: overall
    match:
    - uri:
        prefix: /overall/
    rewrite:
      uri: /
    timeout: 1s
    route:
    - destination:
        host: flaky
    retries:
      attempts: 5
      perTryTimeout: 400ms
      retryOn: 5xx
  - name: seed
    route:
    - destination:
        host: flaky
    timeout: 10s
    retries:
      attempts: 3
      perTryTimeout: 2s
      retryOn: {seed_retry_on}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: pair-routing
  namespace: demo
spec:
  hosts:
  - pair
  http:
  - route:
    - destination:
        host: pair
    retries:
      attempts: 1
      retryOn: 5xx
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: gwflaky
  namespace: demo
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: gwflaky
    port: 80
  rules:
  - matches:
    - path: {{type: PathPrefix, value: /slow}}
    backendRefs:
    - {{name: flaky, port: 80}}
    retry: {{attempts: 1, codes: [503], backoff: 10ms}}
    timeouts: {{request: 5s, backendRequest: 300ms}}
  - backendRefs:
    - {{name: flaky, port: 80}}
    retry: {{attempts: 2, codes: [503], backoff: 10ms}}
"""


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)



def request(ns, ip, path, method="GET", body=None, timeout=20):
    """One request on its own connection from inside `ns`: (status, headers, body, seconds)."""
    def run():
        c = http.client.HTTPConnection(ip, 80, timeout=timeout)
        t0 = time.monotonic()
        headers = {"content-type": "application/octet-stream"} if body is not None else {}
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        out = (r.status, {k.lower(): v for k, v in r.getheaders()}, data, time.monotonic() - t0)
        c.close()
        return out
    return in_netns(ns, run)



class Backend:
    def __init__(self, topo, pod):
        self.topo, self.pod = topo, pod

    def stats(self):
        return echo_stats(self.pod)

    def tries(self, u):
        return self.stats().get("uuids", {}).get(u, 0)


def wait_log(wp, needle, timeout=10.0):
    try:
        wp.wait_log(needle, timeout=timeout)
        return True
    except TimeoutError:
        return False


def uid():
    return uuid.uuid4().hex[:12]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    require_root()
    with Topology(nodes=2) as topo:
        env = AmbitEnv(topo, args.build)
        cl = env.pod(1, "client", sa="client", labels={"app": "client"})
        flaky = env.pod(2, "flaky-1", sa="flaky", labels={"app": "flaky"},
                        services={"demo/flaky.demo.svc.cluster.local": {80: 8080},
                                  "demo/flakygrpc.demo.svc.cluster.local": {9090: 9090}})
        pair = [env.pod(2, f"pair-{c}", sa="pair", labels={"app": "pair"},
                        services={"demo/pair.demo.svc.cluster.local": {80: 8080}})
                for c in ("a", "b")]
        wp = WaypointPod(env, node=2)
        http_port = [{"port": 80, "targetPort": 8080, "appProtocol": "http", "name": "http"}]
        for name, vip in (("flaky", FLAKY), ("pair", PAIR), ("gwflaky", GWFLAKY)):
            env.service(name, vip=vip, ports=http_port, extra=wp.use())
        env.service("flakygrpc", vip=GRPC, extra=wp.use(),
                    ports=[{"port": 9090, "targetPort": 9090, "appProtocol": "grpc",
                            "name": "grpc"}])
        for p in [flaky] + pair:
            extra = ["--grpc", "9090"] if p is flaky else []
            b = topo.spawn(p.ns, [PY, BACKEND, "--name", p.name, "--namespace", "demo",
                                  "--http", "8080", *extra])
            topo.wait_line(b, "ready", timeout=15)
        env.extra_docs = [flaky_vs()]
        env.start()
        wp.start()
        try:
            run_checks(topo, env, wp, cl, Backend(topo, flaky), [Backend(topo, p) for p in pair])
        finally:
            code = wp.stop()
            check(code == 0, f"waypoint exits 0 on SIGTERM (got {code})")
            if FAILURES:
                print("---- waypoint log (tail) ----\n" + "\n".join(wp.log().splitlines()[-60:]))
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)" if FAILURES else "all waypoint retry checks passed",
          flush=True)
    return 1 if FAILURES else 0


def run_checks(topo, env, wp, cl, flaky, pair):
    get = lambda path, **kw: request(cl.ns, FLAKY, path, **kw)  # noqa: E731
    fc = "inbound-vip|80|http|flaky.demo.svc.cluster.local"

    # 1. The seed's policy: 503 twice then 200 → 200 after 3 tries.
    u = uid()
    st, _, _, _ = get(f"/retry?uuid={u}&succeedAfter=2&responseCode=503")
    check(st == 200 and flaky.tries(u) == 3,
          f"seed policy: two 503s then 200 → 200 after 3 tries (got {st}, {flaky.tries(u)} tries)")
    # Resets (HTTP/1.1 TCP RST at the backend) are retried under `reset`.
    u = uid()
    st, _, _, _ = get(f"/retry?uuid={u}&succeedAfter=3")
    check(st == 200 and flaky.tries(u) == 4,
          f"seed policy: three resets then 200 → 200 on the 4th try (got {st}, "
          f"{flaky.tries(u)} tries)")
    # Failing past attempts: its status, 1 + attempts tries, flag URX.
    u = uid()
    st, _, _, _ = get(f"/retry?uuid={u}&succeedAfter=9&responseCode=503")
    check(st == 503 and flaky.tries(u) == 4,
          f"past attempts: 503 stands after exactly 1 + 3 tries (got {st}, {flaky.tries(u)})")
    wait_log(wp, u, timeout=5)
    log = wp.log()
    line = [ln for ln in log.splitlines() if u in ln and "request complete" in ln]
    check(bool(line) and "response_flags=URX" in line[-1] and "upstream.attempts=4" in line[-1],
          f"the access log shows URX and upstream.attempts=4 ({line[-1] if line else 'no line'})")
    u = uid()
    st, _, _, _ = get(f"/retry?uuid={u}&succeedAfter=1&responseCode=409")
    check(st == 200 and flaky.tries(u) == 2, f"retriable-4xx: a 409 is retried ({st}, "
          f"{flaky.tries(u)} tries)")

    # 2. Conditions not listed are not retried; numeric codes are.
    u = uid()
    st, _, _, _ = get(f"/only4xx/retry?uuid={u}&succeedAfter=1&responseCode=503")
    check(st == 503 and flaky.tries(u) == 1,
          f"503 not listed (retryOn retriable-4xx) → no retry ({st}, {flaky.tries(u)} tries)")
    u = uid()
    st, _, _, _ = get(f"/codes/retry?uuid={u}&succeedAfter=2&responseCode=429")
    check(st == 200 and flaky.tries(u) == 3,
          f"retryOn \"503,429\": 429 twice then 200 ({st}, {flaky.tries(u)} tries)")
    u = uid()
    st, _, _, _ = get(f"/codes/retry?uuid={u}&succeedAfter=1&responseCode=500")
    check(st == 500 and flaky.tries(u) == 1, f"retryOn \"503,429\": a 500 is not retried "
          f"({st}, {flaky.tries(u)} tries)")

    # 3. Istio's default policy: resets and 503 are not retried.
    u = uid()
    st, _, _, _ = get(f"/default/retry?uuid={u}&succeedAfter=1")
    check(st == 503 and flaky.tries(u) == 1,
          f"default policy: a reset is not retried (503 UR, {st}, {flaky.tries(u)} tries)")
    u = uid()
    st, _, _, _ = get(f"/default/retry?uuid={u}&succeedAfter=1&responseCode=503")
    check(st == 503 and flaky.tries(u) == 1,
          f"default policy: a 503 is not retried ({st}, {flaky.tries(u)} tries)")

    # 4. Per-try timeout retried; the overall timeout wins.
    u = uid()
    st, _, _, secs = get(f"/pertry/status/200?uuid={u}&delay=1s")
    check(st == 504 and flaky.tries(u) == 3 and 0.85 <= secs < 1.9,
          f"perTryTimeout 300ms × 3 tries → 504 after ~0.9 s ({st}, {flaky.tries(u)} tries, "
          f"{secs:.2f} s)")
    u = uid()
    st, _, _, secs = get(f"/overall/status/200?uuid={u}&delay=3s")
    check(st == 504 and 0.95 <= secs < 1.5 and flaky.tries(u) in (2, 3),
          f"timeout 1s cuts 5 retries × 400ms short → 504 at ~1 s ({st}, {secs:.2f} s, "
          f"{flaky.tries(u)} tries)")

    # 5. Bodies: replayed when kept, not retried past the bound.
    body = os.urandom(20000)
    u = uid()
    st, _, data, _ = get(f"/retry?uuid={u}&succeedAfter=1&responseCode=503", method="POST",
                         body=body)
    echo = json.loads(data or b"{}") if st == 200 else {}
    check(st == 200 and flaky.tries(u) == 2 and
          echo.get("body_sha256") == hashlib.sha256(body).hexdigest(),
          f"a 20 KB POST body is replayed whole on the retry ({st}, {flaky.tries(u)} tries, "
          f"{echo.get('body_bytes')} bytes)")
    before = metric_sum(wp.metrics(), "ambit_waypoint_retries_total", event="body_too_large")
    big = os.urandom(200_000)
    u = uid()
    st, _, _, _ = get(f"/retry?uuid={u}&succeedAfter=1&responseCode=503", method="POST",
                      body=big)
    after = metric_sum(wp.metrics(), "ambit_waypoint_retries_total", event="body_too_large")
    check(st == 503 and flaky.tries(u) == 1 and after == before + 1,
          f"a 200 KB body is past the replay bound: no retry, counted ({st}, "
          f"{flaky.tries(u)} tries, body_too_large {before}→{after})")

    # 6. h2c: RST_STREAM from the backend retried on a new stream.
    u = uid()
    r = client(topo, cl, "h2-concurrent", "--url",
               f"http://{FLAKY}/retry?uuid={u}&succeedAfter=2", "--count", "1")
    check(r.get("statuses") == {"200": 1} and flaky.tries(u) == 3,
          f"h2c: two RST_STREAMs then 200 → 200 after 3 tries ({r.get('statuses')}, "
          f"{flaky.tries(u)} tries)")

    # gRPC under Istio's default policy: UNAVAILABLE (grpc-status in a
    # trailers-only response) is retried twice, NOT_FOUND is not.
    for code, want in (("UNAVAILABLE", 3), ("NOT_FOUND", 1)):
        before = flaky.stats().get("paths", {}).get("/echo.Echo/Fail", 0)
        r = client(topo, cl, "grpc-fail", "--target", f"{GRPC}:9090", "--code", code)
        tries = flaky.stats().get("paths", {}).get("/echo.Echo/Fail", 0) - before
        check(r.get("ok") and tries == want,
              f"gRPC default policy: {code} → {want} tries ({tries}, {r.get('code')})")

    # 7. A retry goes to the other endpoint.
    spread = []
    for _ in range(10):
        u = uid()
        st, _, _, _ = request(cl.ns, PAIR, f"/retry?uuid={u}&succeedAfter=1&responseCode=503")
        spread.append((st, pair[0].tries(u), pair[1].tries(u)))
    check(all(s == 503 and a == 1 and b == 1 for s, a, b in spread),
          f"every retry lands on the other endpoint (each pod saw each uuid once: {spread})")

    # 8. HTTPRoute retry and backendRequest as the per-try timeout.
    u = uid()
    st, _, _, _ = request(cl.ns, GWFLAKY, f"/retry?uuid={u}&succeedAfter=2&responseCode=503")
    check(st == 200 and flaky.tries(u) == 3,
          f"HTTPRoute retry attempts 2 codes [503]: 200 after 3 tries ({st}, {flaky.tries(u)})")
    u = uid()
    st, _, _, _ = request(cl.ns, GWFLAKY, f"/retry?uuid={u}&succeedAfter=1&responseCode=500")
    check(st == 500 and flaky.tries(u) == 1,
          f"HTTPRoute retry: a 500 not in codes is not retried ({st}, {flaky.tries(u)})")
    u = uid()
    st, _, _, secs = request(cl.ns, GWFLAKY, f"/slow?uuid={u}&delay=2s")
    check(st == 504 and flaky.tries(u) == 2 and secs < 1.5,
          f"backendRequest 300ms is the per-try timeout with a retry: 504 after 2 tries "
          f"({st}, {flaky.tries(u)} tries, {secs:.2f} s)")

    # 9. Operators: metrics and /config_dump.
    text = wp.metrics()
    retried = metric_sum(text, "ambit_waypoint_retries_total", cluster=fc, event="retry")
    success = metric_sum(text, "ambit_waypoint_retries_total", cluster=fc, event="success")
    limit = metric_sum(text, "ambit_waypoint_retries_total", cluster=fc, event="limit_exceeded")
    check(retried >= 15 and success >= 5 and limit >= 1,
          f"ambit_waypoint_retries counts retry/success/limit_exceeded per cluster "
          f"({retried}/{success}/{limit})")
    dump = json.dumps(wp.config_dump())
    check('"retry_on": "5xx,reset,connect-failure,retriable-4xx"' in dump and
          '"per_try_timeout": "2s"' in dump and '"source": "istio default"' in dump,
          "config_dump shows each route's retry_policy (written and Istio's default)")

    # 10. Bad input: an unknown retryOn token refuses the change; the last
    # good config stays.
    env.extra_docs = [flaky_vs(seed_retry_on="5xx,sometimes")]
    env.write_config()
    ok = wait_log(wp, "'sometimes' is not a valid retryOn policy")
    log = wp.log()
    bad = [ln for ln in log.splitlines() if "config rejected" in ln]
    check(ok and bad and "sometimes" in bad[-1] and ".yaml:" in bad[-1],
          f"an unknown retryOn token is refused with file:line ({bad[-1][:200] if bad else ''})")
    u = uid()
    st, _, _, _ = get(f"/retry?uuid={u}&succeedAfter=2&responseCode=503")
    check(st == 200 and flaky.tries(u) == 3,
          f"the last good retry policy still applies ({st}, {flaky.tries(u)} tries)")


if __name__ == "__main__":
    sys.exit(main())
