#!/usr/bin/env python3
"""ambit-waypoint in the sandwich form, bound by a namespace label to a
waypoint in another namespace (issue 15).

The namespace `demo` carries `istio.io/use-waypoint: waypoint` and
`istio.io/use-waypoint-namespace: infra`; the waypoint (a Gateway in `infra`
allowing routes from all namespaces) runs in a pod (node 2) captured by its agent with `applicationTunnel: {protocol:
PROXY, port: 15088}`: that agent terminates HBONE and hands each stream to
ambit-waypoint on 127.0.0.1:15088 behind PROXY v2; the waypoint dials the
chosen endpoint in plaintext and its own agent tunnels it (no loop back into
the waypoint). Checks: HTTP/1.1 requests on one connection are balanced per
request, the source principal comes from TLV 0xD0, the waypoint has no
15008 listener of its own, a service labelled `use-waypoint: none` bypasses
the waypoint, and the waypoint exits 0 on SIGTERM.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, require_root  # noqa: E402
from ambit_env import AmbitEnv, ROOT  # noqa: E402
from waypoint_env import WaypointPod  # noqa: E402
from test_waypoint import BACKEND, PY, check, client, metric_sum, split_ok, FAILURES  # noqa: E402

VIP, DIRECT_VIP = "10.96.0.30", "10.96.0.31"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    require_root()
    with Topology(nodes=2, tag="s") as topo:
        env = AmbitEnv(topo, args.build)
        cl = env.pod(1, "client", sa="sleep")
        echo, direct = "demo/echo.demo.svc.cluster.local", "demo/direct.demo.svc.cluster.local"
        v1 = env.pod(2, "echo-v1", sa="echo", services={echo: {80: 8080}, direct: {80: 8080}})
        v2 = env.pod(2, "echo-v2", sa="echo", services={echo: {80: 8080}})
        wp = WaypointPod(env, node=2, ns="infra", sandwich=True)
        env.service("echo", vip=VIP, ports={80: 8080})
        env.service("direct", vip=DIRECT_VIP, ports={80: 8080},
                    extra={"labels": {"istio.io/use-waypoint": "none"}})
        env.extra_docs.append({"namespaces": [{"name": "demo", "labels": {
            "istio.io/use-waypoint": "waypoint", "istio.io/use-waypoint-namespace": "infra"}}]})
        env.extra_docs.append({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "waypoint", "namespace": "infra"},
            "spec": {"gatewayClassName": "istio-waypoint", "listeners": [
                {"name": "mesh", "port": 15008, "protocol": "HBONE",
                 "allowedRoutes": {"namespaces": {"from": "All"}}}]}})
        # Authorization sees the client as the PROXY header tells it (TLV
        # identity, original source address), not this pod's agent.
        env.extra_docs.append({
            "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": "echo-blocked", "namespace": "demo"},
            "spec": {"targetRefs": [{"kind": "Service", "group": "", "name": "echo"}],
                     "action": "DENY",
                     "rules": [{"from": [{"source": {
                                    "principals": ["cluster.local/ns/demo/sa/sleep"],
                                    "ipBlocks": [cl.ip]}}],
                                "to": [{"operation": {"paths": ["/blocked"]}}]}]}})
        for p in (v1, v2):
            b = topo.spawn(p.ns, [PY, BACKEND, "--name", p.name, "--http", "8080"])
            topo.wait_line(b, "ready", timeout=15)
        env.start()
        wp.start()
        try:
            n = 200
            r = client(topo, cl, "http1-keepalive", "--url", f"http://{VIP}/", "--count", str(n))
            check(r.get("ok") and r.get("statuses") == {"200": n},
                  f"{n} requests through the sandwich waypoint answer 200 ({r.get('statuses')}, "
                  f"{r.get('errors')})")
            check(split_ok(r.get("pods", {}), n), f"balanced per request ({r.get('pods')})")
            text = wp.metrics()
            got = metric_sum(text, "istio_requests_total", reporter="waypoint",
                             destination_service="echo.demo.svc.cluster.local")
            check(got >= n, f"the waypoint served them (istio_requests_total {got})")
            check('source_principal="spiffe://cluster.local/ns/demo/sa/sleep"' in text,
                  "source principal from the PROXY header's TLV 0xD0")
            check("serving HBONE through this pod's agent" in wp.log(),
                  "no 15008 listener of its own in the sandwich form")
            r = client(topo, cl, "http1-keepalive", "--url", f"http://{VIP}/blocked", "--count", "3")
            check(r.get("statuses") == {"403": 3},
                  f"a DENY on the TLV principal and the original client IP answers 403 "
                  f"({r.get('statuses')})")
            before = got + 3
            r = client(topo, cl, "http1-keepalive", "--url", f"http://{DIRECT_VIP}/", "--count", "20")
            check(r.get("ok") and r.get("pods") == {"echo-v1": 20},
                  f"use-waypoint: none goes direct ({r.get('pods')}, {r.get('errors')})")
            after = metric_sum(wp.metrics(), "istio_requests_total", reporter="waypoint")
            check(after == before, f"... and the waypoint saw none of it ({before} -> {after})")
            dump = wp.config_dump()
            names = [c["name"] for c in dump.get("clusters", [])]
            check("inbound-vip|80|http|echo.demo.svc.cluster.local" in names and
                  not any("direct" in x for x in names),
                  f"config_dump: a cluster for echo only ({names})")
        finally:
            code = wp.stop()
            check(code == 0, f"waypoint exits 0 on SIGTERM (got {code})")
            if FAILURES:
                print("---- waypoint log (tail) ----\n" + "\n".join(wp.log().splitlines()[-40:]))
                print("---- agent-2 log (tail) ----\n" + "\n".join(env.log(2).splitlines()[-40:]))
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)" if FAILURES else "all sandwich checks passed", flush=True)
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
