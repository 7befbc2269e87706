#!/usr/bin/env python3
"""Waypoint routing on real network namespaces (issue 16).

client pod (node 1, captured, app=productpage) -> agent node-1 ==HBONE==>
waypoint pod (node 2) ==HBONE==> agent node-2 -> reviews-v1 / reviews-v2
(version labels; they also back `frontend` and `routes`) and ratings.

Checks, through real agents and sockets:
  - the seed's reviews-routing VirtualService and reviews-destination
    DestinationRule verbatim: 90/10 over 2,000 requests on ONE keep-alive
    connection (±3 %), every `x-canary-user: true` request on v2;
  - the seed's frontend-ab-test (x-experiment: new-checkout → v2);
  - a table of match kinds (VirtualService semantics: plain prefix, exact,
    RE2 full match, ignoreUriCase, header names case-insensitive, query
    names case-sensitive, methods) answered by direct responses;
  - rewrites seen by the backend (prefix `//baz`, regex, authority), request
    and response header set/add/remove, redirects 301/302/303/307/308 with
    their Location, a 0-weight destination getting nothing, unknown subset
    503 NC, no route 404 NR, h2c through the same tables;
  - hot reload from 90/10 to 0/100 under continuous requests: zero failed
    requests, v1 gets none 1 s after the write; a broken file keeps the last
    good config; findings in /config_dump with file:line, counted.
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
REVIEWS, FRONTEND, ROUTES, RATINGS, SHADOW = ("10.96.0.40", "10.96.0.41", "10.96.0.42",
                                              "10.96.0.43", "10.96.0.44")
GW, SVC_V1, SVC_V2, GRPC = "10.96.0.45", "10.96.0.46", "10.96.0.47", "10.96.0.48"
FAILURES = []

SEED = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews-routing
  namespace: demo
spec:
  hosts:
  - reviews
  http:
  - match:
    - headers:
        x-canary-user:
          exact: "true"
    route:
    - destination:
        host: reviews
        subset: v2
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: {w1}
    - destination:
        host: reviews
        subset: v2
      weight: {w2}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews-destination
  namespace: demo
spec:
  host: reviews
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
"""

FRONTEND_AB = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: frontend-ab-test
  namespace: demo
spec:
  hosts:
  - frontend
  http:
  - match:
    - headers:
        x-experiment:
          exact: new-checkout
    route:
    - destination:
        host: frontend
        subset: v2
  - route:
    - destination:
        host: frontend
        subset: v1
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: frontend-destination
  namespace: demo
