#!/usr/bin/env python3
"""The seed's resilience examples (tools/examples) through real namespaces
(issue 17 acceptance).

client pod (node 1) -> agent ==HBONE==> waypoint (node 2) ==HBONE==> agent ->
reviews-v1 / reviews-v2 and payments-1.

  - reviews-fault-injection: over 2,000 requests, 10 % ± 2 % (absolute) are
    delayed (counted by the waypoint's response flag DI, and each delayed
    one takes the delay); run with the file's fixedDelay shortened to 50 ms
    for speed, then the literal 5 s on a sample of 60 concurrent streams;
  - payments-chaos: over 2,000 requests, 5 % ± 1.5 % answered 503 by the
    waypoint (flag FI, the pod never sees them), the rest 200;
  - reviews-routing (verbatim): the canary header goes to v2, the split
    holds, and a v2 failing twice with 503 succeeds on the 3rd try.
"""
import argparse
import json
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, require_root  # noqa: E402
from ambit_env import AmbitEnv, ROOT  # noqa: E402
from waypoint_env import WaypointPod, echo_stats, metric_sum, run_client as client  # noqa: E402

BACKEND = os.path.join(ROOT, "tests", "support", "echo_backend.py")
EXAMPLES = os.path.join(ROOT, "tools", "examples")
PY = "/usr/bin/python3"
REVIEWS, PAYMENTS = "10.96.0.70", "10.96.0.71"
FAILURES = []

SUBSETS = """apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews-subsets
  namespace: demo
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"""


def example(name):
    with open(os.path.join(EXAMPLES, name)) as f:
        return f.read()


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)




def backend_tries(pod, u):
    return echo_stats(pod).get("uuids", {}).get(u, 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--requests", type=int, default=2000)
    args = ap.parse_args()
    require_root()
    with Topology(nodes=2) as topo:
        env = AmbitEnv(topo, args.build)
        cl = env.pod(1, "productpage", sa="productpage", labels={"app": "productpage"})
        reviews = [env.pod(2, f"reviews-{v}", sa="reviews", labels={"app": "reviews", "version": v},
                           services={"demo/reviews.demo.svc.cluster.local": {80: 8080}})
                   for v in ("v1", "v2")]
        payments = env.pod(2, "payments-1", sa="payments", labels={"app": "payments"},
                           services={"demo/payments.demo.svc.cluster.local": {80: 8080}})
        wp = WaypointPod(env, node=2)
        http_port = [{"port": 80, "targetPort": 8080, "appProtocol": "http", "name": "http"}]
        env.service("reviews", vip=REVIEWS, ports=http_port, extra=wp.use())
        env.service("payments", vip=PAYMENTS, ports=http_port, extra=wp.use())
        for p in reviews + [payments]:
            b = topo.spawn(p.ns, [PY, BACKEND, "--name", p.name, "--namespace", "demo",
                                  "--http", "8080"])
            topo.wait_line(b, "ready", timeout=15)
        fast = example("reviews-fault-injection.yaml").replace("fixedDelay: 5s", "fixedDelay: 50ms")
        env.extra_docs = [SUBSETS, fast, example("payments-chaos.yaml")]
        env.start()
        wp.start()
        try:
            run_checks(topo, env, wp, cl, reviews, payments, args.requests)
        finally:
            code = wp.stop()
            check(code == 0, f"waypoint exits 0 on SIGTERM (got {code})")
            if FAILURES:
                print("---- waypoint log (tail) ----\n" + "\n".join(wp.log().splitlines()[-40:]))
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)" if FAILURES else "all waypoint fault checks passed",
          flush=True)
    return 1 if FAILURES else 0


