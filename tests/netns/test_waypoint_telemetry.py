#!/usr/bin/env python3
"""Waypoint access logs and metrics overrides on real network namespaces
(issue 18 items 3 and 5).

client pod (node 1, captured) -> agent node-1 ==HBONE==> waypoint pod
(node 2) ==HBONE==> agent node-2 -> `echo` backend.

Config: the istio-system/istio ConfigMap (accessLogFile → a file,
accessLogEncoding JSON, an envoyFileAccessLog provider `all-text` with
Istio's default TEXT format), tools/examples/access-logging.yaml verbatim
(mesh-wide: the `envoy` provider filtered by `response.code >= 400`;
REQUEST_COUNT disabled, request_protocol removed, destination_service_name
upserted from x-user), and a namespace Telemetry adding `all-text` for every
request (per-provider merge: envoy keeps the mesh filter).

Checks: after 3 × 200, 2 × 503, 1 × 404 —
  - the envoy file has exactly the 3 errors, each line JSON with Istio's 24
    keys and the request's values (numbers typed);
  - the all-text file has all 6 lines in Istio's TEXT format;
  - istio_requests_total absent; istio_request_duration_milliseconds_count
    has the x-user value as destination_service_name and no
    request_protocol label; counters written / filtered;
  - /config_dump shows the providers, filter and overrides;
  - a live edit (filter → `response.code == 200`, REQUEST_COUNT back on)
    applies to the next requests.
"""
import argparse
import http.client
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import in_netns, Topology, require_root  # noqa: E402
from ambit_env import AmbitEnv, ROOT  # noqa: E402
from waypoint_env import WaypointPod  # noqa: E402

BACKEND = os.path.join(ROOT, "tests", "support", "echo_backend.py")
EXAMPLE = os.path.join(ROOT, "tools", "examples", "access-logging.yaml")
PY = "/usr/bin/python3"
ECHO = "10.96.0.80"
FAILURES = []
JSON_KEYS = {
    "start_time", "route_name", "method", "path", "protocol", "response_code",
    "response_flags", "response_code_details", "connection_termination_details",
    "bytes_received", "bytes_sent", "duration", "upstream_service_time", "x_forwarded_for",
    "user_agent", "request_id", "authority", "upstream_host", "upstream_cluster",
    "upstream_local_address", "downstream_local_address", "downstream_remote_address",
    "requested_server_name", "upstream_transport_failure_reason"}
# Istio's default TEXT line.
TEXT_RE = re.compile(
    r'^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\] "(\S+) (\S+) (\S+)" (\d+) (\S+) (\S+) (\S+) '
    r'"([^"]*)" (\d+) (\d+) (\d+) (\S+) "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)" '
    r'(\S+) (\S+) (\S+) (\S+) (\S+) (\S+)$')


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def metric_sum(text, name, **labels):
    """Sum of the samples of `name` (with or without labels) whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if (line.startswith(name + "{") or line.startswith(name + " ")) and \
                all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def mesh_config(log_dir):
    mesh = f"""accessLogFile: {log_dir}/envoy.log
accessLogEncoding: JSON
extensionProviders:
- name: all-text
  envoyFileAccessLog:
    path: {log_dir}/all.log
"""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "istio", "namespace": "istio-system"},
            "data": {"mesh": mesh}}


NS_TELEMETRY = """apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata:
  name: demo-all
  namespace: demo
spec:
  accessLogging:
  - providers:
    - name: all-text
