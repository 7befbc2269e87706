#!/usr/bin/env python3
"""IPv6 and dual-stack data path (issue 21 item 5) on real namespaces.

Two nodes with IPv6 (harness Topology(ipv6=True)); IPv6-only pods, a
dual-stack pod and an uncaptured IPv6-only pod; the agents install the
in-pod rules for both families (ip6tables or nft ip6, ip -6 rule/route):
  - pod to pod across nodes over HBONE to [v6]:15008 (the fabric carries only
    15008, the server sees the client's IPv6 address, SPIFFE identity intact);
  - an IPv6 service VIP, and a dual-stack service whose v4 and v6 VIPs each
    pick the endpoint address of their own family;
  - outbound passthrough (captured v6 pod -> uncaptured v6 pod) and
    inbound plaintext (uncaptured v6 pod -> captured v6 pod, via 15006,
    IP6T_SO_ORIGINAL_DST, original source kept);
  - the readiness server over IPv6, admin on [::1]:15000, and a kubelet-style probe from the v6
    probe source (fd16:9254:7127:1337:ffff:ffff:ffff:ffff) bypassing capture;
  - the DNS proxy answering AAAA for the v6 VIP inside an IPv6-only pod;
  - a third-party HBONE client over v4 and v6; a CONNECT naming the pod's
    address of the other family than the tunnel's is refused (400) as ztunnel does.
"""
import argparse
import os
import re
import socket
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, hostport, in_netns  # noqa: E402
from harness import require_root  # noqa: E402
from ambit_env import AmbitEnv  # noqa: E402
from hbone_client import hbone_connect  # noqa: E402

FAILURES = []
PROBE_SRC6 = "fd16:9254:7127:1337:ffff:ffff:ffff:ffff"

# One line per connection: who connected (peer) to which local address, then echo.
SERVER = r"""
import socket, sys, threading
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1]))); s.listen(64)
print("ready", flush=True)
def plain(a): return a[7:] if a.startswith("::ffff:") else a
def serve(c, a):
    with c:
        l = c.getsockname()
        c.sendall(("peer=%s local=%s tag=%s\n" % (plain(a[0]), plain(l[0]), sys.argv[2])).encode())
        while True:
            d = c.recv(4096)
            if not d: break
            c.sendall(d)
while True:
    c, a = s.accept()
    threading.Thread(target=serve, args=(c, a), daemon=True).start()
"""


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def exchange(ns, ip, port, source=None, timeout=5.0):
    """First reply line of a connection from inside `ns` ('' or the error on failure)."""
    def body():
        try:
            with socket.create_connection((ip, port), timeout=timeout,
                                          source_address=(source, 0) if source else None) as s:
                s.settimeout(timeout)
                s.sendall(b"hi\n")
                data = b""
                while not data.endswith(b"\n"):
                    d = s.recv(4096)
                    if not d:
                        break
                    data += d
                return data.decode().strip()
        except OSError as e:
            return f"error: {e}"
    return in_netns(ns, body)


def fields(line):
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


def logged(env, node, regex, timeout=5.0):
    try:
        text = env.wait_log(node, regex, timeout=timeout, regex=True)
    except TimeoutError:
        return None
    lines = [l for l in text.splitlines() if re.search(regex, l)]
    return lines[-1] if lines else None


def http_get(ns, url, timeout=3.0):
    def body():
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return r.status, r.read().decode(errors="replace")
        except Exception as e:  # noqa: BLE001 - reported as the check's detail
            return None, str(e)
    return in_netns(ns, body)


