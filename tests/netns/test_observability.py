#!/usr/bin/env python3
"""Metrics, access logs and admin of real agents (ISSUE: observability).

After N connections with known byte counts between two pods, both agents'
istio_tcp_* counters show exactly those numbers with the right labels; a
denied connection is counted with response_flags="DENY"; the exposition
passes prometheus_client's strict parser; /config_dump validates against
tests/golden/config_dump.schema.json; JSON access logs carry every field.
"""
import argparse
import json
import os
import socket
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, in_netns, require_root  # noqa: E402
from ambit_env import AmbitEnv, ROOT  # noqa: E402

FAILURES = []
N = 5
UP, DOWN = 3000, 7000  # bytes client -> server, server -> client per connection


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


SINK = r"""
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(64)
print("ready", flush=True)
def serve(c):
    with c:
        got = 0
        while got < int(sys.argv[2]):
            d = c.recv(65536)
            if not d: break
            got += len(d)
        c.sendall(b"r" * int(sys.argv[3]))
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def exchange(ns, ip, port):
    def body():
        s = socket.create_connection((ip, port), timeout=5)
        s.settimeout(5)
        s.sendall(b"q" * UP)
        got = 0
        while got < DOWN:
            d = s.recv(65536)
            if not d:
                break
            got += len(d)
        s.close()
        return got
    return in_netns(ns, body)


def fetch(ns, url, accept=None):
    def body():
        req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
        return urllib.request.urlopen(req, timeout=3).read().decode()
    return in_netns(ns, body)


def series(text, name, **labels):
    from prometheus_client.parser import text_string_to_metric_families
    total = 0
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    require_root()
    with Topology(nodes=2, tag="o") as topo:
        env = AmbitEnv(topo, args.build)
        client = env.pod(1, "client", sa="sleep")
        stranger = env.pod(1, "stranger", sa="stranger")
        server = env.pod(2, "server", sa="httpbin", labels={"app": "server"})
        env.extra_docs = [{"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                           "metadata": {"name": "only-sleep", "namespace": "demo"},
                           "spec": {"selector": {"matchLabels": {"app": "server"}},
                                    "rules": [{"from": [{"source": {"principals": [
                                        "cluster.local/ns/demo/sa/sleep"]}}]}]}}]
        env.start(extra_args=["--log-format", "json"])
        try:
            p = topo.spawn(server.ns, [sys.executable, "-c", SINK, "8080", str(UP), str(DOWN)])
            topo.wait_line(p, "ready")
            got = [exchange(client.ns, server.ip, 8080) for _ in range(N)]
            check(got == [DOWN] * N, f"{N} exchanges returned all {DOWN} bytes")
            try:
                exchange(stranger.ns, server.ip, 8080)
            except OSError:
                pass
            env.wait_log(2, "denied")
            for node in (1, 2):  # let the last closes be counted
                env.wait_log(node, "connection complete")
            time.sleep(0.3)  # closes are recorded right after the peer's FIN
            m1 = fetch(topo.node_ns(1), "http://127.0.0.1:15020/metrics")
            m2 = fetch(topo.node_ns(2), "http://127.0.0.1:15020/metrics")
            src = dict(reporter="source", source_workload="client", destination_workload="server",
                       source_principal="spiffe://cluster.local/ns/demo/sa/sleep",
                       destination_principal="spiffe://cluster.local/ns/demo/sa/httpbin",
                       connection_security_policy="mutual_tls", source_workload_namespace="demo")
            dst = dict(src, reporter="destination")
            check(series(m1, "istio_tcp_connections_opened_total", **src) == N,
                  f"source agent: opened == {N}")
            check(series(m1, "istio_tcp_connections_closed_total", **src) == N,
                  f"source agent: closed == {N}")
            check(series(m1, "istio_tcp_received_bytes_total", **src) == N * UP,
                  f"source agent: received bytes == {N * UP} "
                  f"(got {series(m1, 'istio_tcp_received_bytes_total', **src)})")
            check(series(m1, "istio_tcp_sent_bytes_total", **src) == N * DOWN,
                  f"source agent: sent bytes == {N * DOWN}")
            check(series(m2, "istio_tcp_connections_opened_total", **dst) == N,
                  f"destination agent: opened == {N}")
            check(series(m2, "istio_tcp_received_bytes_total", **dst) == N * UP,
                  f"destination agent: received bytes == {N * UP} "
                  f"(got {series(m2, 'istio_tcp_received_bytes_total', **dst)})")
            check(series(m2, "istio_tcp_sent_bytes_total", **dst) == N * DOWN,
                  f"destination agent: sent bytes == {N * DOWN}")
            check(series(m2, "istio_tcp_connections_closed_total", reporter="destination",
                         response_flags="DENY", source_principal="spiffe://cluster.local/ns/demo/sa/stranger") == 1,
                  "denied connection counted with response_flags=DENY")
            om = fetch(topo.node_ns(2), "http://127.0.0.1:15020/metrics",
                       accept="application/openmetrics-text; version=1.0.0")
            from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
            names = {f.name for f in om_parse(om)}
            check("istio_tcp_connections_opened" in names, "OpenMetrics exposition parses strictly")

            dump = json.loads(fetch(topo.node_ns(2), "http://127.0.0.1:15000/config_dump"))
            import jsonschema
            schema = json.load(open(os.path.join(ROOT, "tests", "golden", "config_dump.schema.json")))
            schema.pop("$id", None)  # resolve "#/$defs/..." locally, never over the network
            try:
                jsonschema.validate(dump, schema)
                check(True, "/config_dump validates against tests/golden/config_dump.schema.json")
            except jsonschema.ValidationError as e:
                check(False, f"/config_dump schema: {e.message} at {list(e.path)}")
            check(any(c["identity"].endswith("/sa/httpbin") and c["state"] == "Available"
                      for c in dump["certificates"]), "certificate of the captured pod in the dump")

            lines = [json.loads(l) for l in env.log(2).splitlines()
                     if l.startswith("{") and '"connection complete"' in l]
            want = {"src.addr", "src.workload", "src.namespace", "src.identity", "dst.addr",
                    "dst.hbone_addr", "dst.workload", "dst.namespace", "dst.identity", "direction",
                    "bytes_sent", "bytes_recv", "duration"}
            ok = [l for l in lines if want <= set(l) and l["direction"] == "inbound"]
            check(len(ok) >= N and ok[0]["bytes_recv"] == str(UP) and ok[0]["bytes_sent"] == str(DOWN),
                  f"JSON access log lines carry every field and exact byte counts ({len(ok)} lines)")
            r = topo.ns_exec(topo.node_ns(2), [env.ctl_bin, "policies"], check=False)
            check(r.returncode == 0 and "only-sleep" in r.stdout, "ambitctl policies shows the policy")
            r = topo.ns_exec(topo.node_ns(2), [env.ctl_bin, "log"], check=False)
            check(r.returncode == 0, "ambitctl log lists levels")
        finally:
            if FAILURES:
                for n in (1, 2):
                    print(f"---- agent {n} log ----\n" + env.log(n)[-5000:])
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