"""


def request(ns, path, headers=None):
    def run():
        c = http.client.HTTPConnection(ECHO, 80, timeout=10)
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        r.read()
        c.close()
        return r.status
    return in_netns(ns, run)


def lines(path, want, timeout=5.0):
    """The file's lines once it has `want` (or what it has at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        out = []
        if os.path.exists(path):
            with open(path) as f:
                out = f.read().splitlines()
        if len(out) >= want or time.monotonic() >= deadline:
            return out
        time.sleep(0.1)  # poll interval while the writer thread flushes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    require_root()
    with Topology(nodes=2) as topo:
        env = AmbitEnv(topo, args.build)
        cl = env.pod(1, "client", sa="client", labels={"app": "client"})
        echo = env.pod(2, "echo-1", sa="echo", labels={"app": "echo"},
                       services={"demo/echo.demo.svc.cluster.local": {80: 8080}})
        wp = WaypointPod(env, node=2)
        env.service("echo", vip=ECHO, extra=wp.use(),
                    ports=[{"port": 80, "targetPort": 8080, "appProtocol": "http", "name": "http"}])
        b = topo.spawn(echo.ns, [PY, BACKEND, "--name", echo.name, "--namespace", "demo",
                                 "--http", "8080"])
        topo.wait_line(b, "ready", timeout=15)
        log_dir = os.path.join(env.dir, "access-logs")
        os.makedirs(log_dir, exist_ok=True)
        with open(EXAMPLE) as f:
            example = f.read()
        env.extra_docs = [mesh_config(log_dir), example, NS_TELEMETRY]
        env.start()
        wp.start()
        try:
            run_checks(env, wp, cl, echo, log_dir, example)
        finally:
            code = wp.stop()
            check(code == 0, f"waypoint exits 0 on SIGTERM (got {code})")
            if FAILURES:
                print("---- waypoint log (tail) ----\n" + "\n".join(wp.log().splitlines()[-40:]))
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)" if FAILURES else "all waypoint telemetry checks passed",
          flush=True)
    return 1 if FAILURES else 0


