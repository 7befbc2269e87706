#!/usr/bin/env python3
"""IPv6 and dual stack in Istio mode (issue 21 item 5): the agent started as
the chart starts it, workloads and services from the fake istiod over xDS
(16-byte addresses, ipFamilies), pods from the fake istio-cni over ZDS, the
in-pod rules installed by `ambitctl redirect install` (--ipv6 auto) as
istio-cni would. The control plane stays on IPv4; the data plane is v6:
  - an IPv6-only pod to an IPv6-only pod across nodes over HBONE [v6]:15008;
  - an IPv6-only service VIP (IPV6_ONLY) and a dual-stack service (DUAL)
    whose v6 VIP reaches the dual-stack endpoint's v6 address;
  - readiness over IPv6 on the agent's node address.
"""
import argparse
import os
import re
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, in_netns, require_root  # noqa: E402
from istio_env import IstioEnv  # noqa: E402
from test_ipv6 import SERVER, exchange, fields  # noqa: E402

FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    require_root()
    with Topology(nodes=2, tag="6i", ipv6=True) as topo:
        env = IstioEnv(topo, args.build)
        client = env.pod(1, "client6", sa="sleep", family="v6")
        server = env.pod(2, "server6", sa="echo", family="v6",
                         services={"demo/echo6.demo.svc.cluster.local": {80: 8080}})
        dual = env.pod(2, "dual", sa="echo", family="dual",
                       services={"demo/echod.demo.svc.cluster.local": {80: 8080}})
        env.service("echo6", vip="fd00::10", ports={80: 8080}, extra={"ipFamilies": "IPV6_ONLY"})
        env.service("echod", vip=["10.96.0.20", "fd00::20"], ports={80: 8080},
                    extra={"ipFamilies": "DUAL"})
        try:
            for p, tag in ((server, "server6"), (dual, "dual")):
                sp = topo.spawn(p.ns, [sys.executable, "-c", SERVER, "8080", tag])
                topo.wait_line(sp, "ready")
            env.push_all()
            env.start_agents()
            for node in (1, 2):
                env.wait_log(node, "readiness on", timeout=15)
                acks = env.announce(node)
                check(set(acks) == {"ack"}, f"node {node}: ZDS Adds and SnapshotSent acked ({acks})")
            for node in (1, 2):
                st, _ = env.wait_ready(node, want=200, timeout=30)
                check(st == 200, f"node {node}: ready")
            rules = topo.ns_exec(server.ns, ["ip6tables-save"]).stdout
            check("-j REDIRECT --to-ports 15001" in rules,
                  "ambitctl redirect install (--ipv6 auto) put the ip6 rules in the v6 pod")

            line = exchange(client.ns, server.ip6, 8080)
            f = fields(line)
            check(f.get("tag") == "server6" and f.get("peer") == client.ip6,
                  f"v6 pod -> v6 pod across nodes keeps the client's IPv6 address ({line})")
            env.wait_log(1, rf"connection complete .*dst\.addr=\[{re.escape(server.ip6)}\]:15008 "
                            r".*direction=outbound", regex=True, timeout=5)
            check(True, f"source agent used HBONE to [{server.ip6}]:15008")
            line = exchange(client.ns, "fd00::10", 80)
            f = fields(line)
            check(f.get("tag") == "server6" and f.get("peer") == client.ip6,
                  f"IPV6_ONLY VIP [fd00::10]:80 from xDS ({line})")
            line = exchange(client.ns, "fd00::20", 80)
            f = fields(line)
            check(f.get("tag") == "dual" and f.get("local") == dual.ip6,
                  f"DUAL VIP [fd00::20]:80 -> the endpoint's v6 address {dual.ip6} ({line})")

            def ready6():
                try:
                    with urllib.request.urlopen("http://[fd44::2]:15021/healthz/ready", timeout=3) as r:
                        return r.status
                except Exception as e:  # noqa: BLE001 - the check's detail
                    return str(e)
            got = in_netns(topo.node_ns(1), ready6)
            check(got == 200, f"readiness of node 2's agent over IPv6: {got}")
            for node in (1, 2):
                check(env.agents[node].poll() is None, f"agent {node} still running")
        except Exception as e:  # report, print logs, fail
            check(False, f"{e.__class__.__name__}: {e}")
        finally:
            if FAILURES:
                env.dump_tails()
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
