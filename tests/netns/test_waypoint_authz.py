#!/usr/bin/env python3
"""L7 AuthorizationPolicy at the waypoint (issue 18 item 1) on real network
namespaces.

frontend (demo, sa frontend) and prometheus (monitoring) pods on node 1,
captured -> agent node-1 ==HBONE==> waypoint pod (node 2) ==HBONE==> agent
node-2 -> api-1 (echo backend), for the service `api` that uses the waypoint.

Checks, with tools/examples/api-access-policy.yaml verbatim plus an AUDIT
and a dry-run policy:
  - frontend GET /api/v1/users 200, DELETE 403, GET /metrics 403; an empty
    x-request-id 403 (the `when ... notValues [""]` rule); monitoring GET
    /health and /metrics 200; a DENY by path beats the ALLOW; h2c the same;
    gRPC: PERMISSION_DENIED "RBAC: access denied";
  - a denial is `403 RBAC: access denied`, flag RBAC in istio_requests_total,
    counted in ambit_waypoint_rbac_denied_total{policy};
  - AUDIT and dry-run log (`rbac audit`, `rbac shadow denied`) without
    enforcing, and are counted;
  - /config_dump lists the bound policies;
  - an edit (allow DELETE) decides the next request within 1 s of the write;
  - TCP connections: HTTP rules cannot allow them, an L4 rule can, an
    HTTP-only DENY closes them all (istiod's TCP chain);
  - the agent's L4 policy still applies at the backend hop; a selector-bound
    L7 rule is reported as needing a waypoint;
  - an invalid policy is rejected with file:line; the last good one stays.
"""
import argparse
import http.client
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, in_netns, require_root  # noqa: E402
from ambit_env import AmbitEnv, ROOT  # noqa: E402
from waypoint_env import WaypointPod  # noqa: E402

BACKEND = os.path.join(ROOT, "tests", "support", "echo_backend.py")
CLIENTS = os.path.join(ROOT, "tests", "support", "waypoint_clients.py")
EXAMPLE = os.path.join(ROOT, "tools", "examples", "api-access-policy.yaml")
PY = "/usr/bin/python3"
API, DB = "10.96.0.60", "10.96.0.61"
FAILURES = []

AUDIT = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api-audit, namespace: demo}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  action: AUDIT
  rules: [{to: [{operation: {methods: ["POST"], paths: ["/api/*"]}}]}]
"""

DRY_RUN = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: dry-deny-health
  namespace: demo
  annotations: {istio.io/dry-run: "true"}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  action: DENY
  rules: [{to: [{operation: {paths: ["/health"]}}]}]
"""

TCP_ALLOW = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: db-tcp, namespace: demo}
spec:
  targetRefs: [{kind: Service, group: "", name: db}]
  rules:
  - from: [{source: {principals: ["cluster.local/ns/demo/sa/frontend"]}}]
    to: [{operation: {ports: ["9000"]}}]
"""

GRPC_ALLOW = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api-grpc, namespace: demo}
spec:
  targetRefs: [{kind: Service, group: "", name: api}]
  rules:
  - from: [{source: {principals: ["cluster.local/ns/demo/sa/frontend"]}}]
    to: [{operation: {methods: ["POST"], paths: ["/echo.Echo/*"], ports: ["9090"]}}]
"""