def counters(topo, ns, chain):
    """{comment: packets} of the ip6tables counting rules in `chain`."""
    out = topo.ns_exec(ns, ["ip6tables", "-w", "-L", chain, "-v", "-x", "-n"]).stdout
    got = {}
    for l in out.splitlines():
        m = re.search(r"^\s*(\d+)\s+\d+\s.*/\* (\S+) \*/", l)
        if m:
            got[m.group(2)] = int(m.group(1))
    return got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--mode", default="redirect")
    ap.add_argument("--backend", default="iptables")
    ap.add_argument("--io", default="auto")
    args = ap.parse_args()
    require_root()
    with Topology(nodes=2, tag="6" + args.mode[0], ipv6=True) as topo:
        env = AmbitEnv(topo, args.build, mode=args.mode, backend=args.backend)
        svc6 = {"demo/echo6.demo.svc.cluster.local": {80: 8080}}
        svcd = {"demo/echod.demo.svc.cluster.local": {80: 8080}}
        client = env.pod(1, "client6", sa="sleep", family="v6")
        dclient = env.pod(1, "dclient", sa="sleep", family="dual")
        server = env.pod(2, "server6", sa="echo", services=svc6, family="v6")
        dual = env.pod(2, "dual", sa="echo", services=svcd, family="dual")
        plain = env.pod(1, "plain6", captured=False, family="v6")
        env.service("echo6", vip="fd00::10", ports={80: 8080},
                    extra={"ipFamilies": "IPv6"})
        env.service("echod", vip=["10.96.0.20", "fd00::20"], ports={80: 8080},
                    extra={"ipFamilies": "Dual"})
        # Node 2 forwards everything that reaches its pods: count by port.
        n2 = topo.node_ns(2)
        topo.ns_exec(n2, ["ip6tables", "-w", "-N", "AMBIT_COUNT"])
        topo.ns_exec(n2, ["ip6tables", "-w", "-I", "FORWARD", "-i", "eth0", "-j", "AMBIT_COUNT"])
        for port, name in ((15008, "hbone"), (8080, "app")):
            topo.ns_exec(n2, ["ip6tables", "-w", "-A", "AMBIT_COUNT", "-p", "tcp", "--dport",
                              str(port), "-m", "comment", "--comment", name])
        # The kubelet's probe source (istio-cni SNATs probes to it on the node).
        topo.ns_exec(n2, ["ip", "-6", "addr", "add", f"{PROBE_SRC6}/128", "dev", "lo", "nodad"])
        env.start(extra_args=["--redirect-mode", args.mode, "--io", args.io])
        try:
            m = re.search(r"ambit-agent \S+ node=node-1 workers=\d+ io=(\w+)", env.log(1))
            io = m.group(1) if m else None
            check(io is not None and (args.io == "auto" or io.endswith(args.io)),
                  f"agents run the {io} I/O backend (--io {args.io})")
            for n, count in ((1, 2), (2, 2)):
                try:
                    text = env.wait_log(n, f"installed {args.mode} redirection ({args.backend}, ipv6)")
                except TimeoutError:
                    text = env.log(n)
                got = text.count(f"installed {args.mode} redirection ({args.backend}, ipv6)")
                check(got == count, f"node {n}: {args.mode}/{args.backend} rules for both families "
                                    f"in {got} captured pod(s), want {count}")
            if args.backend == "iptables":
                rules = topo.ns_exec(server.ns, ["ip6tables-save"]).stdout
                check("-j REDIRECT --to-ports 15001" in rules and "! -d ::1/128" in rules,
                      "ip6tables in the v6 pod: outbound REDIRECT to 15001, ::1 excluded")
            else:
                rules = topo.ns_exec(server.ns, ["nft", "list", "ruleset"]).stdout
                check("ip6 daddr != ::1" in rules, "nft in the v6 pod: ip6 rules, ::1 excluded")
            rule6 = topo.ns_exec(server.ns, ["ip", "-6", "rule"]).stdout
            route6 = topo.ns_exec(server.ns, ["ip", "-6", "route", "show", "table", "100"], check=False).stdout
            check("fwmark 0x111/0xfff lookup 100" in rule6 and "local default dev lo" in route6,
                  f"ip -6 rule fwmark 0x111/0xfff -> table 100 local ::/0 ({rule6.strip()!r}, "
                  f"{route6.strip()!r})")

            for p, tag in ((server, "server6"), (dual, "dual"), (plain, "plain6")):
                sp = topo.spawn(p.ns, [sys.executable, "-c", SERVER, "8080", tag])
                topo.wait_line(sp, "ready")

            # Pod to pod across nodes (IPv6 only): HBONE to [server]:15008.
            before = counters(topo, n2, "AMBIT_COUNT")
            line = exchange(client.ns, server.ip6, 8080)
            f = fields(line)
            check(f.get("tag") == "server6" and f.get("peer") == client.ip6,
                  f"v6 pod -> v6 pod across nodes: server sees the client's IPv6 address ({line})")
            out = logged(env, 1, rf"connection complete .*dst\.addr=\[{re.escape(server.ip6)}\]:15008 "
                                 rf".*dst\.hbone_addr=\[{re.escape(server.ip6)}\]:8080 .*direction=outbound")
            check(out is not None, f"source agent: HBONE to [{server.ip6}]:15008 ({out})")
            inb = logged(env, 2, rf"connection complete .*src\.addr=\[{re.escape(client.ip6)}\]:\d+ "
                                 rf".*src\.identity=spiffe://cluster\.local/ns/demo/sa/sleep .*direction=inbound")
            check(inb is not None, f"destination agent: client's SPIFFE identity over v6 ({inb})")
            after = counters(topo, n2, "AMBIT_COUNT")
            check(after.get("hbone", 0) > before.get("hbone", 0) and
                  after.get("app", 0) == before.get("app", 0),
                  f"the fabric carried only 15008 (hbone {after.get('hbone', 0) - before.get('hbone', 0)} "
                  f"packets, app port {after.get('app', 0) - before.get('app', 0)})")

            # IPv6 service VIP.
            line = exchange(client.ns, "fd00::10", 80)
            f = fields(line)
            check(f.get("tag") == "server6" and f.get("peer") == client.ip6,
                  f"v6 VIP [fd00::10]:80 -> server6 over HBONE ({line})")

            # Dual stack: each VIP family picks the endpoint address of its family.
            for vip, want_peer, want_local in (("fd00::20", dclient.ip6, dual.ip6),
                                               ("10.96.0.20", dclient.ip4, dual.ip4)):
                line = exchange(dclient.ns, vip, 80)
                f = fields(line)
                check(f.get("tag") == "dual" and f.get("peer") == want_peer and
                      f.get("local") == want_local,
                      f"dual-stack VIP {hostport(vip, 80)} -> endpoint {want_local} from "
                      f"{want_peer} ({line})")
            # Dual-stack pod to pod by either address.
            for dst in (dual.ip6, dual.ip4):
                line = exchange(dclient.ns, dst, 8080)
                f = fields(line)
                check(f.get("local") == dst and f.get("peer") in dclient.ips,
                      f"dual-stack pod -> {hostport(dst, 8080)} ({line})")

            # Cross-family HBONE (third-party client on the node): the tunnel
            # arrives over one family, the CONNECT names the pod's address of
            # the other. ztunnel requires the authority IP to be the arrival
            # address (no waypoint here): 400, for both directions.
            certs = os.path.join(env.dir, "sleep-cert")
            subprocess.run([env.ctl_bin, "ca", "issue", "--ca", env.ca_dir, "--identity",
                            "spiffe://cluster.local/ns/demo/sa/sleep", "--out", certs], check=True,
                           capture_output=True)
            for via, target in ((dual.ip4, dual.ip4), (dual.ip6, dual.ip6),
                                (dual.ip4, dual.ip6), (dual.ip6, dual.ip4)):
                status, data = hbone_connect(n2, via, hostport(target, 8080), certs)
                first = data.decode(errors="replace").splitlines()[0] if data else ""
                want = 200 if via == target else 400
                ok = status == want and (want != 200 or fields(first).get("local") == target)
                check(ok, f"third-party HBONE over {hostport(via, 15008)} to "
                          f"{hostport(target, 8080)}: {status}, want {want} ({first})")

            # Captured v6 pod -> uncaptured v6 pod: plain TCP passthrough, its
            # original destination from IP6T_SO_ORIGINAL_DST on the 15001 socket.
            line = exchange(client.ns, plain.ip6, 8080)
            f = fields(line)
            check(f.get("tag") == "plain6" and f.get("peer") == client.ip6,
                  f"captured v6 -> uncaptured v6: passthrough from the client's address ({line})")
            out = logged(env, 1, rf"connection complete .*src\.addr=\[{re.escape(client.ip6)}\]:\d+ "
                                 rf".*dst\.addr=\[{re.escape(plain.ip6)}\]:8080 .*direction=outbound")
            check(out is not None and "dst.hbone_addr=" not in out,
                  f"client agent logged the v6 passthrough to [{plain.ip6}]:8080 ({out})")

            # Inbound plaintext: uncaptured v6 pod -> captured v6 pod, via 15006.
            line = exchange(plain.ns, server.ip6, 8080)
            f = fields(line)
            check(f.get("tag") == "server6" and f.get("peer") == plain.ip6,
                  f"uncaptured v6 -> captured v6: via 15006, original source kept ({line})")
            inp = logged(env, 2, rf"connection complete .*src\.addr=\[{re.escape(plain.ip6)}\]:\d+ "
                                 rf".*dst\.addr=\[{re.escape(server.ip6)}\]:8080 .*direction=inbound")
            check(inp is not None and "src.identity=" not in inp,
                  f"server agent logged the v6 plaintext inbound with its original destination ({inp})")

            # Readiness over IPv6 (the agent's [::]:15021 on its node), from the other node.
            status, body = http_get(topo.node_ns(1), "http://[fd44::2]:15021/healthz/ready")
            check(status == 200, f"readiness http://[fd44::2]:15021/healthz/ready -> {status} {body[:60]!r}")
            # Admin on localhost of both families, as ztunnel binds it.
            status, body = http_get(topo.node_ns(1), "http://[::1]:15000/config_dump")
            check(status == 200 and '"workloads"' in body,
                  f"admin http://[::1]:15000/config_dump -> {status}")
            # Kubelet-style probe from the v6 probe source: not captured.
            mark = len(env.log(2))
            line = exchange(n2, server.ip6, 8080, source=PROBE_SRC6)
            f = fields(line)
            check(f.get("peer") == PROBE_SRC6 and f.get("tag") == "server6",
                  f"probe from {PROBE_SRC6} reaches the app directly ({line})")
            # A captured connection after it: once its access line is there, a
            # line for the probe (had the agent carried it) would be there too.
            exchange(plain.ns, server.ip6, 8080)
            env.wait_log(2, rf"connection complete .*src\.addr=\[{re.escape(plain.ip6)}\]:\d+ ",
                         after=mark, regex=True)
            check(PROBE_SRC6 not in env.log(2)[mark:],
                  "the probe bypassed the agent (no access-log line for it, one for the "
                  "captured connection after it)")

            # DNS proxy (::1:15053, v6 DNS capture): AAAA of the v6 VIP.
            r = topo.ns_exec(client.ns, ["dig", "@fd00::53", "+time=2", "+tries=2", "+short",
                                         "AAAA", "echo6.demo.svc.cluster.local"], check=False)
            check(r.stdout.strip() == "fd00::10",
                  f"DNS in the IPv6-only pod: AAAA echo6 -> {r.stdout.strip()!r} {r.stderr.strip()}")
        finally:
            if FAILURES:
                for n in (1, 2):
                    print(f"---- agent {n} log ----\n" + env.log(n)[-6000:])
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
