#!/usr/bin/env python3
"""Waypoint distributed tracing on real network namespaces (issue 18 item 4).

client pod (node 1, captured) -> agent node-1 ==HBONE==> waypoint pod
(node 2) ==HBONE==> agent node-2 -> `echo` backends; a test collector
(tests/support/trace_collector.py) in the uncaptured `otel-collector` pod
(namespace observability, node 2) records what the waypoint POSTs.

Config: the istio-system/istio ConfigMap (MeshConfig extensionProviders: an
opentelemetry provider by hostname, a zipkin one by IP literal), a mesh-wide
Telemetry (otel, 100 %, customTags literal/header/environment), and
Telemetry with targetRefs to Services: `zecho` → zipkin, `quiet` → 0 %.

Checks:
  - no trace headers: the backend gets a new traceparent (our CLIENT span)
    and an x-request-id; the collector gets a SERVER span (root) and a
    CLIENT span (its child, the id the backend saw), the server containing
    the client in time, with Envoy's tags and the custom tags;
  - an incoming traceparent (HTTP/1.1 and HTTP/2): same trace id upstream, the SERVER span's
    parent is the caller's span, x-request-id unchanged, tracestate kept;
  - a retried request: a CLIENT span per try, the backend sees the last one;
  - B3 multi in → B3 multi out (Zipkin provider, Zipkin v2 JSON), B3 single
    in → b3 single out;
  - malformed traceparent (version ff, zero ids, upper-case hex, short) and
    a huge one: ignored and regenerated, never a crash;
  - randomSamplingPercentage 0: headers propagated (sampled 00), no spans;
  - the collector down: requests unaffected, spans counted as dropped
    (ambit_waypoint_spans_dropped_total{reason="export_failed"}), exported
    counted before; /config_dump shows the providers and the policies.
"""
import argparse
import http.client
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import in_netns, Topology, require_root  # noqa: E402
from ambit_env import AmbitEnv, ROOT  # noqa: E402
from waypoint_env import WaypointPod  # noqa: E402

BACKEND = os.path.join(ROOT, "tests", "support", "echo_backend.py")
COLLECTOR = os.path.join(ROOT, "tests", "support", "trace_collector.py")
CLIENTS = os.path.join(ROOT, "tests", "support", "waypoint_clients.py")
PY = "/usr/bin/python3"
ECHO, ZECHO, QUIET, RECHO = "10.96.0.70", "10.96.0.71", "10.96.0.72", "10.96.0.73"
COLLECTOR_VIP = "10.96.0.79"
FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def metric_sum(text, name, **labels):
    total = 0.0
    for line in text.splitlines():
        if (line.startswith(name + "{") or line.startswith(name + " ")) and \
                all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def mesh_config(zipkin_ip):
    mesh = f"""enableTracing: true
accessLogFile: /dev/stdout
defaultConfig:
  tracing:
    sampling: 1.0
extensionProviders:
- name: otel
  opentelemetry:
    service: otel-collector.observability.svc.cluster.local
    port: 4318
    http:
      path: /v1/traces
- name: zipkin
  zipkin:
    service: {zipkin_ip}
    port: 9411
"""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "istio", "namespace": "istio-system"},
            "data": {"mesh": mesh}}


TELEMETRY = """apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata:
  name: mesh-default
  namespace: istio-system
spec:
  tracing:
  - providers:
    - name: otel
    randomSamplingPercentage: 100
    customTags:
      team:
        literal:
          value: payments
      tenant:
        header:
          name: x-tenant
          defaultValue: none
      home:
        environment:
          name: AMBIT_TRACING_TEST_ENV
          defaultValue: unset
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata:
  name: zecho-zipkin
  namespace: demo
spec:
  targetRefs:
  - kind: Service
    group: ""
    name: zecho
  tracing:
  - providers:
    - name: zipkin
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata:
  name: quiet
  namespace: demo
spec:
  targetRefs:
  - kind: Service
    group: ""
    name: quiet
  tracing:
  - randomSamplingPercentage: 0
  accessLogging:
  - providers:
    - name: envoy
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: recho
  namespace: demo
spec:
  hosts:
  - recho
  http:
  - route:
    - destination:
        host: recho
    retries:
      attempts: 2
      retryOn: 5xx
"""


def request(ns, ip, path, headers=None, timeout=10):
    """(status, response headers, echoed JSON or None)."""
    def run():
        c = http.client.HTTPConnection(ip, 80, timeout=timeout)
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        try:
            body = json.loads(data)
        except ValueError:
            body = None
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    return in_netns(ns, run)