def run_checks(env, wp, cl, echo, log_dir, example):
    envoy_log, all_log = os.path.join(log_dir, "envoy.log"), os.path.join(log_dir, "all.log")
    sent = [("/ok/1", 200), ("/ok/2", 200), ("/ok/3", 200), ("/status/503", 503),
            ("/status/503", 503), ("/status/404", 404)]
    for path, want in sent:
        st = request(cl.ns, path, {"x-user": "alice", "user-agent": "telemetry-test"})
        check(st == want, f"GET {path} → {want} (got {st})")

    # 1. envoy provider (JSON, mesh-wide filter response.code >= 400): errors only.
    got = lines(envoy_log, 3)
    time.sleep(0.3)  # a fourth (wrong) line would have been written by now
    got = lines(envoy_log, 3)
    check(len(got) == 3, f"the filtered envoy log has the 3 error lines only (got {len(got)})")
    parsed = []
    for ln in got:
        try:
            parsed.append(json.loads(ln))
        except ValueError:
            check(False, f"envoy log line is JSON: {ln[:200]}")
    check(all(set(j) == JSON_KEYS for j in parsed),
          f"each JSON line has Istio's 24 keys ({[sorted(set(j) ^ JSON_KEYS) for j in parsed]})")
    codes = sorted(j.get("response_code") for j in parsed)
    check(codes == [404, 503, 503], f"JSON response_code values are typed numbers ({codes})")
    ok = all(j["method"] == "GET" and j["path"].startswith("/status/") and
             j["protocol"] == "HTTP/1.1" and j["user_agent"] == "telemetry-test" and
             j["authority"] == ECHO and j["upstream_host"] == f"{echo.ip}:8080" and
             j["upstream_cluster"] == "inbound-vip|80|http|echo.demo.svc.cluster.local" and
             j["downstream_local_address"] == f"{ECHO}:80" and
             re.match(r"^\d+\.\d+\.\d+\.\d+:\d+$", j["downstream_remote_address"] or "") and
             j["request_id"] and j["response_code_details"] == "via_upstream" and
             isinstance(j["duration"], int) and isinstance(j["bytes_sent"], int) and
             re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", j["start_time"])
             for j in parsed)
    check(ok, f"JSON values match the requests ({json.dumps(parsed[:1])[:600]})")

    # 2. all-text (namespace Telemetry, no filter): every request, Istio's TEXT format.
    got = lines(all_log, 6)
    check(len(got) == 6, f"the all-text log has all 6 requests (got {len(got)})")
    m = [TEXT_RE.match(ln) for ln in got]
    check(all(m), f"every line is Istio's TEXT format ({[ln for ln, x in zip(got, m) if not x][:2]})")
    if all(m):
        check(sorted(int(x.group(5)) for x in m) == [200, 200, 200, 404, 503, 503] and
              all(x.group(2) == "GET" and x.group(4) == "HTTP/1.1" and
                  x.group(15) == "telemetry-test" and x.group(18) == f"{echo.ip}:8080" for x in m),
              f"TEXT fields: code, method, protocol, user agent, upstream host ({got[0][:300]})")

    # 3. metrics overrides.
    text = wp.metrics()
    reqs = metric_sum(text, "istio_requests_total", reporter="waypoint")
    check(reqs == 0, f"REQUEST_COUNT disabled: no istio_requests_total samples (sum {reqs})")
    count = metric_sum(text, "istio_request_duration_milliseconds_count",
                       destination_service_name="alice")
    check(count == 6, f"destination_service_name upserted from x-user on the duration "
                      f"histogram (count {count})")
    dur = [ln for ln in text.splitlines()
           if ln.startswith("istio_request_duration_milliseconds_count{")]
    check(dur and not any("request_protocol=" in ln for ln in dur),
          f"request_protocol removed ({dur[:1]})")
    written = metric_sum(text, "ambit_waypoint_access_log_lines_written_total")
    filtered = metric_sum(text, "ambit_waypoint_access_log_lines_filtered_total")
    check(written == 9 and filtered == 3,
          f"counters: 9 lines written, 3 filtered (written {written}, filtered {filtered})")

    # 4. /config_dump.
    dump = wp.config_dump().get("observability", {})
    al = dump.get("accessLog", {})
    sinks = {s["provider"]: s for s in al.get("waypoint", {}).get("providers", [])}
    check(sinks.get("envoy", {}).get("filter") == "response.code >= 400" and
          sinks.get("all-text", {}).get("filter") is None and
          sinks.get("envoy", {}).get("path") == os.path.join(log_dir, "envoy.log"),
          f"/config_dump: effective providers and filters ({json.dumps(al.get('waypoint'))[:300]})")
    mt = dump.get("metrics", {}).get("waypoint", {})
    check(mt.get("disabled") == ["REQUEST_COUNT"] and
          mt.get("tagOverrides", {}).get("REQUEST_DURATION", {}).get("request_protocol") ==
          {"operation": "REMOVE"},
          f"/config_dump: metrics overrides ({json.dumps(mt)[:300]})")

    # 5. A live edit: filter → response.code == 200, REQUEST_COUNT back on.
    edited = example.replace('"response.code >= 400"', '"response.code == 200"')
    edited = edited.replace("      disabled: true\n", "      disabled: false\n")
    env.write_config(extra_docs=[mesh_config(log_dir), edited, NS_TELEMETRY])
    deadline = time.monotonic() + 10
    applied = False
    while time.monotonic() < deadline and not applied:
        d = wp.config_dump().get("observability", {}).get("accessLog", {}).get("waypoint", {})
        applied = any(s.get("filter") == "response.code == 200" for s in d.get("providers", []))
        if not applied:
            time.sleep(0.1)  # poll interval while the config file is re-read
    check(applied, "the edited Telemetry is applied (config_dump)")
    for path, want in (("/ok/4", 200), ("/status/500", 500)):
        st = request(cl.ns, path, {"x-user": "bob"})
        check(st == want, f"after the edit: GET {path} → {want} (got {st})")
    got = lines(envoy_log, 4)
    time.sleep(0.3)
    got = lines(envoy_log, 4)
    check(len(got) == 4 and json.loads(got[-1]).get("response_code") == 200,
          f"after the edit the envoy log gets the 200 only ({len(got)} lines)")
    text = wp.metrics()
    reqs = metric_sum(text, "istio_requests_total", destination_service_name="bob")
    check(reqs == 2, f"after the edit REQUEST_COUNT counts again, with the upserted label "
                     f"({reqs})")


if __name__ == "__main__":
    sys.exit(main())
