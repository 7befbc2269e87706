#!/usr/bin/env python3
"""Standalone waypoint binding through real agents (issue 15, agent part).

The namespace `demo` carries `istio.io/use-waypoint: wp`; the waypoint is the
pod labelled `gateway.networking.k8s.io/gateway-name: wp` (declared by a
Gateway API Gateway document too) with its service `wp`, on node 2, in the
sandwich form (applicationTunnel PROXY 15088) so that the agent of its pod
terminates HBONE for it. Checks:

- client (node 1) -> echo VIP:80: the node-1 agent sends it over HBONE to the
  waypoint pod's IP:15008 with CONNECT authority = the VIP:80 (its access
  line), the node-2 agent's inbound line for the waypoint pod shows the same
  authority and the client's identity, and the waypoint's 127.0.0.1:15088
  receives PROXY v2 with dst = VIP:80 and TLV 0xD0 = the client's identity;
- a service labelled `istio.io/use-waypoint: none` goes direct to its
  endpoint (HBONE to the endpoint pod, authority podIP:targetPort);
- the waypoint pod's own connection to the echo VIP is service-addressed, so
  it takes the service's waypoint like any other (ztunnel build_request has no
  from-waypoint check there); its connection to the endpoint's pod IP (what a
  real waypoint dials) goes direct;
- /config_dump shows each service's waypoint and port protocols.
"""
import argparse
import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, in_netns, require_root, tcp_exchange  # noqa: E402
from ambit_env import AmbitEnv  # noqa: E402
from test_dataplane_edge import PROXY_V2_SERVER, sandwich_exchange  # noqa: E402

FAILURES = []
SPIFFE = "spiffe://cluster.local/ns/demo/sa/"
ECHO_VIP, DIRECT_VIP = "10.96.0.10", "10.96.0.20"


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def records(env, node, after=0):
    out = []
    for line in env.log(node)[after:].splitlines():
        if line.startswith("{") and '"connection complete"' in line:
            out.append(json.loads(line))
    return out


def find(env, node, after, **want):
    """The access records of `node` (from log offset `after`) with every
    field of `want` (dots spelled as __)."""
    want = {k.replace("__", "."): v for k, v in want.items()}
    return [r for r in records(env, node, after) if all(r.get(k) == v for k, v in want.items())]


def wait_record(env, node, after, timeout=5.0, **want):
    """Waits (bounded) until `node` logged an access record with `want`."""
    deadline = time.monotonic() + timeout
    while True:
        got = find(env, node, after, **want)
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.05)  # poll interval of a wait-with-timeout