class Collector:
    def __init__(self, topo, pod):
        self.topo, self.pod, self.proc = topo, pod, None

    def start(self):
        self.proc = self.topo.spawn(self.pod.ns, [PY, COLLECTOR, "--port", "4318",
                                                  "--port", "9411"])
        self.topo.wait_line(self.proc, "ready", timeout=10)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)

    def posts(self):
        ip = self.pod.ip

        def run():
            c = http.client.HTTPConnection(ip, 4318, timeout=5)
            c.request("GET", "/__posts")
            return json.loads(c.getresponse().read())
        return in_netns(self.pod.ns, run)

    def spans(self, trace_id, want=2, timeout=6.0):
        """Spans of one trace, normalised: {id, parent, kind, name, start, end, tags, fmt}."""
        deadline = time.monotonic() + timeout
        while True:
            out = []
            for p in self.posts():
                b = p["body"]
                if p["path"] == "/v1/traces" and isinstance(b, dict):
                    for rs in b.get("resourceSpans", []):
                        svc = {a["key"]: a["value"].get("stringValue")
                               for a in rs.get("resource", {}).get("attributes", [])}
                        for ss in rs.get("scopeSpans", []):
                            for s in ss.get("spans", []):
                                if s["traceId"] != trace_id:
                                    continue
                                out.append({
                                    "fmt": "otlp", "id": s["spanId"],
                                    "parent": s.get("parentSpanId", ""),
                                    "kind": {2: "SERVER", 3: "CLIENT"}.get(s["kind"]),
                                    "name": s["name"], "start": int(s["startTimeUnixNano"]),
                                    "end": int(s["endTimeUnixNano"]),
                                    "service": svc.get("service.name"),
                                    "tags": {a["key"]: a["value"].get("stringValue")
                                             for a in s.get("attributes", [])}})
                elif p["path"] == "/api/v2/spans" and isinstance(b, list):
                    for s in b:
                        if s["traceId"].lstrip("0") != trace_id.lstrip("0"):
                            continue
                        out.append({"fmt": "zipkin", "id": s["id"], "parent": s.get("parentId", ""),
                                    "kind": s.get("kind"), "name": s["name"],
                                    "start": s["timestamp"] * 1000,
                                    "end": (s["timestamp"] + s["duration"]) * 1000,
                                    "service": s.get("localEndpoint", {}).get("serviceName"),
                                    "tags": s.get("tags", {})})
            if len(out) >= want or time.monotonic() >= deadline:
                return out
            time.sleep(0.2)  # poll interval while the exporter flushes (1 s)


def client(topo, pod, *args, timeout=30):
    r = topo.ns_exec(pod.ns, [PY, CLIENTS, *args], check=False, timeout=timeout)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"ok": False, "raw": r.stdout[-2000:], "stderr": r.stderr[-2000:]}


def one(headers, name):
    v = headers.get(name) or []
    return v[0] if v else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    require_root()
    os.environ["AMBIT_TRACING_TEST_ENV"] = "from-env"  # inherited by the waypoint
    with Topology(nodes=2) as topo:
        env = AmbitEnv(topo, args.build)
        cl = env.pod(1, "client", sa="client", labels={"app": "client"})
        echo = env.pod(2, "echo-1", sa="echo", labels={"app": "echo"},
                       services={"demo/echo.demo.svc.cluster.local": {80: 8080},
                                 "demo/zecho.demo.svc.cluster.local": {80: 8080},
                                 "demo/quiet.demo.svc.cluster.local": {80: 8080},
                                 "demo/recho.demo.svc.cluster.local": {80: 8080}})
        # The collector: a plain (uncaptured) pod the waypoint dials directly.
        col_pod = env.pod(2, "otel-collector", sa="otel", ns="observability",
                          extra={"netns": ""},
                          services={"observability/otel-collector.observability.svc.cluster.local":
                                    {4318: 4318}})
        wp = WaypointPod(env, node=2)
        http_port = [{"port": 80, "targetPort": 8080, "appProtocol": "http", "name": "http"}]
        for name, vip in (("echo", ECHO), ("zecho", ZECHO), ("quiet", QUIET), ("recho", RECHO)):
            env.service(name, vip=vip, ports=http_port, extra=wp.use())
        env.service("otel-collector", vip=COLLECTOR_VIP, ns="observability",
                    ports=[{"port": 4318, "targetPort": 4318, "name": "http"}])
        b = topo.spawn(echo.ns, [PY, BACKEND, "--name", echo.name, "--namespace", "demo",
                                 "--http", "8080"])
        topo.wait_line(b, "ready", timeout=15)
        collector = Collector(topo, col_pod)
        collector.start()
        env.extra_docs = [mesh_config(col_pod.ip), TELEMETRY]
        env.start()
        wp.start()
        try:
            run_checks(topo, env, wp, cl, collector, col_pod)
        finally:
            code = wp.stop()
            check(code == 0, f"waypoint exits 0 on SIGTERM (got {code})")
            if FAILURES:
                print("---- waypoint log (tail) ----\n" + "\n".join(wp.log().splitlines()[-60:]))
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)" if FAILURES else "all waypoint tracing checks passed",
          flush=True)
    return 1 if FAILURES else 0