spec:
  host: frontend
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"""


def direct(name):
    return {"status": 200, "body": {"string": name}}


# One rule per match kind, each answering its own name.
TABLE_RULES = [
    {"match": [{"uri": {"exact": "/exact"}}], "directResponse": direct("exact")},
    {"match": [{"uri": {"prefix": "/api"}}], "directResponse": direct("prefix")},
    {"match": [{"uri": {"regex": "/b[io]t"}}], "directResponse": direct("regex")},
    {"match": [{"uri": {"prefix": "/CaSe"}, "ignoreUriCase": True}],
     "directResponse": direct("nocase")},
    {"match": [{"headers": {"X-Team": {"exact": "blue"}}}], "directResponse": direct("header")},
    {"match": [{"headers": {"x-beta": {}}, "uri": {"prefix": "/h"}}],
     "directResponse": direct("present")},
    {"match": [{"queryParams": {"Mode": {"exact": "fast"}}}], "directResponse": direct("query")},
    {"match": [{"method": {"exact": "PUT"}}], "directResponse": direct("method")},
    {"match": [{"sourceLabels": {"app": "productpage"}, "uri": {"prefix": "/src"}}],
     "directResponse": direct("source")},
    {"match": [{"uri": {"prefix": "/foo"}}], "rewrite": {"uri": "/"},
     "route": [{"destination": {"host": "ratings"}}]},
    {"match": [{"uri": {"prefix": "/service"}}],
     "rewrite": {"uriRegexRewrite": {"match": "^/service/([^/]+)(/.*)$",
                                     "rewrite": "\\2/instance/\\1"}},
     "route": [{"destination": {"host": "ratings"}}]},
    {"match": [{"uri": {"prefix": "/host"}}], "rewrite": {"authority": "rewritten.example"},
     "route": [{"destination": {"host": "ratings"}}]},
    {"match": [{"uri": {"prefix": "/hdr"}}],
     "headers": {"request": {"set": {"x-set": "S"}, "add": {"x-add": "A"}, "remove": ["x-drop"]},
                 "response": {"set": {"x-resp-set": "RS"}, "add": {"x-resp-add": "RA"},
                              "remove": ["x-backend-drop"]}},
     "route": [{"destination": {"host": "ratings"}}]},
    {"match": [{"uri": {"prefix": "/r301"}}], "redirect": {"uri": "/moved"}},
    {"match": [{"uri": {"prefix": "/r302"}}],
     "redirect": {"authority": "other.example", "redirectCode": 302}},
    {"match": [{"uri": {"prefix": "/r303"}}], "redirect": {"scheme": "https", "redirectCode": 303}},
    {"match": [{"uri": {"prefix": "/r307"}}], "redirect": {"port": 8443, "redirectCode": 307}},
    {"match": [{"uri": {"prefix": "/r308"}}], "redirect": {"uri": "/p", "redirectCode": 308}},
    {"match": [{"uri": {"prefix": "/zero"}}],
     "route": [{"destination": {"host": "routes", "subset": "v1"}, "weight": 100},
               {"destination": {"host": "routes", "subset": "v2"}, "weight": 0}]},
    {"match": [{"uri": {"prefix": "/nosubset"}}],
     "route": [{"destination": {"host": "routes", "subset": "v9"}}]},
    {"match": [{"uri": {"prefix": "/backend"}}], "route": [{"destination": {"host": "routes"}}]},
    {"match": [{"uri": {"prefix": "/tmo"}}], "timeout": "500ms",
     "route": [{"destination": {"host": "routes", "subset": "v1"}}]},
    {"match": [{"uri": {"prefix": "/abort"}}],
     "fault": {"abort": {"httpStatus": 418, "percentage": {"value": 50}}},
     "route": [{"destination": {"host": "routes", "subset": "v1"}}]},
    {"match": [{"uri": {"prefix": "/delay"}}],
     "fault": {"delay": {"fixedDelay": "300ms", "percentage": {"value": 100}}},
     "route": [{"destination": {"host": "routes", "subset": "v1"}}]},
    {"match": [{"uri": {"prefix": "/mirror"}}],
     "headers": {"request": {"set": {"x-edited": "yes"}}},
     "route": [{"destination": {"host": "routes", "subset": "v1"}}],
     "mirror": {"host": "ratings"}},
    {"match": [{"uri": {"prefix": "/slowmirror"}}],
     "route": [{"destination": {"host": "routes", "subset": "v1"}}],
     "mirrors": [{"destination": {"host": "shadow"}}]},
    {"match": [{"uri": {"prefix": "/pmirror"}}],
     "route": [{"destination": {"host": "routes", "subset": "v1"}}],
     "mirror": {"host": "ratings"}, "mirrorPercentage": {"value": 30}},
]

ROUTES_DOCS = [
    {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
     "metadata": {"name": "routes-table", "namespace": "demo"},
     "spec": {"hosts": ["routes.demo.svc.cluster.local"], "http": TABLE_RULES}},
    {"apiVersion": "networking.istio.io/v1alpha3", "kind": "DestinationRule",
     "metadata": {"name": "routes", "namespace": "demo"},
     "spec": {"host": "routes", "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                            {"name": "v2", "labels": {"version": "v2"}}],
              "trafficPolicy": {"loadBalancer": {"simple": "PASSTHROUGH"}}}},
]


def httproute(name, rules, parent="gw", port=80, created=None):
    meta = {"name": name, "namespace": "demo"}
    if created:
        meta["creationTimestamp"] = created
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta,
            "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": parent,
                                     "port": port}],
                     "rules": rules}}


def backend(name, weight=None):
    b = {"name": name, "port": 80}
    if weight is not None:
        b["weight"] = weight
    return b


# HTTPRoutes on `gw` (endpoints reviews-v1/v2): precedence spans routes.
GATEWAY_DOCS = [
    httproute("split", [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/split"}}],
         "backendRefs": [backend("svc-v1", 70), backend("svc-v2", 30), backend("ratings", 0)]}],
        created="2026-01-01T00:00:00Z"),
    httproute("paths", [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/v2/"}}],
         "backendRefs": [backend("svc-v2")]},
        {"matches": [{"path": {"type": "Exact", "value": "/exact"}}],
         "backendRefs": [backend("ratings")]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/exact"}}],
         "backendRefs": [backend("svc-v2")]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/m"}, "method": "POST"}],
         "backendRefs": [backend("ratings")]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/m"},
                      "headers": [{"name": "X-Pick", "value": "v2"}]}],
         "backendRefs": [backend("svc-v2")]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/m"},
                      "queryParams": [{"name": "Pick", "value": "ratings"}]}],
         "backendRefs": [backend("ratings")]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/m"}}],
         "backendRefs": [backend("svc-v1")]},
        {"matches": [{"path": {"type": "RegularExpression", "value": "/b[io]t"}}],
         "backendRefs": [backend("svc-v2")]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/strip"}}],
         "filters": [{"type": "URLRewrite", "urlRewrite": {"path": {
             "type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}],
         "backendRefs": [backend("ratings")]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/foo"}}],
         "filters": [{"type": "URLRewrite", "urlRewrite": {"hostname": "gw-rewritten",
                      "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/xyz"}}}],
         "backendRefs": [backend("ratings")]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/full"}}],
         "filters": [{"type": "URLRewrite", "urlRewrite": {"path": {
             "type": "ReplaceFullPath", "replaceFullPath": "/replaced"}}},
                     {"type": "RequestHeaderModifier", "requestHeaderModifier": {
                         "set": [{"name": "X-Gw-Set", "value": "1"}],
                         "add": [{"name": "X-Gw-Add", "value": "b"}],
                         "remove": ["X-Gw-Drop"]}},
                     {"type": "ResponseHeaderModifier", "responseHeaderModifier": {
                         "add": [{"name": "X-Gw-Resp", "value": "r"}]}}],
         "backendRefs": [backend("ratings")]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/redir"}}],
         "filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}}]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/redir301"}}],
         "filters": [{"type": "RequestRedirect", "requestRedirect": {
             "hostname": "elsewhere.example", "statusCode": 301}}]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/gslow"}}],
         "timeouts": {"request": "500ms"}, "backendRefs": [backend("svc-v1")]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/missing"}}],
         "backendRefs": [backend("no-such-service")]},
    ], created="2026-02-01T00:00:00Z"),
    {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
     "metadata": {"name": "grpc", "namespace": "demo"},
     "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "grpcsvc", "port": 9090}],
              "rules": [
                  {"matches": [{"method": {"service": "echo.Echo", "method": "Unary"}}],
                   "backendRefs": [{"name": "grpcsvc", "port": 9090}]},
                  {"matches": [{"method": {"service": "echo.Echo", "method": "Headers"},
                                "headers": [{"name": "x-route", "value": "yes"}]}],
                   "backendRefs": [{"name": "grpcsvc", "port": 9090}]}]}},
]


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def client(topo, pod, *args, timeout=180):
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


class Http:
    """Requests from inside the client pod on one keep-alive connection."""

    def __init__(self, ns, ip):
        self.ns, self.ip = ns, ip

    def get(self, path, headers=None, method="GET", host=None):
        def body():
            c = http.client.HTTPConnection(self.ip, 80, timeout=10)
            h = dict(headers or {})
            if host:
                h["Host"] = host
            c.request(method, path, headers=h)
            r = c.getresponse()
            data = r.read()
            out = (r.status, {k.lower(): v for k, v in r.getheaders()}, data)
            c.close()
            return out
        return in_netns(self.ns, body)

    def text(self, path, **kw):
        status, _, data = self.get(path, **kw)
        return status, data.decode(errors="replace")

    def echo(self, path, **kw):
        status, headers, data = self.get(path, **kw)
        try:
            return status, headers, json.loads(data)
        except ValueError:
            return status, headers, {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--requests", type=int, default=2000)
    args = ap.parse_args()
    require_root()
    with Topology(nodes=2) as topo:
        env = AmbitEnv(topo, args.build)
        cl = env.pod(1, "productpage", sa="productpage", labels={"app": "productpage"})
        keys = {s: f"demo/{s}.demo.svc.cluster.local" for s in ("reviews", "frontend", "routes",
                                                                 "gw")}
        pods = []
        for v in ("v1", "v2"):
            svcs = {k: {80: 8080} for k in keys.values()}
            svcs[f"demo/svc-{v}.demo.svc.cluster.local"] = {80: 8080}
            if v == "v1":
                svcs["demo/grpcsvc.demo.svc.cluster.local"] = {9090: 9090}
            pods.append(env.pod(2, f"reviews-{v}", sa="reviews",
                                labels={"app": "reviews", "version": v}, services=svcs))
        ratings = env.pod(2, "ratings", sa="ratings",
                          services={"demo/ratings.demo.svc.cluster.local": {80: 8080}})
        shadow = env.pod(2, "shadow", sa="shadow",
                         services={"demo/shadow.demo.svc.cluster.local": {80: 8080}})
        wp = WaypointPod(env, node=2)
        http_port = [{"port": 80, "targetPort": 8080, "appProtocol": "http", "name": "http"}]
        for name, vip in (("reviews", REVIEWS), ("frontend", FRONTEND), ("routes", ROUTES),
                          ("ratings", RATINGS), ("shadow", SHADOW), ("gw", GW),
                          ("svc-v1", SVC_V1), ("svc-v2", SVC_V2)):
            env.service(name, vip=vip, ports=http_port, extra=wp.use())
        env.service("grpcsvc", vip=GRPC, extra=wp.use(),
                    ports=[{"port": 9090, "targetPort": 9090, "appProtocol": "grpc",
                            "name": "grpc"}])
        for p in pods + [ratings, shadow]:
            extra = ["--delay", "2s"] if p is shadow else []
            if p.name == "reviews-v1":
                extra = ["--grpc", "9090"]
            b = topo.spawn(p.ns, [PY, BACKEND, "--name", p.name, "--namespace", "demo",
                                  "--http", "8080", *extra])
            topo.wait_line(b, "ready", timeout=15)
        env.extra_docs = [SEED.format(w1=90, w2=10), FRONTEND_AB] + ROUTES_DOCS + GATEWAY_DOCS
        env.start()
        wp.start()
        try:
            run_checks(topo, env, wp, cl, ratings, shadow, args)
        finally:
            code = wp.stop()
            check(code == 0, f"waypoint exits 0 on SIGTERM (got {code})")
            if FAILURES:
                print("---- waypoint log (tail) ----\n" + "\n".join(wp.log().splitlines()[-60:]))
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)" if FAILURES else "all waypoint route checks passed",
          flush=True)
    return 1 if FAILURES else 0


def run_checks(topo, env, wp, cl, ratings, shadow, args):
    n = args.requests
    # 1. The seed's canary, verbatim: 90/10 on one keep-alive connection.
    r = client(topo, cl, "http1-keepalive", "--url", f"http://{REVIEWS}/", "--count", str(n))
    pods = r.get("pods", {})
    share = pods.get("reviews-v1", 0) / n
    check(r.get("ok") and r.get("connections") == 1 and r.get("statuses") == {"200": n},
          f"{n} requests on one keep-alive connection answer 200 ({r.get('statuses')}, "
          f"{r.get('connections')} connection(s), {r.get('errors')})")
    check(abs(share - 0.9) <= 0.03 and set(pods) <= {"reviews-v1", "reviews-v2"},
          f"reviews-routing splits 90/10 ±3% per request (v1 {share:.3f}, {pods})")
    r = client(topo, cl, "http1-keepalive", "--url", f"http://{REVIEWS}/", "--count", "200",
               "--header", "x-canary-user:true")
    check(r.get("pods") == {"reviews-v2": 200},
          f"every x-canary-user: true request goes to v2 ({r.get('pods')})")
    r = client(topo, cl, "h2-concurrent", "--url", f"http://{REVIEWS}/", "--count", "400",
               "--streams", "50", "--header", "x-canary-user:true")
    check(r.get("pods") == {"reviews-v2": 400},
          f"h2c: the canary header routes every stream to v2 ({r.get('pods')})")
    text = wp.metrics()
    v2 = metric_sum(text, "istio_requests_total", reporter="waypoint",
                    destination_service="reviews.demo.svc.cluster.local",
                    destination_workload="reviews-v2")
    check(v2 >= 600, f"istio_requests_total counts the v2 requests by destination workload ({v2})")

    # 2. The seed's frontend-ab-test.
    r = client(topo, cl, "http1-keepalive", "--url", f"http://{FRONTEND}/", "--count", "100",
               "--header", "x-experiment:new-checkout")
    check(r.get("pods") == {"reviews-v2": 100},
          f"frontend-ab-test: x-experiment: new-checkout → v2 ({r.get('pods')})")
    r = client(topo, cl, "http1-keepalive", "--url", f"http://{FRONTEND}/", "--count", "100",
               "--header", "x-experiment:old")
    check(r.get("pods") == {"reviews-v1": 100}, f"everyone else → v1 ({r.get('pods')})")

    # 3. Match kinds, answered by the matching rule's direct response.
    h = Http(cl.ns, ROUTES)
    table = [
        ("/exact", {}, "GET", "exact"), ("/exact/", {}, "GET", None), ("/EXACT", {}, "GET", None),
        ("/api", {}, "GET", "prefix"), ("/apiv2", {}, "GET", "prefix"),
        ("/bit", {}, "GET", "regex"), ("/bot", {}, "GET", "regex"), ("/bite", {}, "GET", None),
        ("/case/x", {}, "GET", "nocase"), ("/CASE", {}, "GET", "nocase"),
        ("/x", {"x-team": "blue"}, "GET", "header"), ("/x", {"X-TEAM": "blue"}, "GET", "header"),
        ("/x", {"x-team": "Blue"}, "GET", None),
        ("/h", {"x-beta": "anything"}, "GET", "present"), ("/h", {}, "GET", None),
        ("/x?Mode=fast", {}, "GET", "query"), ("/x?mode=fast", {}, "GET", None),
        ("/x?Mode=slow", {}, "GET", None),
        ("/x", {}, "PUT", "method"), ("/x", {}, "POST", None),
        ("/src", {}, "GET", "source"),
    ]
    bad = []
    for path, headers, method, want in table:
        status, body = h.text(path, headers=headers, method=method)
        got = body if status == 200 else None
        if want is None and status != 404:
            bad.append((path, headers, method, status, body[:40]))
        elif want is not None and got != want:
            bad.append((path, headers, method, status, body[:40]))
    check(not bad, f"{len(table)} match-table rows route as VirtualService semantics say "
                   f"(mismatches: {bad})")

    # 4. Rewrites seen by the backend.
    status, _, e = h.echo("/foo/baz?q=1")
    check(status == 200 and e.get("pod") == "ratings" and e.get("path") == "//baz?q=1",
          f"prefix /foo + rewrite / turns /foo/baz into //baz, query kept ({e.get('path')})")
    status, _, e = h.echo("/service/alpha/items")
    check(e.get("path") == "/items/instance/alpha",
          f"uriRegexRewrite with groups ({status}, {e.get('path')})")
    status, _, e = h.echo("/host")
    check(e.get("host") == "rewritten.example", f"authority rewrite ({e.get('host')})")
    status, rh, e = h.echo("/hdr", headers={"x-set": "old", "x-add": "first", "x-drop": "bye",
                                            "X-Echo-Set-Header": "x-backend-drop:1,x-kept:2"})
    eh = e.get("headers", {})
    check(eh.get("x-set") == ["S"] and eh.get("x-add") == ["first", "A"] and "x-drop" not in eh,
          f"request headers set/add/remove reach the backend ({ {k: eh.get(k) for k in ('x-set', 'x-add', 'x-drop')} })")
    check(rh.get("x-resp-set") == "RS" and rh.get("x-resp-add") == "RA" and
          "x-backend-drop" not in rh and rh.get("x-kept") == "2",
          f"response headers set/add/remove reach the client ({ {k: rh.get(k) for k in ('x-resp-set', 'x-resp-add', 'x-backend-drop', 'x-kept')} })")

    # 5. Redirects and their Location.
    want = {
        "/r301/a?x=1": (301, "http://routes.demo:8080/moved?x=1"),
        "/r302": (302, "http://other.example/r302"),
        "/r303": (303, "https://routes.demo:8080/r303"),
        "/r307": (307, "http://routes.demo:8443/r307"),
        "/r308": (308, "http://routes.demo:8080/p"),
    }
    got = {}
    for path in want:
        status, headers, _ = h.get(path, host="routes.demo:8080")
        got[path] = (status, headers.get("location"))
    check(got == want, f"redirects answer their code and Location ({got})")

    # 6. Weight 0, unknown subset, no route, and the default route elsewhere.
    r = client(topo, cl, "http1-keepalive", "--url", f"http://{ROUTES}/zero", "--count", "100")
    check(r.get("pods") == {"reviews-v1": 100}, f"a 0-weight destination gets nothing ({r.get('pods')})")
    status, _ = h.text("/nosubset")
    check(status == 503, f"a destination with an unknown subset answers 503 NC ({status})")
    status, _ = h.text("/nothing-matches")
    check(status == 404, f"no matching route answers 404 NR ({status})")
    r = client(topo, cl, "http1-keepalive", "--url", f"http://{RATINGS}/", "--count", "20")
    check(r.get("pods") == {"ratings": 20}, f"a service without routes keeps its default route ({r.get('pods')})")
    text = wp.metrics()
    check(metric_sum(text, "ambit_waypoint_route_outcomes_total", outcome="route_not_found") >= 1 and
          metric_sum(text, "ambit_waypoint_route_outcomes_total", outcome="redirect") >= 5 and
          metric_sum(text, "istio_requests_total", response_flags="NR") >= 1,
          "route outcomes are counted (route_not_found, redirect; response_flags NR)")

    # 7. Timeouts: 504 (flag UT) once the route's timeout passes; the
    # upstream stream is reset; fast requests are untouched.
    t0 = time.monotonic()
    status, body = h.text("/tmo?delay=2s")
    took = time.monotonic() - t0
    check(status == 504 and "upstream request timeout" in body and took < 1.5,
          f"VirtualService timeout 500ms: 504 after {took:.2f}s ({status} {body[:40]!r})")
    status, _ = h.text("/tmo?delay=100ms")
    check(status == 200, f"a request within the timeout answers 200 ({status})")
    r = client(topo, cl, "h2-concurrent", "--url", f"http://{ROUTES}/tmo?delay=2s", "--count", "4",
               "--streams", "4")
    check(r.get("statuses") == {"504": 4} and r.get("latency_ms", {}).get("max", 9e9) < 1500,
          f"h2c: the timeout answers 504 on each stream ({r.get('statuses')}, "
          f"{r.get('latency_ms')})")
    check(metric_sum(wp.metrics(), "istio_requests_total", response_code="504",
                     response_flags="UT") >= 5, "timeouts are counted with response_flags UT")

    # Faults: an abort share within 3 sigma, answered locally (flag FI);
    # a delay holds the request before it goes upstream (flag DI).
    r = client(topo, cl, "http1-keepalive", "--url", f"http://{ROUTES}/abort", "--count", "400")
    st = r.get("statuses", {})
    sigma = (400 * 0.25) ** 0.5
    check(set(st) <= {"200", "418"} and abs(st.get("418", 0) - 200) <= 3 * sigma and
          r.get("pods", {}).get("reviews-v1", 0) == st.get("200", -1),
          f"fault abort 50% of 400 answers 418 within 3 sigma, the rest reach v1 ({st})")
    t0 = time.monotonic()
    status, _, e = h.echo("/delay")
    took = time.monotonic() - t0
    check(status == 200 and e.get("pod") == "reviews-v1" and 0.3 <= took < 1.0,
          f"fault delay 300ms holds the request, then it is served ({took:.2f}s)")
    text = wp.metrics()
    check(metric_sum(text, "istio_requests_total", response_code="418", response_flags="FI") >= 150
          and metric_sum(text, "ambit_waypoint_route_outcomes_total", outcome="fault_delay") >= 1,
          "faults are counted (response_flags FI, outcome fault_delay)")

    # 8. Mirrors: the copy arrives (edited, authority -shadow), the client
    # sees only the primary's answer, a slow mirror does not delay it, and a
    # 30 % mirror copies 30 % within 3 sigma.
    stats_url = f"http://{ratings.ip}:8080/"
    client(topo, cl, "stats", "--url", stats_url, "--reset")
    status, _, e = h.echo("/mirror/one", host="routes.demo")
    check(status == 200 and e.get("pod") == "reviews-v1",
          f"a mirrored request gets the primary's answer ({status}, {e.get('pod')})")
    time.sleep(0.5)  # the copy is sent beside the primary
    st = client(topo, cl, "stats", "--url", stats_url, "--reset")
    check(st.get("paths", {}).get("/mirror/one") == 1 and
          st.get("hosts", {}).get("routes.demo-shadow") == 1,
          f"the mirror receives one copy, authority suffixed -shadow ({st.get('paths')}, "
          f"{st.get('hosts')})")
    client(topo, cl, "stats", "--url", f"http://{shadow.ip}:8080/", "--reset")
    t0 = time.monotonic()
    status, _, e = h.echo("/slowmirror")
    took = time.monotonic() - t0
    time.sleep(2.5)  # the shadow answers after 2 s
    st = client(topo, cl, "stats", "--url", f"http://{shadow.ip}:8080/")
    check(st.get("paths", {}).get("/slowmirror") == 1,
          f"the slow mirror got its copy ({st.get('paths')})")
    check(status == 200 and took < 1.0,
          f"a mirror that answers after 2 s does not delay the primary ({took:.2f}s)")
    r = client(topo, cl, "http1-keepalive", "--url", f"http://{ROUTES}/pmirror", "--count", "500")
    time.sleep(1.0)
    st = client(topo, cl, "stats", "--url", stats_url, "--reset")
    got = st.get("paths", {}).get("/pmirror", 0)
    sigma = (500 * 0.3 * 0.7) ** 0.5
    check(r.get("statuses") == {"200": 500} and abs(got - 150) <= 3 * sigma,
          f"mirrorPercentage 30 copies 150±{3 * sigma:.0f} of 500 (got {got})")
    text = wp.metrics()
    check(metric_sum(text, "ambit_waypoint_route_outcomes_total", outcome="mirror_sent") >= 100,
          "mirror copies are counted (mirror_sent)")

    # 9. HTTPRoute / GRPCRoute (Gateway API semantics).
    gateway_checks(topo, cl)

    # 10. config_dump: tables, subset clusters, findings with file:line.
    dump = wp.config_dump()
    tables = {t["name"]: t for t in dump.get("routes", [])}
    check("reviews.demo.svc.cluster.local:80" in tables and
          len(tables["reviews.demo.svc.cluster.local:80"]["routes"]) == 2,
          f"config_dump lists the reviews route table ({list(tables)})")
    clusters = {c["name"]: c for c in dump.get("clusters", [])}
    sub = clusters.get("inbound-vip|80|http/v2|reviews.demo.svc.cluster.local", {})
    check([e["workload"] for e in sub.get("endpoints", [])] == ["demo/reviews-v2"],
          f"the v2 subset cluster has exactly the v2 endpoint ({sub})")
    out = topo.ns_exec(wp.pod.ns, [env.ctl_bin, "routes", "--admin", "http://127.0.0.1:15000"],
                       check=False).stdout
    check("reviews.demo.svc.cluster.local:80" in out and
          "inbound-vip|80|http/v2|reviews.demo.svc.cluster.local (10)" in out and
          "HTTPRoute demo/paths" in out,
          f"ambitctl routes shows the tables:\n{out[:600]}")
    findings = [f for f in dump.get("findings", []) if "trafficPolicy" in f]
    check(len(findings) == 1 and findings[0].startswith(env.config_path + ":"),
          f"an unsupported value (PASSTHROUGH) is a finding with file:line ({findings})")
    check(metric_sum(wp.metrics(), "ambit_config_findings", kind="DestinationRule") >= 1,
          "ambit_config_findings counts it")

    # 11. Reload 90/10 → 0/100 under continuous requests.
    results = {}

    def background():
        results["r"] = client(topo, cl, "http1-keepalive", "--url", f"http://{REVIEWS}/",
                              "--count", "100000", "--deadline", "4")
    t = threading.Thread(target=background)
    t.start()
    time.sleep(1.0)
    mark = len(wp.log())
    env.extra_docs[0] = SEED.format(w1=0, w2=100)
    env.write_config()
    written = time.monotonic()
    wp.wait_log("config applied", timeout=5, after=mark)
    time.sleep(max(0.0, written + 1.0 - time.monotonic()))
    r = client(topo, cl, "http1-keepalive", "--url", f"http://{REVIEWS}/", "--count", "300")
    t.join(timeout=30)
    bg = results.get("r", {})
    # The client stops itself at --deadline (counted as "deadline"): that is
    # the only error kind allowed.
    errors = {k: v for k, v in bg.get("errors", {"missing": 1}).items() if k != "deadline"}
    check(errors == {} and set(bg.get("statuses", {})) == {"200"} and bg.get("done", 0) > 50,
          f"no request fails across the reload ({bg.get('done')} done, {bg.get('statuses')}, "
          f"{bg.get('errors')})")
    check(r.get("pods") == {"reviews-v2": 300},
          f"1 s after the write v1 gets none ({r.get('pods')})")

    # 12. A broken file is rejected; the last good routes stay.
    mark = len(wp.log())
    with open(env.config_path, "a") as f:
        f.write("---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n  bad: [\n")
    wp.wait_log("config rejected", timeout=5, after=mark)
    r = client(topo, cl, "http1-keepalive", "--url", f"http://{REVIEWS}/", "--count", "50")
    check(r.get("pods") == {"reviews-v2": 50},
          f"a broken file keeps the last good routes ({r.get('pods')})")
    rejected = wp.log()[mark:]
    check(env.config_path + ":" in rejected, "the rejection names file:line")


def gateway_checks(topo, cl):
    r = client(topo, cl, "http1-keepalive", "--url", f"http://{GW}/split", "--count", "500")
    pods = r.get("pods", {})
    check(r.get("statuses") == {"200": 500} and abs(pods.get("reviews-v1", 0) - 350) <= 25 and
          abs(pods.get("reviews-v2", 0) - 150) <= 25 and "ratings" not in pods,
          f"HTTPRoute 70/30/0 over 500 requests ±5%, weight 0 gets none ({pods})")
    g = Http(cl.ns, GW)
    table = [
        # PathPrefix matches whole segments; a trailing / in the value is ignored.
        ("/v2", {}, "GET", "reviews-v2"), ("/v2/", {}, "GET", "reviews-v2"),
        ("/v2/x", {}, "GET", "reviews-v2"), ("/v2example", {}, "GET", None),
        # Exact beats a prefix of the same text.
        ("/exact", {}, "GET", "ratings"), ("/exact/sub", {}, "GET", "reviews-v2"),
        ("/EXACT", {}, "GET", None),
        # Same prefix: method > header count > query count > plain.
        ("/m", {"x-pick": "v2"}, "POST", "ratings"), ("/m", {"X-PICK": "v2"}, "GET", "reviews-v2"),
        ("/m?Pick=ratings", {}, "GET", "ratings"), ("/m?pick=ratings", {}, "GET", "reviews-v1"),
        ("/m", {}, "GET", "reviews-v1"),
        ("/bit", {}, "GET", "reviews-v2"), ("/bite", {}, "GET", None),
    ]
    bad = []
    for path, headers, method, want in table:
        status, _, e = g.echo(path, headers=headers, method=method)
        if (want is None and status != 404) or (want is not None and e.get("pod") != want):
            bad.append((path, headers, method, status, e.get("pod")))
    check(not bad, f"{len(table)} HTTPRoute rows follow the Gateway API precedence ({bad})")
    rows = {"/strip": "/", "/strip/three": "/three", "/foo/bar": "/xyz/bar", "/foo": "/xyz",
            "/stripx": None}
    got = {}
    for path, want in rows.items():
        status, _, e = g.echo(path)
        got[path] = e.get("path") if status == 200 else status
    check(got == {"/strip": "/", "/strip/three": "/three", "/foo/bar": "/xyz/bar",
                  "/foo": "/xyz", "/stripx": 404},
          f"ReplacePrefixMatch rows (never //) ({got})")
    status, rh, e = g.echo("/full/a?q=1", headers={"x-gw-set": "0", "x-gw-add": "a",
                                                   "x-gw-drop": "1"})
    eh = e.get("headers", {})
    check(e.get("path") == "/replaced?q=1" and eh.get("x-gw-set") == ["1"] and
          eh.get("x-gw-add") == ["a", "b"] and "x-gw-drop" not in eh and
          rh.get("x-gw-resp") == "r",
          f"ReplaceFullPath and header modifiers ({e.get('path')}, {eh.get('x-gw-set')}, "
          f"{eh.get('x-gw-add')}, {rh.get('x-gw-resp')})")
    status, _, e = g.echo("/foo/q")
    check(e.get("host") == "gw-rewritten", f"URLRewrite hostname ({e.get('host')})")
    got = {}
    for path in ("/redir/a", "/redir301"):
        status, headers, _ = g.get(path, host="gw.demo:8080")
        got[path] = (status, headers.get("location"))
    check(got == {"/redir/a": (302, "https://gw.demo/redir/a"),
                  "/redir301": (301, "http://elsewhere.example/redir301")},
          f"RequestRedirect: 302 default, https drops the port, hostname (listener port 80) ({got})")
    t0 = time.monotonic()
    status, _ = g.text("/gslow?delay=2s")
    took = time.monotonic() - t0
    check(status == 504 and took < 1.5,
          f"HTTPRoute timeouts.request 500ms: 504 after {took:.2f}s ({status})")
    status, _ = g.text("/missing")
    check(status == 500, f"an unresolvable backendRef answers 500 ({status})")
    r = client(topo, cl, "grpc-unary", "--target", f"{GRPC}:9090", "--count", "5")
    check(r.get("codes") == {"OK": 5}, f"GRPCRoute method match routes Unary ({r.get('codes')})")
    r = client(topo, cl, "grpc-unary", "--target", f"{GRPC}:9090", "--method", "Headers",
               "--metadata", "x-route:yes")
    check(r.get("codes") == {"OK": 1}, f"GRPCRoute method + header match ({r.get('codes')})")
    r = client(topo, cl, "grpc-unary", "--target", f"{GRPC}:9090", "--method", "Headers",
               "--expect-code", "UNIMPLEMENTED")
    check(r.get("codes") == {"UNIMPLEMENTED": 1},
          f"GRPCRoute without a matching rule answers UNIMPLEMENTED ({r.get('codes')})")


if __name__ == "__main__":
    sys.exit(main())