# Selector-bound policies are the agent's, at the backend hop: an L4 ALLOW
# that only admits the waypoint, and an L7-only DENY the agent cannot
# enforce (reported as needing a waypoint; it denies nothing at L4).
BACKEND_L4 = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api-from-waypoint, namespace: demo}
spec:
  selector: {matchLabels: {app: api}}
  rules: [{from: [{source: {principals: ["cluster.local/ns/demo/sa/waypoint"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api-l7-on-pod, namespace: demo}
spec:
  selector: {matchLabels: {app: api}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/api/v1/users"]}}]}]
"""

BAD = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: broken, namespace: demo}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  action: DENY
  rules:
  - from:
    - source:
        ipBlocks: ["not-an-ip"]
"""


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


def request(pod, method, path, headers=None):
    """(status, body) of one HTTP/1.1 request from inside `pod` to the api VIP."""
    def body():
        c = http.client.HTTPConnection(API, 80, timeout=10)
        c.request(method, path, headers=dict(headers or {}))
        r = c.getresponse()
        out = (r.status, r.read().decode(errors="replace"))
        c.close()
        return out
    return in_netns(pod.ns, body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    require_root()
    with open(EXAMPLE) as f:
        example = f.read()
    with Topology(nodes=2) as topo:
        env = AmbitEnv(topo, args.build)
        frontend = env.pod(1, "frontend", sa="frontend", labels={"app": "frontend"})
        prom = env.pod(1, "prometheus", sa="prometheus", ns="monitoring",
                       labels={"app": "prometheus"})
        api = env.pod(2, "api-1", sa="api", labels={"app": "api"},
                      services={"demo/api.demo.svc.cluster.local": {80: 8080, 9000: 9000,
                                                                    9090: 9090},
                                "demo/db.demo.svc.cluster.local": {9000: 9000}})
        wp = WaypointPod(env, node=2)
        env.service("api", vip=API, extra=wp.use(),
                    ports=[{"port": 80, "targetPort": 8080, "appProtocol": "http",
                            "name": "http"},
                           {"port": 9000, "targetPort": 9000, "appProtocol": "tcp",
                            "name": "tcp"},
                           {"port": 9090, "targetPort": 9090, "appProtocol": "grpc",
                            "name": "grpc"}])
        env.service("db", vip=DB, extra=wp.use(),
                    ports=[{"port": 9000, "targetPort": 9000, "appProtocol": "tcp",
                            "name": "tcp"}])
        b = topo.spawn(api.ns, [PY, BACKEND, "--name", "api-1", "--namespace", "demo",
                                "--http", "8080", "--tcp", "9000",
                                "--grpc", "9090"])
        topo.wait_line(b, "ready", timeout=15)
        env.extra_docs = [example, AUDIT, DRY_RUN, TCP_ALLOW, GRPC_ALLOW, BACKEND_L4]
        env.start()
        wp.start()
        try:
            run_checks(topo, env, wp, frontend, prom, api, example)
        finally:
            wp.stop()
            if FAILURES:
                print("---- waypoint log (tail) ----\n" + "\n".join(wp.log().splitlines()[-60:]))
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)" if FAILURES else "all waypoint authz checks passed",
          flush=True)
    return 1 if FAILURES else 0


def run_checks(topo, env, wp, frontend, prom, api, example):
    # 1. The acceptance table.
    table = [
        (frontend, "GET", "/api/v1/users", {}, 200, "frontend GET /api/v1/users"),
        (frontend, "POST", "/api/v1/users", {}, 200, "frontend POST /api/v1/users"),
        (frontend, "DELETE", "/api/v1/users", {}, 403, "frontend DELETE /api/v1/users"),
        (frontend, "GET", "/metrics", {}, 403, "frontend GET /metrics"),
        (frontend, "GET", "/api/v1/users", {"x-request-id": ""}, 403,
         "frontend GET /api/v1/users with an empty x-request-id (when notValues [\"\"])"),
        (frontend, "GET", "/api/v1/users", {"x-request-id": "abc-123"}, 200,
         "frontend GET /api/v1/users with an x-request-id"),
        (frontend, "GET", "/api/v1/admin/keys", {}, 403,
         "frontend GET /api/v1/admin/keys (DENY by path beats the ALLOW)"),
        (frontend, "GET", "/api/v2/users", {}, 403, "frontend GET /api/v2/users (no rule)"),
        (frontend, "GET", "/api/v1/x/../admin/keys", {}, 403,
         "frontend GET /api/v1/x/../admin/keys (dot segments resolved before the DENY)"),
        (prom, "GET", "/health", {}, 200, "monitoring GET /health"),
        (prom, "GET", "/metrics", {}, 200, "monitoring GET /metrics"),
        (prom, "DELETE", "/health", {}, 403, "monitoring DELETE /health"),
        (prom, "GET", "/api/v1/users", {}, 403, "monitoring GET /api/v1/users"),
    ]
    mark = len(wp.log())
    for pod, method, path, headers, want, what in table:
        status, body = request(pod, method, path, headers)
        ok = status == want
        if want == 403:
            ok = ok and body == "RBAC: access denied"
        check(ok, f"{what} → {want} (got {status} {body[:40]!r})")

    # Keep-alive: each request is decided on its own, and a local 403 leaves
    # the connection usable (exactly one answer per request).
    text = wp.metrics()
    before = metric_sum(text, "ambit_waypoint_rbac_denied_total")
    r = client(topo, frontend, "http1-keepalive", "--url", f"http://{API}/api/v1/users",
               "--count", "20", "--method", "DELETE")
    r2 = client(topo, frontend, "http1-keepalive", "--url", f"http://{API}/api/v1/users",
                "--count", "20")
    after = metric_sum(wp.metrics(), "ambit_waypoint_rbac_denied_total")
    check(r.get("statuses") == {"403": 20} and r.get("connections") == 1 and
          r2.get("statuses") == {"200": 20} and after - before == 20,
          f"keep-alive: 20 DELETE → 403 on one connection, 20 GET → 200, 20 denials counted "
          f"({r.get('statuses')}, {r.get('connections')} conn, {r2.get('statuses')}, "
          f"{after - before})")

    # The agent's L4 policy still applies at the backend hop: the waypoint's
    # identity passes api-from-waypoint, a pod-addressed request that skips
    # the waypoint does not; the L7-only selector DENY is reported.
    def direct():
        c = http.client.HTTPConnection(api.ip, 8080, timeout=5)
        try:
            c.request("GET", "/api/v1/users")
            return c.getresponse().status
        except OSError as e:
            return type(e).__name__
        finally:
            c.close()
    got = in_netns(frontend.ns, direct)
    deadline = time.monotonic() + 3.0  # the agent writes its log asynchronously
    alog = env.log(2)
    while "but none allowed" not in alog and time.monotonic() < deadline:
        time.sleep(0.05)  # poll interval of a bounded wait
        alog = env.log(2)
    check(got != 200 and "allow policies exist, but none allowed" in alog,
          f"frontend straight to the api pod (no waypoint) is refused at L4 ({got})")
    check("demo/api-l7-on-pod" in alog and "L7 rules need a waypoint" in alog,
          "the agent reports the selector-bound L7 DENY as needing a waypoint")

    # 2. h2c streams are decided one by one.
    r = client(topo, frontend, "h2-concurrent", "--url", f"http://{API}/api/v1/users",
               "--count", "20", "--streams", "5", "--method", "DELETE")
    check(r.get("statuses") == {"403": 20}, f"h2c: 20 DELETE streams → 403 ({r.get('statuses')})")
    r = client(topo, frontend, "h2-concurrent", "--url", f"http://{API}/api/v1/users",
               "--count", "20", "--streams", "5")
    check(r.get("statuses") == {"200": 20}, f"h2c: 20 GET streams → 200 ({r.get('statuses')})")

    # gRPC: a denial is grpc-status PERMISSION_DENIED (trailers-only).
    r = client(topo, frontend, "grpc-unary", "--target", f"{API}:9090", "--count", "3")
    check(r.get("codes") == {"OK": 3},
          f"frontend gRPC Unary is allowed by api-grpc ({r.get('codes')})")
    r = client(topo, prom, "grpc-unary", "--target", f"{API}:9090", "--count", "3",
               "--expect-code", "PERMISSION_DENIED")
    check(r.get("codes") == {"PERMISSION_DENIED": 3} and
          r.get("details") == "RBAC: access denied",
          f"monitoring gRPC Unary → PERMISSION_DENIED 'RBAC: access denied' ({r.get('codes')}, "
          f"{r.get('details')!r})")

    # TCP: the waypoint-wide ALLOW has only HTTP rules, which istiod drops
    # from a TCP chain; db-tcp (ports 9000, frontend) allows frontend only.
    # api's DENY has only HTTP fields: on TCP it denies every connection.
    r = client(topo, frontend, "tcp-line", "--addr", f"{DB}:9000")
    check(r.get("ok") is True, f"frontend TCP to db:9000 is relayed (db-tcp rule) ({r})")
    r = client(topo, prom, "tcp-line", "--addr", f"{DB}:9000")
    check(r.get("pod") is None and r.get("echoed") == 0,
          f"monitoring TCP to db:9000 is closed (no rule allows it) ({r})")
    r = client(topo, frontend, "tcp-line", "--addr", f"{API}:9000")
    check(r.get("pod") is None and r.get("echoed") == 0,
          f"frontend TCP to api:9000 is closed (an HTTP-only DENY denies all TCP) ({r})")

    # 3. AUDIT and dry-run: logged, counted, not enforced.
    log = wp.log()[mark:]
    check("rbac audit: demo/api-audit matched POST /api/v1/users" in log,
          "AUDIT logs the POST it matched (and it was served)")
    check("rbac shadow denied by demo/dry-deny-health: GET /health" in log,
          "the dry-run DENY logs a shadow denial while /health is served")
    text = wp.metrics()
    denied_admin = metric_sum(text, "ambit_waypoint_rbac_denied_total",
                              policy="demo/api-deny-admin")
    denied_none = metric_sum(text, "ambit_waypoint_rbac_denied_total", policy="")
    allowed = metric_sum(text, "ambit_waypoint_rbac_allowed_total",
                         policy="demo/api-access-policy")
    # Denied: 6 table rows + 20 keep-alive + 20 h2c + 3 gRPC + 1 TCP without a
    # matching ALLOW; the DENY: 2 table rows + 1 TCP. One count per request.
    check(denied_admin == 3 and denied_none == 50 and allowed >= 45,
          f"denials counted by policy (api-deny-admin {denied_admin}, no ALLOW matched "
          f"{denied_none}); allowed {allowed}")
    check(metric_sum(text, "istio_requests_total", reporter="waypoint", response_code="403",
                     response_flags="RBAC") == 48 and
          metric_sum(text, "istio_tcp_connections_closed_total", response_flags="RBAC") == 2,
          "istio_requests_total carries response_flags RBAC on the 403s, istio_tcp_* on the "
          "closed connection")
    check(metric_sum(text, "ambit_waypoint_rbac_audit_total", policy="demo/api-audit") >= 1 and
          metric_sum(text, "ambit_waypoint_rbac_shadow_total", result="denied",
                     policy="demo/dry-deny-health") >= 1,
          "AUDIT and dry-run matches are counted")
    check("RBAC" in log and "rbac_access_denied_matched_policy[demo/api-deny-admin]" in log,
          "the access log shows the RBAC flag and the deciding policy")

    # 4. /config_dump.
    authz = wp.config_dump().get("authorization", {})
    pols = {p["name"]: p for p in authz.get("policies", [])}
    svc = authz.get("services", {}).get("demo/api.demo.svc.cluster.local", {})
    check(pols.get("demo/api-access-policy", {}).get("boundTo") == ["Gateway demo/waypoint"] and
          svc.get("deny") == ["demo/api-deny-admin"] and
          "demo/api-access-policy" in svc.get("allow", []) and
          pols.get("demo/dry-deny-health", {}).get("dryRun") is True,
          f"config_dump lists the bound policies ({sorted(pols)}, api: {svc})")

    # 5. An edit decides the next request within 1 s of the write.
    mark = len(wp.log())
    edited = example.replace('methods: ["GET", "POST"]', 'methods: ["GET", "POST", "DELETE"]')
    env.extra_docs[0] = edited
    env.write_config()
    written = time.monotonic()
    took = None
    while time.monotonic() - written < 3.0:
        status, _ = request(frontend, "DELETE", "/api/v1/users")
        if status == 200:
            took = time.monotonic() - written
            break
        time.sleep(0.02)  # poll interval of a bounded wait
    check(took is not None and took < 1.0,
          f"after the edit DELETE is allowed within 1 s (took {took})")
    status, _ = request(frontend, "GET", "/api/v1/admin/keys")
    check(status == 403, f"the DENY still applies after the edit ({status})")

    # 6. An invalid policy: rejected with file:line; the last good one stays.
    mark = len(wp.log())
    env.extra_docs.append(BAD)
    env.write_config()
    text = wp.wait_log("config rejected", timeout=5, after=mark)[mark:]
    check("config.yaml:" in text and "ipBlocks[0]: 'not-an-ip' is not an IP address or CIDR"
          in text, "the invalid ipBlocks entry is reported with file:line")
    status, _ = request(frontend, "DELETE", "/api/v1/users")
    check(status == 200, f"the last good policies stay ({status})")
    check(wp.proc.poll() is None, "the waypoint is still running")
    env.extra_docs.pop()
    env.write_config()


if __name__ == "__main__":
    sys.exit(main())