def check_pair(spans, trace_id, upstream_parent, caller_span, what, fmt="otlp"):
    server = [s for s in spans if s["kind"] == "SERVER"]
    client = [s for s in spans if s["kind"] == "CLIENT"]
    check(len(server) == 1 and len(client) == 1 and all(s["fmt"] == fmt for s in spans),
          f"{what}: one SERVER and one CLIENT span of trace {trace_id[:8]}… as {fmt} "
          f"({[(s['kind'], s['fmt']) for s in spans]})")
    if len(server) != 1 or len(client) != 1:
        return None, None
    s, c = server[0], client[0]
    check(s["parent"] == (caller_span or ""),
          f"{what}: the SERVER span's parent is the caller's span ({s['parent']!r} vs "
          f"{caller_span!r})")
    check(c["parent"] == s["id"], f"{what}: the CLIENT span is the SERVER span's child")
    check(c["id"] == upstream_parent,
          f"{what}: the backend's parent span is the CLIENT span ({upstream_parent} vs {c['id']})")
    check(s["start"] <= c["start"] <= c["end"] <= s["end"],
          f"{what}: the SERVER span contains the CLIENT span in time "
          f"({s['start']} <= {c['start']} <= {c['end']} <= {s['end']})")
    return s, c


def run_checks(topo, env, wp, cl, collector, col_pod):
    dump = wp.config_dump().get("tracing", {})
    provs = {p["name"]: p for p in dump.get("providers", [])}
    check(provs.get("otel", {}).get("address") == f"{col_pod.ip}:4318" and
          provs.get("zipkin", {}).get("address") == f"{col_pod.ip}:9411",
          f"/config_dump: otel resolved through the mesh model to the collector endpoint, "
          f"zipkin from its IP literal ({[(n, p.get('address'), p.get('resolvedFrom')) for n, p in provs.items()]})")
    check(dump.get("waypoint", {}).get("randomSamplingPercentage") == 100 and
          "demo/zecho.demo.svc.cluster.local" in dump.get("services", {}),
          f"/config_dump: the mesh-wide Telemetry and the zecho Service binding "
          f"({json.dumps(dump.get('waypoint'))[:200]})")
    check("extensionProviders" in dump.get("meshConfig", {}).get("fieldsRead", []),
          f"/config_dump lists the MeshConfig fields read ({dump.get('meshConfig')})")
    obs = wp.config_dump().get("observability", {}).get("accessLog", {})
    quiet = obs.get("services", {}).get("demo/quiet.demo.svc.cluster.local", {})
    check([s.get("provider") for s in quiet.get("providers", [])] == ["envoy"],
          f"Telemetry accessLogging of Service quiet: the envoy provider ({quiet})")

    # 1. No trace headers: a new trace, propagated with our CLIENT span.
    st, _, body = request(cl.ns, ECHO, "/plain", {"x-tenant": "acme"})
    h = body["headers"] if body else {}
    tp = one(h, "traceparent") or ""
    parts = tp.split("-")
    check(st == 200 and len(parts) == 4 and parts[0] == "00" and parts[3] == "01",
          f"no trace headers: the backend gets a new sampled traceparent ({tp!r})")
    check(bool(one(h, "x-request-id")), "no trace headers: the backend gets an x-request-id")
    if len(parts) == 4:
        spans = collector.spans(parts[1])
        s, c = check_pair(spans, parts[1], parts[2], None, "new trace")
        if s:
            t = s["tags"]
            check(t.get("http.method") == "GET" and t.get("http.status_code") == "200" and
                  t.get("http.url", "").endswith("/plain") and
                  t.get("upstream_cluster") == "inbound-vip|80|http|echo.demo.svc.cluster.local"
                  and t.get("istio.namespace") == "demo" and
                  t.get("istio.canonical_service") == "waypoint" and
                  t.get("guid:x-request-id") == one(h, "x-request-id"),
                  f"SERVER span tags as Envoy's waypoint writes them ({t})")
            check(t.get("team") == "payments" and t.get("tenant") == "acme" and
                  t.get("home") == "from-env",
                  f"custom tags: literal, header, environment ({t.get('team')}, "
                  f"{t.get('tenant')}, {t.get('home')})")
            check(s["service"] == "waypoint.demo", f"service.name is waypoint.demo ({s['service']})")

    # 2. An incoming traceparent (+ tracestate, x-request-id): same trace upstream.
    tid, caller = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    rid = "11111111-2222-4333-8444-555555555555"
    st, _, body = request(cl.ns, ECHO, "/with-parent",
                          {"traceparent": f"00-{tid}-{caller}-01", "tracestate": "congo=t61rcWkgMzE",
                           "x-request-id": rid})
    h = body["headers"] if body else {}
    tp = (one(h, "traceparent") or "").split("-")
    check(st == 200 and len(tp) == 4 and tp[1] == tid and tp[2] != caller,
          f"traceparent in: the same trace upstream with a new parent ({one(h, 'traceparent')})")
    check(one(h, "x-request-id") == rid and one(h, "tracestate") == "congo=t61rcWkgMzE",
          f"x-request-id unchanged and tracestate forwarded ({one(h, 'x-request-id')}, "
          f"{one(h, 'tracestate')})")
    if len(tp) == 4:
        spans = collector.spans(tid)
        s, _ = check_pair(spans, tid, tp[2], caller, "traceparent in")
        if s:
            check(s["tags"].get("tenant") == "none", "header tag default value when absent")

    # 2b. The same over HTTP/2 (h2c prior knowledge).
    t2 = "6bf92f3577b34da6a3ce929d0e0e4738"
    r = client(topo, cl, "h2-concurrent", "--url", f"http://{ECHO}/h2", "--count", "1",
               "--header", f"traceparent:00-{t2}-{caller}-01",
               "--count-field", "headers.traceparent")
    seen = list((r.get("field_values") or {}).get("headers.traceparent", {}).keys())
    tp = seen[0].strip("[]'\" ").split("-") if seen else []
    check(len(tp) == 4 and tp[1] == t2, f"HTTP/2: the backend gets the same trace ({seen}, {r.get('ok')})")
    if len(tp) == 4:
        check_pair(collector.spans(t2), t2, tp[2], caller, "HTTP/2 traceparent in")

    # 3. B3 multi in → B3 multi out, Zipkin v2 to the zipkin provider.
    b3t, b3s = "463ac35c9f6413ad48485a3953bb6124", "a2fb4a1d1a96d312"
    st, _, body = request(cl.ns, ZECHO, "/b3multi",
                          {"x-b3-traceid": b3t, "x-b3-spanid": b3s, "x-b3-sampled": "1"})
    h = body["headers"] if body else {}
    check(st == 200 and one(h, "x-b3-traceid") == b3t and one(h, "x-b3-sampled") == "1" and
          one(h, "x-b3-spanid") not in (None, b3s) and bool(one(h, "x-b3-parentspanid")),
          f"B3 multi in → B3 multi out ({one(h, 'x-b3-traceid')}, {one(h, 'x-b3-spanid')}, "
          f"{one(h, 'x-b3-parentspanid')})")
    tp = (one(h, "traceparent") or "").split("-")
    check(len(tp) == 4 and tp[1] == b3t and tp[2] == one(h, "x-b3-spanid"),
          f"…and the same context as traceparent ({one(h, 'traceparent')})")
    spans = collector.spans(b3t)
    s, c = check_pair(spans, b3t, one(h, "x-b3-spanid"), b3s, "B3 in, Zipkin out", fmt="zipkin")
    if s:
        check(one(h, "x-b3-parentspanid") == s["id"], "x-b3-parentspanid is the SERVER span")
    # B3 single (64-bit trace id) in → b3 single out.
    st, _, body = request(cl.ns, ZECHO, "/b3single", {"b3": "80f198ee56343ba8-e457b5a2e4d86bd1-1"})
    h = body["headers"] if body else {}
    b3 = (one(h, "b3") or "").split("-")
    check(st == 200 and len(b3) == 4 and b3[0] == "80f198ee56343ba8" and b3[2] == "1" and
          b3[1] != "e457b5a2e4d86bd1",
          f"b3 single in → b3 single out, 64-bit trace id kept ({one(h, 'b3')})")

    # 3b. A retried request: one CLIENT span per try, the backend sees the last.
    rt = "5bf92f3577b34da6a3ce929d0e0e4737"
    st, _, body = request(cl.ns, RECHO, "/retry?uuid=tracing-retry-1&succeedAfter=1&responseCode=503",
                          {"traceparent": f"00-{rt}-{caller}-01"})
    h = body["headers"] if body else {}
    tp = (one(h, "traceparent") or "").split("-")
    spans = collector.spans(rt, want=3)
    server = [s for s in spans if s["kind"] == "SERVER"]
    clients = sorted((s for s in spans if s["kind"] == "CLIENT"), key=lambda s: s["start"])
    check(st == 200 and len(server) == 1 and len(clients) == 2 and
          all(c["parent"] == server[0]["id"] for c in clients) and len(tp) == 4 and
          clients[-1]["id"] == tp[2] and clients[0]["id"] != tp[2] and
          clients[0]["end"] <= clients[1]["start"],
          f"a retried request: two CLIENT spans under the SERVER span, the backend's parent is "
          f"the last try's ({st}, {[(s['kind'], s['id'], s['parent']) for s in spans]}, "
          f"{one(h, 'traceparent')})")

    # 4. Malformed traceparents are ignored and regenerated; huge values no crash.
    bad = {"version ff": f"ff-{tid}-{caller}-01", "zero trace": f"00-{'0' * 32}-{caller}-01",
           "zero span": f"00-{tid}-{'0' * 16}-01", "upper case": f"00-{tid.upper()}-{caller}-01",
           "short": f"00-{tid[:30]}-{caller}-01", "non-hex": f"00-{'z' * 32}-{caller}-01",
           "version 00 with more": f"00-{tid}-{caller}-01-extra"}
    for what, value in bad.items():
        st, _, body = request(cl.ns, ECHO, "/bad", {"traceparent": value})
        got = (one(body["headers"], "traceparent") if body else "") or ""
        p = got.split("-")
        check(st == 200 and len(p) == 4 and len(p[1]) == 32 and p[1] != tid and
              p[1] != "0" * 32, f"malformed traceparent ({what}) ignored, regenerated ({got})")
    st, _, _ = request(cl.ns, ECHO, "/huge", {"traceparent": "0" * 30000, "b3": "1" * 30000,
                                               "x-b3-traceid": "a" * 30000})
    check(st in (200, 431), f"30 KB trace headers: answered, no crash ({st})")
    st, _, _ = request(cl.ns, ECHO, "/after-huge")
    check(st == 200, f"the waypoint still serves after huge headers ({st})")

    # 5. Sampling 0 %: propagated, not sampled, no spans.
    st, _, body = request(cl.ns, QUIET, "/quiet")
    tp = ((one(body["headers"], "traceparent") if body else "") or "").split("-")
    check(st == 200 and len(tp) == 4 and tp[3] == "00",
          f"randomSamplingPercentage 0: traceparent propagated unsampled ({'-'.join(tp)})")
    if len(tp) == 4:
        check(not collector.spans(tp[1], want=1, timeout=2.5), "…and no span reported")

    # 6. The collector down: requests unaffected, drops counted.
    time.sleep(1.5)  # let the exporter flush what it has
    m = wp.metrics()
    exported = metric_sum(m, "ambit_waypoint_spans_exported_total")
    check(exported >= 6, f"ambit_waypoint_spans_exported_total counts accepted spans ({exported})")
    failed_before = metric_sum(m, "ambit_waypoint_spans_dropped_total", reason="export_failed")
    collector.stop()
    t0 = time.monotonic()
    codes = [request(cl.ns, ECHO, f"/down-{i}")[0] for i in range(20)]
    secs = time.monotonic() - t0
    check(codes == [200] * 20 and secs < 5,
          f"collector down: 20 requests all 200 in {secs:.2f} s")
    deadline = time.monotonic() + 6
    failed = failed_before
    while time.monotonic() < deadline and failed < failed_before + 40:
        time.sleep(0.3)  # poll interval while the exporter tries the dead collector
        failed = metric_sum(wp.metrics(), "ambit_waypoint_spans_dropped_total",
                            reason="export_failed")
    check(failed >= failed_before + 40,
          f"spans_dropped_total{{reason=export_failed}} counts the 40 spans ({failed_before}→{failed})")
    check("span export to otel" in wp.log() and "failed" in wp.log(),
          "the waypoint log says the export failed (once per failure streak)")


if __name__ == "__main__":
    sys.exit(main())