def http_json(ns, url):
    return in_netns(ns, lambda: json.loads(urllib.request.urlopen(url, timeout=3).read().decode()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    require_root()
    with Topology(nodes=2, tag="wb") as topo:
        env = AmbitEnv(topo, args.build)
        echo_key, direct_key = "demo/echo.demo.svc.cluster.local", "demo/direct.demo.svc.cluster.local"
        client = env.pod(1, "client", sa="sleep")
        server = env.pod(2, "server", sa="echo",
                         services={echo_key: {80: 8080}, direct_key: {80: 8080}})
        wp = env.pod(2, "wp", sa="waypoint",
                     labels={"gateway.networking.k8s.io/gateway-name": "wp"},
                     services={"demo/wp.demo.svc.cluster.local": {15008: 15008}},
                     extra={"applicationTunnel": {"protocol": "PROXY", "port": 15088}})
        env.service("wp", vip="10.96.0.99", ports={15008: 15008})
        env.service("echo", vip=ECHO_VIP, ports={},
                    extra={"ports": [{"port": 80, "targetPort": 8080, "name": "http-echo"}]})
        env.service("direct", vip=DIRECT_VIP, ports={},
                    extra={"ports": [{"port": 80, "targetPort": 8080, "appProtocol": "tcp"}],
                           "labels": {"istio.io/use-waypoint": "none"}})
        env.extra_docs.append({"namespaces": [{"name": "demo",
                                               "labels": {"istio.io/use-waypoint": "wp"}}]})
        env.extra_docs.append({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "wp", "namespace": "demo",
                         "labels": {"istio.io/waypoint-for": "service"}},
            "spec": {"gatewayClassName": "istio-waypoint",
                     "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]}})
        env.start(extra_args=["--log-format", "json"])
        try:
            topo.echo_server(server.ns, "0.0.0.0", 8080, "server")
            topo.spawn(wp.ns, [sys.executable, "-c", PROXY_V2_SERVER])
            topo.wait_line(topo.procs[-1], "ready")
            marks = {n: len(env.log(n)) for n in (1, 2)}

            # 1. Namespace label: client -> echo VIP goes to the waypoint pod.
            h, echo = sandwich_exchange(client.ns, ECHO_VIP, 80)
            check(h.get("dst") == f"{ECHO_VIP}:80" and h.get("tlvs") == {"d0": SPIFFE + "sleep"}
                  and h.get("src", ":").rsplit(":", 1)[0] == client.ip
                  and echo == "through the waypoint",
                  f"client -> {ECHO_VIP}:80 reached the waypoint's app tunnel: PROXY v2 "
                  f"src={h.get('src')} dst={h.get('dst')} TLVs={h.get('tlvs')} echo={echo!r}"
                  f"{' ' + h['error'] if 'error' in h else ''}")
            out = wait_record(env, 1, marks[1], dst__hbone_addr=f"{ECHO_VIP}:80",
                              direction="outbound", src__workload="client")
            check(len(out) == 1 and out[0].get("dst.addr") == f"{wp.ip}:15008"
                  and out[0].get("dst.workload") == "wp",
                  f"node-1 agent: outbound HBONE to the waypoint {wp.ip}:15008 with authority "
                  f"{ECHO_VIP}:80 -> {[(r.get('dst.addr'), r.get('dst.workload')) for r in out]}")
            inb = wait_record(env, 2, marks[2], dst__hbone_addr=f"{ECHO_VIP}:80",
                              direction="inbound")
            check(len(inb) == 1 and inb[0].get("dst.workload") == "wp"
                  and inb[0].get("src.identity") == SPIFFE + "sleep"
                  and inb[0].get("dst.addr") == f"{wp.ip}:15008",
                  f"node-2 agent: inbound on the waypoint pod, authority {ECHO_VIP}:80 from "
                  f"{SPIFFE}sleep -> "
                  f"{[(r.get('dst.workload'), r.get('src.identity'), r.get('dst.addr')) for r in inb]}")
            server_hits = find(env, 2, marks[2], direction="inbound", dst__workload="server")
            check(server_hits == [], f"the echo endpoint saw no connection ({len(server_hits)})")

            # 2. use-waypoint: none on the service: direct to the endpoint.
            marks = {n: len(env.log(n)) for n in (1, 2)}
            reply = tcp_exchange(client.ns, DIRECT_VIP, 80, b"x\n", timeout=5)
            out = wait_record(env, 1, marks[1], dst__hbone_addr=f"{server.ip}:8080",
                              direction="outbound", src__workload="client")
            check("tag=server" in reply and len(out) == 1
                  and out[0].get("dst.addr") == f"{server.ip}:15008",
                  f"client -> {DIRECT_VIP}:80 (use-waypoint: none) went direct: reply {reply!r}, "
                  f"outbound {[r.get('dst.addr') for r in out]} (want {server.ip}:15008)")
            wp_hits = find(env, 2, marks[2], direction="inbound", dst__workload="wp")
            check(wp_hits == [], f"the waypoint saw none of it ({len(wp_hits)} inbound lines)")

            # 3. The waypoint's own traffic: by VIP it takes the service's
            # waypoint (itself), as ztunnel; by pod IP it goes direct.
            marks = {n: len(env.log(n)) for n in (1, 2)}
            h, echo = sandwich_exchange(wp.ns, ECHO_VIP, 80)
            out = wait_record(env, 2, marks[2], src__workload="wp", direction="outbound")
            check(h.get("dst") == f"{ECHO_VIP}:80" and h.get("tlvs") == {"d0": SPIFFE + "waypoint"}
                  and echo == "through the waypoint" and len(out) == 1
                  and out[0].get("dst.addr") == f"{wp.ip}:15008"
                  and out[0].get("dst.hbone_addr") == f"{ECHO_VIP}:80",
                  f"waypoint pod -> {ECHO_VIP}:80 took the service's waypoint: PROXY v2 "
                  f"dst={h.get('dst')} TLVs={h.get('tlvs')} echo={echo!r}, outbound "
                  f"{[(r.get('dst.addr'), r.get('dst.hbone_addr')) for r in out]}")
            marks = {n: len(env.log(n)) for n in (1, 2)}
            reply = tcp_exchange(wp.ns, server.ip, 8080, b"x\n", timeout=5)
            out = wait_record(env, 2, marks[2], src__workload="wp", direction="outbound")
            check("tag=server" in reply and len(out) == 1
                  and out[0].get("dst.addr") == f"{server.ip}:15008"
                  and out[0].get("dst.hbone_addr") == f"{server.ip}:8080",
                  f"waypoint pod -> {server.ip}:8080 went straight to the endpoint: reply {reply!r}, "
                  f"outbound {[(r.get('dst.addr'), r.get('dst.hbone_addr')) for r in out]}")

            # 4. What the agent shows.
            dump = http_json(topo.node_ns(1), "http://127.0.0.1:15000/config_dump")
            svcs = {s["name"]: s for s in dump["services"]}
            check(svcs["echo"].get("waypoint") == {"destination": "demo/wp.demo.svc.cluster.local",
                                                   "hboneMtlsPort": 15008}
                  and "waypoint" not in svcs["direct"] and "waypoint" not in svcs["wp"],
                  f"/config_dump waypoints: echo {svcs['echo'].get('waypoint')}, direct "
                  f"{svcs['direct'].get('waypoint')}, wp {svcs['wp'].get('waypoint')}")
            check(svcs["echo"].get("appProtocols") == {"80": "HTTP11"}
                  and svcs["direct"].get("appProtocols") == {"80": "TCP"}
                  and dump["ambit"].get("configFindings") == [],
                  f"/config_dump appProtocols echo {svcs['echo'].get('appProtocols')} direct "
                  f"{svcs['direct'].get('appProtocols')}, findings {dump['ambit'].get('configFindings')}")
        finally:
            if FAILURES:
                for n in (1, 2):
                    print(f"---- agent {n} log ----\n" + env.log(n)[-4000:])
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
