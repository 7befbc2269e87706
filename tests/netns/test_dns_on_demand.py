#!/usr/bin/env python3
"""On-demand DNS of hostname-only workloads (issue 21 item 3), on real namespaces.

One node; a captured client pod; two uncaptured "external" pods running echo
servers (ext1, ext2); dns_upstream.py on the node as the agent's nameserver
(--dns-resolv-conf), its answers driven by an overrides file. A ServiceEntry
(standalone YAML document) `ext.example.test`, VIP 240.240.0.10, port 80 →
8080, `resolution: DNS` and no endpoints: istiod's expansion gives one
workload whose hostname is the host itself. Checked:
  - connections to the VIP reach ext1 through the agent, and the upstream
    sees one A query for several connections within the TTL (4 s);
  - /config_dump and `ambitctl dns` show the cache entry (hostname, address, expiry);
  - after the TTL, with the answer changed to ext2, new connections go to ext2
    after exactly one new A query;
  - a host that does not resolve (NXDOMAIN): the connection is refused (reset,
    no byte), ambit_dns_on_demand_failures_total{reason="nxdomain"} counts it,
    the agent logs why; istio_on_demand_dns_total counts every lookup.
"""
import argparse
import json
import os
import socket
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, in_netns, require_root, tcp_exchange  # noqa: E402
from ambit_env import AmbitEnv  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FAILURES = []
UPSTREAM = "10.44.1.1"  # the node's address on its pod bridge
VIP, BAD_VIP = "240.240.0.10", "240.240.0.11"
TTL = 4  # long enough for the checks within it on a loaded machine


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def http_get(topo, path, port):
    return in_netns(topo.node_ns(1), lambda: urllib.request.urlopen(
        f"http://127.0.0.1:{port}{path}", timeout=3).read().decode())


def metric(topo, name, **labels):
    total = 0.0
    for line in http_get(topo, "/metrics", 15020).splitlines():
        if not line.startswith(name):
            continue
        key, value = line.rsplit(" ", 1)
        if key.split("{")[0] == name and all(f'{k}="{v}"' in key for k, v in labels.items()):
            total += float(value)
    return total


def a_queries(uplog, name):
    with open(uplog) as f:
        return sum(1 for l in f.read().splitlines() if l.split()[1:] == [name, "1"])


def set_answers(path, answers):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(answers, f)
    os.rename(tmp, path)


def tag_of(reply):
    for field in reply.split():
        if field.startswith("tag="):
            return field[4:]
    return reply.strip() or "nothing"


def refused(topo, ns, ip, port):
    """True if the connection ends without a byte (reset or closed)."""
    def body():
        try:
            with socket.create_connection((ip, port), timeout=3) as s:
                s.settimeout(3)
                s.sendall(b"hello\n")
                return s.recv(100) == b""
        except (ConnectionResetError, ConnectionRefusedError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
    return in_netns(ns, body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    require_root()
    with Topology(nodes=1, tag="o") as topo:
        env = AmbitEnv(topo, args.build)
        client = env.pod(1, "client", sa="sleep")
        ext1 = env.pod(1, "ext1", captured=False)
        ext2 = env.pod(1, "ext2", captured=False)
        topo.echo_server(ext1.ns, ext1.ip, 8080, tag="ext1")
        topo.echo_server(ext2.ns, ext2.ip, 8080, tag="ext2")
        for name, vip in (("ext", VIP), ("bad", BAD_VIP)):
            env.extra_docs.append({
                "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
                "metadata": {"name": name, "namespace": "demo"},
                "spec": {"hosts": [f"{name}.example.test"], "addresses": [vip],
                         "ports": [{"number": 80, "name": "tcp", "protocol": "TCP",
                                    "targetPort": 8080}],
                         "location": "MESH_EXTERNAL", "resolution": "DNS"}})
        uplog = os.path.join(env.dir, "upstream.log")
        open(uplog, "w").close()
        answers = os.path.join(env.dir, "answers.json")
        set_answers(answers, {"ext.example.test": {"a": [ext1.ip], "ttl": TTL},
                              "bad.example.test": {"rcode": 3}})
        up = topo.spawn(topo.node_ns(1), [sys.executable, os.path.join(HERE, "dns_upstream.py"),
                                          UPSTREAM, "53", uplog, answers])
        topo.wait_line(up, "ready")
        resolv = os.path.join(env.dir, "agent-resolv.conf")
        with open(resolv, "w") as f:
            f.write(f"nameserver {UPSTREAM}\noptions timeout:1 attempts:1\n")
        try:
            env.start(extra_args=["--dns-resolv-conf", resolv])
            tags = [tag_of(tcp_exchange(client.ns, VIP, 80)) for _ in range(3)]
            check(tags == ["ext1"] * 3, f"3 connections to the ServiceEntry VIP reach ext1 ({tags})")
            n = a_queries(uplog, "ext.example.test")
            check(n == 1, f"one A query upstream for 3 connections within the TTL ({n})")
            dump = json.loads(http_get(topo, "/config_dump", 15000))
            rows = dump["ambit"]["onDemandDns"]["cache"]
            row = next((r for r in rows if r["hostname"] == "ext.example.test"), None)
            check(row is not None and row["addresses"] == [ext1.ip] and
                  0 < row["expiresInSeconds"] <= TTL,
                  f"/config_dump shows the cache entry ({row})")

            out = topo.ns_exec(topo.node_ns(1), [env.ctl_bin, "dns", "--admin",
                                                 "http://127.0.0.1:15000"]).stdout
            check(any(l.split()[:2] == ["ext.example.test", ext1.ip] for l in out.splitlines()),
                  f"ambitctl dns shows the cached name and address ({out.strip()!r})")

            set_answers(answers, {"ext.example.test": {"a": [ext2.ip], "ttl": TTL},
                                  "bad.example.test": {"rcode": 3}})
            time.sleep(TTL + 0.2)  # let the cached answer expire: the behaviour under test
            tags = [tag_of(tcp_exchange(client.ns, VIP, 80)) for _ in range(2)]
            check(tags == ["ext2"] * 2, f"after the TTL, new connections go to the new address ({tags})")
            n = a_queries(uplog, "ext.example.test")
            check(n == 2, f"exactly one new A query after the TTL ({n})")

            check(refused(topo, client.ns, BAD_VIP, 80),
                  "a ServiceEntry host that does not resolve: the connection is refused")
            f = metric(topo, "ambit_dns_on_demand_failures_total", reason="nxdomain")
            check(f == 1, f"ambit_dns_on_demand_failures_total{{reason=nxdomain}} = 1 ({f})")
            log = env.wait_log(1, "on-demand DNS for workload", timeout=3)
            check("bad.example.test" in log, "the agent logs the failed resolution")
            total = metric(topo, "istio_on_demand_dns_total", hostname="ext.example.test",
                           source_workload="client")
            check(total == 5, f"istio_on_demand_dns_total counts the 5 lookups of ext ({total})")
        finally:
            if FAILURES:
                print("---- agent log ----\n" + env.log(1)[-5000:])
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
