#!/usr/bin/env python3
"""Agent data path on real network namespaces (ISSUE: agent data path).

Two nodes, real ambit-agent processes, in-pod redirection installed by the
agents (--redirect auto), traffic from pod network namespaces.
"""
import argparse
import hashlib
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, in_netns, require_root, tcp_exchange, wait_tcp  # noqa: E402
from ambit_env import AmbitEnv  # noqa: E402

FAILURES = []

# Sends 100,000 bytes, half-closes first, then counts what the client sends.
SERVER_FIRST = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9000)); s.listen(4)
print("ready", flush=True)
c, _ = s.accept()
c.sendall(b"s" * 100000)
c.shutdown(socket.SHUT_WR)
got = 0
while True:
    d = c.recv(65536)
    if not d: break
    got += len(d)
print("got %d" % got, flush=True)
"""


def server_first_half_close(topo, client, server):
    p = topo.spawn(server.ns, [sys.executable, "-c", SERVER_FIRST])
    topo.wait_line(p, "ready")

    def body():
        s = socket.create_connection((server.ip, 9000), timeout=5)
        s.settimeout(5)
        got = 0
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += len(d)
        s.sendall(b"c" * 50000)  # our direction is still open after the server's FIN
        s.shutdown(socket.SHUT_WR)
        s.recv(1)
        s.close()
        return got
    got = in_netns(client.ns, body)
    line = topo.wait_line(p, "got", timeout=5)
    return got, line


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def logged(env, node, regex, timeout=5.0):
    """The last log line of agent `node` matching `regex` (waits for it), or None."""
    try:
        text = env.wait_log(node, regex, timeout=timeout, regex=True)
    except TimeoutError:
        return None
    lines = [l for l in text.splitlines() if re.search(regex, l)]
    return lines[-1] if lines else None


def bulk(ns, ip, port, nbytes, timeout=120):
    """Sends nbytes to a sink-echo and reads them back; returns (sent_sha, got_sha, got)."""
    def body():
        s = socket.create_connection((ip, port), timeout=5)
        s.settimeout(timeout)
        hello = b""
        while not hello.endswith(b"\n"):
            hello += s.recv(1)
        h_out, h_in = hashlib.sha256(), hashlib.sha256()
        got = [0]

        def reader():
            while True:
                d = s.recv(1 << 20)
                if not d:
                    break
                h_in.update(d)
                got[0] += len(d)
        t = threading.Thread(target=reader)
        t.start()
        block = os.urandom(1 << 20)
        sent = 0
        while sent < nbytes:
            n = min(len(block), nbytes - sent)
            s.sendall(block[:n])
            h_out.update(block[:n])
            sent += n
        s.shutdown(socket.SHUT_WR)  # half-close: the echo must still send everything back
        t.join(timeout)
        s.close()
        return h_out.hexdigest(), h_in.hexdigest(), got[0], hello.decode().strip()
    return in_netns(ns, body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--mode", default="redirect")
    ap.add_argument("--backend", default="iptables")
    ap.add_argument("--bulk-mib", type=int, default=1024)
    ap.add_argument("--io", default="", help="agent I/O backend (--io), e.g. epoll; default: the agent's")
    args = ap.parse_args()
    require_root()
    with Topology(nodes=2, tag=args.io[:1] or args.mode[0]) as topo:
        env = AmbitEnv(topo, args.build, mode=args.mode, backend=args.backend)
        svc = {"demo/echo.demo.svc.cluster.local": {80: 8080}}
        client = env.pod(1, "client", sa="sleep")
        server = env.pod(2, "server", sa="echo", services=svc)
        local = env.pod(1, "local", sa="echo", services=svc)
        plain = env.pod(2, "plain", captured=False)
        env.service("echo", vip="10.96.0.10", ports={80: 8080})
        env.start(extra_args=["--redirect-mode", args.mode] + (["--io", args.io] if args.io else []))
        try:
            # The agents installed the redirection mode of this variant, in every pod.
            other_mode = "tproxy" if args.mode == "redirect" else "redirect"
            for n, pods in ((1, (client, local)), (2, (server,))):
                text = env.wait_log(n, f"installed {args.mode} redirection ({args.backend}")
                lines = [l for l in text.splitlines() if f"installed {args.mode} redirection" in l]
                check(len(lines) == len(pods) and f"installed {other_mode} redirection" not in text,
                      f"node {n}: agent installed {args.mode} redirection ({args.backend}) "
                      f"in {len(lines)} pod(s), want {len(pods)}")

            for p, tag in ((server, "server"), (local, "local"), (plain, "plain")):
                topo.echo_server(p.ns, "0.0.0.0", 8080, tag)

            # Cross-node pod to pod through HBONE: the server sees the client's IP.
            line = tcp_exchange(client.ns, server.ip, 8080, b"hi\n", timeout=5)
            check(line.startswith(f"peer={client.ip}:") and "tag=server" in line,
                  f"cross-node: server sees client IP ({line.strip()})")
            env.wait_log(2, "connection complete")  # logs are written asynchronously
            # Wait for the completed outbound line, not the debug "opened" one.
            env.wait_log(1, rf"connection complete .*dst\.hbone_addr={re.escape(server.ip)}:8080 .*direction=outbound",
                         regex=True)
            inbound = [l for l in env.access_lines(2) if "direction=inbound" in l]
            check(any("src.identity=spiffe://cluster.local/ns/demo/sa/sleep" in l for l in inbound),
                  "cross-node: destination agent saw the client's SPIFFE identity")
            outbound = [l for l in env.access_lines(1) if "direction=outbound" in l]
            check(any(f"dst.addr={server.ip}:15008" in l and f"dst.hbone_addr={server.ip}:8080" in l
                      for l in outbound), "cross-node: source agent used HBONE to :15008")

            # Same node: still HBONE into the destination pod's netns.
            line = tcp_exchange(client.ns, local.ip, 8080, b"hi\n", timeout=5)
            check(line.startswith(f"peer={client.ip}:") and "tag=local" in line,
                  f"same-node: local server sees client IP ({line.strip()})")
            line = logged(env, 1, rf"connection complete .*src\.addr={re.escape(client.ip)}:\d+ .*"
                                  rf"dst\.addr={re.escape(local.ip)}:15008 .*"
                                  rf"dst\.hbone_addr={re.escape(local.ip)}:8080 .*direction=outbound")
            check(line is not None, f"same-node: the source agent used HBONE to {local.ip}:15008 ({line})")
            line = logged(env, 1, rf"connection complete .*src\.addr={re.escape(client.ip)}:\d+ .*"
                                  rf"src\.identity=spiffe://cluster\.local/ns/demo/sa/sleep .*"
                                  rf"dst\.addr={re.escape(local.ip)}:15008 "
                                  rf"dst\.hbone_addr={re.escape(local.ip)}:8080 .*direction=inbound")
            check(line is not None, f"same-node: the local pod's inbound side saw the client's identity ({line})")
            t0 = time.monotonic()
            nbytes = args.bulk_mib << 20
            out_sha, in_sha, got, hello = bulk(client.ns, local.ip, 8080, nbytes)
            dt = time.monotonic() - t0
            check(got == nbytes and out_sha == in_sha and "tag=local" in hello,
                  f"same-node bulk: {args.bulk_mib} MiB echoed intact through the node's agent "
                  f"({got} bytes, {nbytes * 2 * 8 / dt / 1e9:.2f} Gbit/s both ways, {dt:.1f} s)")

            # Bulk transfer with checksum and half-close.
            t0 = time.monotonic()
            nbytes = args.bulk_mib << 20
            out_sha, in_sha, got, hello = bulk(client.ns, server.ip, 8080, nbytes)
            dt = time.monotonic() - t0
            check(got == nbytes and out_sha == in_sha and "tag=server" in hello,
                  f"bulk: {args.bulk_mib} MiB echoed intact through two agents "
                  f"({got} bytes, {nbytes * 2 * 8 / dt / 1e9:.2f} Gbit/s both ways, {dt:.1f} s)")

            # Half-close the other way round: the server finishes first.
            got, line = server_first_half_close(topo, client, server)
            check(got == 100000 and line == "got 50000",
                  f"server-first half-close: client read {got} then sent 50000 ({line})")

            # Service VIP: spread across endpoints.
            tags = {}
            for _ in range(40):
                line = tcp_exchange(client.ns, "10.96.0.10", 80, b"x\n", timeout=5)
                tag = line.split("tag=")[1].split()[0] if "tag=" in line else "?"
                tags[tag] = tags.get(tag, 0) + 1
            check(set(tags) == {"server", "local"} and min(tags.values()) >= 8,
                  f"service VIP 10.96.0.10:80 balanced over both endpoints: {tags}")

            # Captured client -> uncaptured server: plain TCP, original source.
            line = tcp_exchange(client.ns, plain.ip, 8080, b"hi\n", timeout=5)
            check("tag=plain" in line and line.startswith(f"peer={client.ip}:"),
                  f"captured -> uncaptured: plain TCP passthrough ({line.strip()})")
            # ... and it went through the client's agent: outbound, plain TCP.
            line = logged(env, 1, rf"connection complete .*src\.addr={re.escape(client.ip)}:\d+ .*"
                                  rf"dst\.addr={re.escape(plain.ip)}:8080 .*direction=outbound")
            check(line is not None and "dst.hbone_addr=" not in line and "dst.workload=" not in line,
                  f"captured -> uncaptured: client agent logged a plain-TCP passthrough ({line})")
            # Uncaptured client -> captured server: arrives on 15006.
            line = tcp_exchange(plain.ns, server.ip, 8080, b"hi\n", timeout=5)
            check("tag=server" in line and line.startswith(f"peer={plain.ip}:"),
                  f"uncaptured -> captured: via 15006 with the client IP ({line.strip()})")
            # ... which only the server agent's plaintext inbound (15006) logs:
            # direction=inbound, the plain client's address, no identity.
            line = logged(env, 2, rf"connection complete .*src\.addr={re.escape(plain.ip)}:\d+ .*"
                                  rf"dst\.addr={re.escape(server.ip)}:8080 .*direction=inbound")
            check(line is not None and "src.identity=" not in line,
                  f"uncaptured -> captured: server agent logged the plaintext inbound ({line})")

            # Self-call of the agent's own ports from inside the pod is refused.
            for port in (15001, 15006):
                try:
                    r = tcp_exchange(client.ns, server.ip, port, b"x\n", timeout=2)
                    check(r == "", f"call to {server.ip}:{port} refused (got {r!r})")
                except OSError as e:
                    check(True, f"call to {server.ip}:{port} refused ({e.__class__.__name__})")
        finally:
            if FAILURES:
                for n in (1, 2):
                    print(f"---- agent {n} log ----\n" + env.log(n)[-6000:])
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
