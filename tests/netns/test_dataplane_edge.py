#!/usr/bin/env python3
"""Agent data path edge cases on real namespaces (ISSUE: agent data path).

- config edit re-routes new connections within 1 s while an open one keeps
  flowing; a broken file changes nothing and is reported;
- a service with no endpoints closes the connection;
- 1,000 connections to a VIP spread by capacity (1:3) across endpoints on two
  nodes (a on the client's node, b on the other);
- a CONNECT whose authority IP is not the arrival IP gets 400 (third-party
  HBONE client: Python ssl + python3-h2), a good one gets 200 and bytes;
- a client certificate from another trust domain is refused in the handshake;
- sandwich (ISTIO-COMPAT §2.7): a waypoint-like pod with applicationTunnel
  {PROXY, 15088} gets, on its loopback only, a PROXY v2 header (decoded here
  from the specification, independently of the agent's code) naming the
  client, the HBONE target and the client's SPIFFE identity (TLV 0xD0), for
  a service that uses it as waypoint and for a workload-addressed call.
"""
import json
import argparse
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, in_netns, require_root, tcp_exchange  # noqa: E402
from ambit_env import AmbitEnv  # noqa: E402
from hbone_client import hbone_connect  # noqa: E402

FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


# A waypoint's app tunnel: 127.0.0.1:15088 only. Per connection: read and
# decode the PROXY v2 header, answer one JSON line describing it, then echo.
PROXY_V2_SERVER = r"""
import ipaddress, json, socket, struct, threading
SIG = b"\r\n\r\n\x00\r\nQUIT\n"
def exact(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d: raise EOFError("closed after %d of %d bytes" % (len(b), n))
        b += d
    return b
def serve(c, peer):
    with c:
        try:
            h = exact(c, 16)
            out = {"peer": "%s:%d" % peer, "sig_ok": h[:12] == SIG, "ver_cmd": h[12], "fam": h[13]}
            body = exact(c, struct.unpack("!H", h[14:16])[0])
            if h[13] == 0x11:
                a, n = [str(ipaddress.IPv4Address(body[i:i + 4])) for i in (0, 4)], 12
            else:
                a, n = [str(ipaddress.IPv6Address(body[i:i + 16])) for i in (0, 16)], 36
            sp, dp = struct.unpack("!HH", body[n - 4:n])
            out["src"], out["dst"] = "%s:%d" % (a[0], sp), "%s:%d" % (a[1], dp)
            tlvs, i = {}, n
            while i < len(body):
                t, ln = body[i], struct.unpack("!H", body[i + 1:i + 3])[0]
                tlvs["%02x" % t] = body[i + 3:i + 3 + ln].decode()
                i += 3 + ln
            out["tlvs"] = tlvs
        except Exception as e:
            out = {"error": repr(e)}
        c.sendall((json.dumps(out) + "\n").encode())
        while True:
            d = c.recv(4096)
            if not d: break
            c.sendall(d)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 15088)); s.listen(16)
print("ready", flush=True)
while True:
    c, a = s.accept()
    threading.Thread(target=serve, args=(c, a), daemon=True).start()
"""


def sandwich_exchange(ns, ip, port):
    """Connects to ip:port from ns, returns (decoded header dict, echoed payload)."""
    def body():
        data = b""
        try:
            with socket.create_connection((ip, port), timeout=5) as s:
                s.settimeout(5)
                s.sendall(b"through the waypoint\n")
                while data.count(b"\n") < 2:
                    d = s.recv(4096)
                    if not d:
                        break
                    data += d
        except OSError as e:
            return {"error": f"{e.__class__.__name__} after {data!r}"}, ""
        lines = data.decode().split("\n")
        return json.loads(lines[0]) if lines[0] else {}, lines[1] if len(lines) > 1 else ""
    return in_netns(ns, body)