def run_checks(topo, env, wp, cl, reviews, payments, n):
    svc = "reviews.demo.svc.cluster.local"
    # 1. reviews-fault-injection (50 ms variant): 10 % ± 2 % delayed.
    r = client(topo, cl, "h2-concurrent", "--url", f"http://{REVIEWS}/", "--count", str(n),
               "--streams", "50")
    text = wp.metrics()
    delayed = metric_sum(text, "istio_requests_total", destination_service=svc,
                         response_flags="DI", response_code="200")
    total = metric_sum(text, "istio_requests_total", destination_service=svc)
    share = delayed / n
    check(r.get("statuses") == {"200": n} and total == n,
          f"reviews-fault-injection: every request still answers 200 ({r.get('statuses')}, "
          f"{total:.0f} counted)")
    check(abs(share - 0.10) <= 0.02 and r.get("pods") == {"reviews-v1": n},
          f"10 % ± 2 % of {n} delayed (flag DI: {delayed:.0f} = {share:.3f}), all to v1 "
          f"({r.get('pods')})")
    lat = r.get("latency_ms", {})
    check(lat.get("max", 0) >= 50,
          f"the delayed ones wait the 50 ms (p50 {lat.get('p50')} ms, max {lat.get('max')} ms)")

    # 2. payments-chaos: 5 % ± 1.5 % answered 503 by the waypoint.
    r = client(topo, cl, "h2-concurrent", "--url", f"http://{PAYMENTS}/", "--count", str(n),
               "--streams", "50")
    st = r.get("statuses", {})
    aborted = st.get("503", 0)
    text = wp.metrics()
    fi = metric_sum(text, "istio_requests_total", destination_service="payments.demo.svc.cluster.local",
                    response_flags="FI", response_code="503")
    check(abs(aborted / n - 0.05) <= 0.015 and aborted + st.get("200", 0) == n and fi == aborted,
          f"payments-chaos: 5 % ± 1.5 % of {n} aborted 503 ({aborted} = {aborted / n:.3f}, "
          f"flag FI {fi:.0f}), the rest 200 ({st})")
    reached = r.get("pods", {}).get("payments-1", 0)
    check(reached == n - aborted, f"aborted requests never reach the pod ({reached} reached)")

    # 3. The literal 5 s delay on a sample of 80 concurrent streams (none
    # delayed at 10 %: p = 0.9^80 ≈ 0.02 %).
    env.extra_docs = [SUBSETS, example("reviews-fault-injection.yaml"), example("payments-chaos.yaml")]
    mark = len(wp.log())
    env.write_config()
    wp.wait_log("config applied", timeout=10, after=mark)
    before = metric_sum(wp.metrics(), "istio_requests_total", destination_service=svc,
                        response_flags="DI")
    r = client(topo, cl, "h2-concurrent", "--url", f"http://{REVIEWS}/", "--count", "80",
               "--streams", "80")
    after = metric_sum(wp.metrics(), "istio_requests_total", destination_service=svc,
                       response_flags="DI")
    lat = r.get("latency_ms", {})
    k = after - before
    check(r.get("statuses") == {"200": 80} and 1 <= k <= 24 and lat.get("max", 0) >= 5000 and
          lat.get("p50", 1e9) < 1000,
          f"fixedDelay 5s verbatim: {k:.0f} of 80 delayed ≥ 5 s (max {lat.get('max')} ms, "
          f"p50 {lat.get('p50')} ms)")

    # 4. reviews-routing verbatim (with the subsets): canary, split, retries.
    env.extra_docs = [SUBSETS, example("reviews-routing.yaml"), example("payments-chaos.yaml")]
    mark = len(wp.log())
    env.write_config()
    wp.wait_log("config applied", timeout=10, after=mark)
    r = client(topo, cl, "http1-keepalive", "--url", f"http://{REVIEWS}/", "--count", "100",
               "--header", "x-canary-user:true")
    check(r.get("pods") == {"reviews-v2": 100},
          f"reviews-routing: x-canary-user: true → v2 ({r.get('pods')})")
    u = uuid.uuid4().hex[:12]
    r = client(topo, cl, "http1-keepalive", "--url",
               f"http://{REVIEWS}/retry?uuid={u}&succeedAfter=2&responseCode=503", "--count", "1",
               "--header", "x-canary-user:true")
    check(r.get("statuses") == {"200": 1} and backend_tries(reviews[1], u) == 3,
          f"reviews-routing: v2 failing twice with 503 succeeds on the 3rd try "
          f"({r.get('statuses')}, {backend_tries(reviews[1], u)} tries)")
    dump = json.dumps(wp.config_dump())
    check('"retry_on": "5xx,reset,connect-failure,retriable-4xx"' in dump and
          '"timeout": "10s"' in dump, "config_dump shows reviews-routing's retries and timeout")


if __name__ == "__main__":
    sys.exit(main())
