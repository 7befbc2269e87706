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
  - a denial is `403 RBAC: access denied`, flag RBAC in istio_requests_total,
    counted in ambit_waypoint_rbac_denied_total{policy};
  - AUDIT and dry-run log (`rbac audit`, `rbac shadow denied`) without
    enforcing, and are counted;
  - /config_dump lists the bound policies;
  - an edit (allow DELETE) decides the next request within 1 s of the write;
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
API = "10.96.0.60"
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
                      services={"demo/api.demo.svc.cluster.local": {80: 8080}})
        wp = WaypointPod(env, node=2)
        env.service("api", vip=API, extra=wp.use(),
                    ports=[{"port": 80, "targetPort": 8080, "appProtocol": "http",
                            "name": "http"}])
        b = topo.spawn(api.ns, [PY, BACKEND, "--name", "api-1", "--namespace", "demo",
                                "--http", "8080"])
        topo.wait_line(b, "ready", timeout=15)
        env.extra_docs = [example, AUDIT, DRY_RUN]
        env.start()
        wp.start()
        try:
            run_checks(topo, env, wp, frontend, prom, example)
        finally:
            wp.stop()
            if FAILURES:
                print("---- waypoint log (tail) ----\n" + "\n".join(wp.log().splitlines()[-60:]))
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)" if FAILURES else "all waypoint authz checks passed",
          flush=True)
    return 1 if FAILURES else 0


def run_checks(topo, env, wp, frontend, prom, example):
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

    # 2. h2c streams are decided one by one.
    r = client(topo, frontend, "h2-concurrent", "--url", f"http://{API}/api/v1/users",
               "--count", "20", "--streams", "5", "--method", "DELETE")
    check(r.get("statuses") == {"403": 20}, f"h2c: 20 DELETE streams → 403 ({r.get('statuses')})")
    r = client(topo, frontend, "h2-concurrent", "--url", f"http://{API}/api/v1/users",
               "--count", "20", "--streams", "5")
    check(r.get("statuses") == {"200": 20}, f"h2c: 20 GET streams → 200 ({r.get('statuses')})")

    # 3. AUDIT and dry-run: logged, counted, not enforced.
    log = wp.log()[mark:]
    check("rbac audit: demo/api-audit matched POST /api/v1/users" in log,
          "AUDIT logs the POST it matched (and it was served)")
    check("rbac shadow denied by demo/dry-deny-health: GET /health" in log,
          "the dry-run DENY logs a shadow denial while /health is served")
    text = wp.metrics()
    denied_admin = metric_sum(text, "ambit_waypoint_rbac_denied_total", policy="demo/api-deny-admin")
    denied_none = metric_sum(text, "ambit_waypoint_rbac_denied_total", policy="")
    allowed = metric_sum(text, "ambit_waypoint_rbac_allowed_total",
                         policy="demo/api-access-policy")
    check(denied_admin == 1 and denied_none >= 27 and allowed >= 25,
          f"denials counted by policy (api-deny-admin {denied_admin}, no ALLOW matched "
          f"{denied_none}); allowed {allowed}")
    check(metric_sum(text, "istio_requests_total", reporter="waypoint", response_code="403",
                     response_flags="RBAC") >= 28,
          "istio_requests_total carries response_flags RBAC on the 403s")
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