def tag_of(line):
    return line.split("tag=")[1].split()[0] if "tag=" in line else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--connections", type=int, default=1000)
    args = ap.parse_args()
    require_root()
    with Topology(nodes=2, tag="e") as topo:
        env = AmbitEnv(topo, args.build)
        svc_key = "demo/echo.demo.svc.cluster.local"
        client = env.pod(1, "client", sa="sleep")
        a = env.pod(1, "a", sa="echo", services={svc_key: {80: 8080}}, capacity=1)
        b = env.pod(2, "b", sa="echo", services={svc_key: {80: 8080}}, capacity=3)
        evil = env.pod(1, "evil", sa="sleep", trust_domain="evil.example")
        plain = env.pod(1, "plain", captured=False)
        env.service("echo", vip="10.96.0.10", ports={80: 8080})
        env.service("empty", vip="10.96.0.20", ports={80: 8080})
        wp = env.pod(2, "wp", sa="waypoint",
                     extra={"applicationTunnel": {"protocol": "PROXY", "port": 15088}})
        env.service("reviews", vip="10.96.0.30", ports={80: 9080},
                    extra={"waypoint": {"destination": f"/{wp.ip}"}})
        env.start()
        try:
            for p, tag in ((a, "a"), (b, "b")):
                topo.echo_server(p.ns, "0.0.0.0", 8080, tag)

            # 1,000 connections spread by capacity 1:3 over endpoints on two nodes.
            counts = {"a": 0, "b": 0}
            t0 = time.monotonic()
            for _ in range(args.connections):
                t = tag_of(tcp_exchange(client.ns, "10.96.0.10", 80, b"x\n", timeout=5))
                if t in counts:
                    counts[t] += 1
            rate = args.connections / (time.monotonic() - t0)
            total = sum(counts.values())
            share_b = counts["b"] / max(1, total)
            expect = {"a": total / 4, "b": total * 3 / 4}
            chi2 = sum((counts[k] - expect[k]) ** 2 / max(expect[k], 1e-9) for k in counts)
            p_value = math.erfc(math.sqrt(chi2 / 2))  # chi-square, 1 degree of freedom
            # within 5 points, or four standard deviations of a 3/4 binomial
            # share when that is wider (300 connections under ASan: 0.10).
            slack = max(0.05, 4 * math.sqrt(0.75 * 0.25 / max(1, total)))
            check(total == args.connections and abs(share_b - 0.75) <= slack,
                  f"{args.connections} connections by capacity 1:3, a on node 1 and b on node 2 -> "
                  f"{counts} (b share {share_b:.3f}, chi-square {chi2:.2f} df=1 p={p_value:.2f}, "
                  f"{rate:.0f} conn/s sequential)")

            # Empty service: no healthy upstream -> closed, nothing delivered.
            try:
                r = tcp_exchange(client.ns, "10.96.0.20", 80, b"x\n", timeout=3)
                check(r == "", f"empty service closes the connection (got {r!r})")
            except OSError as e:
                check(True, f"empty service closes the connection ({e.__class__.__name__})")
            env.wait_log(1, "no healthy upstream")

            # Sandwich: service via its waypoint, and the waypoint addressed directly.
            topo.spawn(wp.ns, [sys.executable, "-c", PROXY_V2_SERVER])
            topo.wait_line(topo.procs[-1], "ready")
            client_id = "spiffe://cluster.local/ns/demo/sa/sleep"
            for target, want_dst in ((("10.96.0.30", 80), "10.96.0.30:80"),
                                     ((wp.ip, 9080), f"{wp.ip}:9080")):
                h, echo = sandwich_exchange(client.ns, *target)
                src_ip = h.get("src", ":").rsplit(":", 1)[0]
                check(h.get("sig_ok") and h.get("ver_cmd") == 0x21 and h.get("fam") == 0x11
                      and src_ip == client.ip and h.get("dst") == want_dst
                      and h.get("tlvs") == {"d0": client_id}
                      and h.get("peer", "").startswith("127.0.0.1:")
                      and echo == "through the waypoint",
                      f"client -> {target[0]}:{target[1]}: the waypoint's 127.0.0.1:15088 got "
                      f"PROXY v2 (PROXY, TCP4) src={h.get('src')} (want {client.ip}:*) "
                      f"dst={h.get('dst')} (want {want_dst}) TLVs={h.get('tlvs')} from "
                      f"{h.get('peer')}, then the bytes ({echo!r}){' ' + h['error'] if 'error' in h else ''}")
            dump = in_netns(topo.node_ns(2), lambda: json.loads(urllib.request.urlopen(
                "http://127.0.0.1:15000/config_dump", timeout=3).read().decode()))
            tunnels = {w["name"]: w.get("applicationTunnel") for w in dump["workloads"]}
            check(tunnels.get("wp") == {"protocol": "PROXY", "port": 15088}
                  and tunnels.get("b") is None
                  and dump["config"].get("localhostAppTunnel") == "true",
                  f"/config_dump shows wp's applicationTunnel {tunnels.get('wp')} and "
                  f"localhostAppTunnel={dump['config'].get('localhostAppTunnel')}")

            # Third-party HBONE client: good CONNECT -> 200, authority IP mismatch -> 400.
            certs = os.path.join(env.dir, "sleep-cert")
            subprocess.run([env.ctl_bin, "ca", "issue", "--ca", env.ca_dir, "--identity",
                            "spiffe://cluster.local/ns/demo/sa/sleep", "--out", certs], check=True,
                           capture_output=True)
            status, data = hbone_connect(plain.ns, a.ip, f"{a.ip}:8080", certs)
            check(status == 200 and b"tag=a" in data and b"hello" in data,
                  f"python-h2 HBONE client: CONNECT {a.ip}:8080 -> {status}, echo {data[:40]!r}")
            status, _ = hbone_connect(plain.ns, a.ip, f"{b.ip}:8080", certs)
            check(status == 400, f"CONNECT with authority {b.ip} arriving on {a.ip} -> {status} (want 400)")
            status, _ = hbone_connect(plain.ns, a.ip, f"{a.ip}:15001", certs)
            check(status == 503, f"CONNECT to the agent's own port 15001 -> {status} (want 503)")

            # Another trust domain: refused during the handshake (b: on node 2).
            try:
                r = tcp_exchange(evil.ns, b.ip, 8080, b"x\n", timeout=3)
                check("tag=" not in r, f"client from another trust domain refused (got {r!r})")
            except OSError as e:
                check(True, f"client from another trust domain refused ({e.__class__.__name__})")
            try:  # logs are written asynchronously: wait for the line
                text = env.wait_log(2, "trust_domain_mismatch", timeout=5)
            except TimeoutError:
                text = env.log(2)
            check("trust domain" in text or "TRUST_DOMAIN" in text.upper(),
                  "the destination agent logged the trust-domain mismatch")

            # Re-route by editing the config while a connection stays open.
            def open_stream():
                def body():
                    s = socket.create_connection(("10.96.0.10", 80), timeout=5)
                    s.settimeout(5)
                    hello = b""
                    while not hello.endswith(b"\n"):
                        hello += s.recv(1)
                    return s, hello.decode()
                return in_netns(client.ns, body)
            keep, hello = open_stream()
            only_a = [dict(w) for w in env.workloads]
            for w in only_a:
                if w["name"] == "b":
                    w.pop("services", None)
            mark = len(env.log(1))
            t0 = time.monotonic()
            env.write_config(workloads=only_a)
            rerouted = None
            while time.monotonic() - t0 < 3:
                tags = {tag_of(tcp_exchange(client.ns, "10.96.0.10", 80, b"x\n", timeout=3)) for _ in range(8)}
                if tags == {"a"}:
                    rerouted = time.monotonic() - t0
                    break
            check(rerouted is not None and rerouted < 1.0,
                  f"config edit re-routed new connections in {rerouted}s")
            keep.sendall(b"still here\n")
            check(keep.recv(64) == b"still here\n", "the open connection kept flowing across the reload")
            keep.close()
            # Broken config: rejected, reported, routing unchanged.
            env.write_config(raw="workloads:\n  - name: [broken\n")
            env.wait_log(1, "config reload failed", after=mark)
            metrics = in_netns(topo.node_ns(1), lambda: urllib.request.urlopen(
                "http://127.0.0.1:15020/metrics", timeout=3).read().decode())
            check('ambit_config_reloads_total{result="error"} 1' in metrics,
                  "broken config counted in ambit_config_reloads_total{result=\"error\"}")
            tags = {tag_of(tcp_exchange(client.ns, "10.96.0.10", 80, b"x\n", timeout=3)) for _ in range(8)}
            check(tags == {"a"}, f"last good config still in force after a broken edit ({tags})")
        finally:
            if FAILURES:
                for n in (1, 2):
                    print(f"---- agent {n} log ----\n" + env.log(n)[-5000:])
                    if os.environ.get("AMBIT_KEEP_LOGS"):
                        open(f"/tmp/edge-agent-{n}.log", "w").write(env.log(n))
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
