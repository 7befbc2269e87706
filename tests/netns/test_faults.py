#!/usr/bin/env python3
"""Data-path faults on real namespaces (issue #9 item 3), standalone mode.

- destination app down: the client's connection is closed, the source agent
  logs and counts the destination agent's 503;
- destination agent SIGKILLed mid-transfer: the client sees a reset/EOF
  within 1 s; after a restart new connections succeed;
- a captured pod's netns deleted under the agent: no crash, logged, other
  pods keep working, removing the pod from the config is clean;
- TLS clients that never finish the handshake are closed after the handshake
  timeout and the agent's fd count returns to its baseline;
- malformed HTTP/2 after a valid mTLS handshake is refused and the agent
  keeps serving.
File-descriptor exhaustion and 10,000 idle connections: test_faults_limits.py.
"""
import argparse
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, in_netns, open_stream, require_root, tcp_exchange  # noqa: E402
from ambit_env import AmbitEnv  # noqa: E402
from hbone_client import hbone_connect  # noqa: E402

FAILURES = []
AGENT_ARGS = []  # the agents' extra flags, also for restarts


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)
    return cond


def scrape(topo, node, port=15020):
    return in_netns(topo.node_ns(node), lambda: urllib.request.urlopen(
        f"http://127.0.0.1:{port}/metrics", timeout=3).read().decode())


def metric_sum(text, name, *needles):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(n in line for n in needles):
                total += float(line.rsplit(" ", 1)[1])
    return total


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_until(fn, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(interval)  # poll interval of a wait-with-timeout
    return fn()


def exchange_ok(ns, ip, port=8080, tag="server"):
    try:
        return f"tag={tag}" in tcp_exchange(ns, ip, port, b"ping\n", timeout=3)
    except OSError:
        return False


def issue_cert(env, sa):
    out = os.path.join(env.dir, f"{sa}-cert")
    if not os.path.exists(out):
        subprocess.run([env.ctl_bin, "ca", "issue", "--ca", env.ca_dir, "--identity",
                        f"spiffe://cluster.local/ns/demo/sa/{sa}", "--out", out], check=True,
                       capture_output=True)
    return out


# ---- scenarios -----------------------------------------------------------------

def app_down(env, topo, client, server):
    before = metric_sum(scrape(topo, 1), "istio_tcp_connections_failed_total", 'reporter="source"')
    mark = len(env.log(1))
    t0 = time.monotonic()
    try:
        r = tcp_exchange(client.ns, server.ip, 9099, b"x\n", timeout=3)
        outcome = f"closed after {time.monotonic() - t0:.2f}s, {len(r)} bytes"
        closed = r == ""
    except OSError as e:
        outcome = f"{e.__class__.__name__} after {time.monotonic() - t0:.2f}s"
        closed = not isinstance(e, socket.timeout)
    check(closed and time.monotonic() - t0 < 2.5,
          f"app down: the client's connection is closed without data ({outcome})")
    try:
        text = env.wait_log(1, r"connection complete.*error=.*503", after=mark, regex=True, timeout=5)
        line = re.search(r".*connection complete.*error=.*503.*", text[mark:]).group(0)
    except TimeoutError:
        line = None
    check(line is not None, f"app down: source agent's access log has the 503 ({(line or '')[:160]})")
    after = metric_sum(scrape(topo, 1), "istio_tcp_connections_failed_total", 'reporter="source"')
    check(after == before + 1,
          f"app down: istio_tcp_connections_failed_total{{reporter=source}} {before:.0f} -> {after:.0f}")


def peer_killed(env, topo, client, server):
    s = open_stream(client.ns, server.ip, 8080)
    box = {}

    def pump():
        chunk = b"k" * 16384
        s.settimeout(3)
        try:
            while True:
                s.sendall(chunk)
                got = 0
                while got < len(chunk):
                    d = s.recv(65536)
                    if not d:
                        box["end"] = ("EOF", time.monotonic())
                        return
                    got += len(d)
                box["bytes"] = box.get("bytes", 0) + got
        except OSError as e:
            box["end"] = (e.__class__.__name__, time.monotonic())
    t = threading.Thread(target=pump, daemon=True)
    t.start()
    wait_until(lambda: box.get("bytes", 0) > 1 << 20, 5)
    t_kill = time.monotonic()
    env.agents[2].send_signal(signal.SIGKILL)
    env.agents[2].wait(5)
    t.join(5)
    s.close()
    kind, t_end = box.get("end", ("hang", None))
    dt = (t_end - t_kill) if t_end else None
    check(t_end is not None and dt < 1.0,
          f"peer agent SIGKILL mid-transfer ({box.get('bytes', 0) >> 20} MiB echoed): client saw "
          f"{kind} after {dt if dt is None else round(dt, 3)}s")
    check(env.agents[1].poll() is None, "source agent still running after the peer died")
    mark = len(env.log(2))
    env.start_agent(2, AGENT_ARGS)
    env.wait_log(2, "agent\tready", after=mark, timeout=15)
    oks = sum(exchange_ok(client.ns, server.ip) for _ in range(10))
    check(oks == 10, f"after the peer agent restarted: {oks}/10 new connections succeeded")


def netns_deleted(env, topo, client, server, victim):
    mark = len(env.log(2))
    topo.ns_exec(victim.ns, ["true"])
    subprocess.run(["ip", "netns", "del", victim.ns], check=True)
    topo.namespaces.remove(victim.ns)
    try:
        env.wait_log(2, "network namespace path is gone", after=mark, timeout=6)
        logged = True
    except TimeoutError:
        logged = False
    check(logged, "netns deleted: the agent logged that the pod's namespace path is gone")
    check(env.agents[2].poll() is None, "netns deleted: agent still running")
    check(all(exchange_ok(client.ns, server.ip) for _ in range(5)),
          "netns deleted: other pods keep working (5/5 exchanges)")
    mark = len(env.log(2))
    env.write_config(workloads=[w for w in env.workloads if w["name"] != "victim"])
    env.wait_log(2, r"stopped capturing pod demo/victim", after=mark, timeout=5)
    env.wait_log(2, "config applied", after=mark, timeout=5)
    tail = env.log(2)[mark:]
    # Capture/config problems only: access-log lines of earlier exchanges may
    # land after the mark (logs are written asynchronously).
    errors = [l for l in tail.splitlines()
              if ("\terror\t" in l or "\twarn\t" in l) and "\taccess\t" not in l]
    check(not errors, f"netns deleted: removing the pod from the config is clean ({errors[:2]})")
    check(env.agents[2].poll() is None and all(exchange_ok(client.ns, server.ip) for _ in range(3)),
          "netns deleted: agent alive and serving after the removal")


PARTIAL_CLIENT_HELLO = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]) + b"\x11" * 40


def tls_stall(env, topo, plain, server, timeout_s):
    pid = env.agents[2].pid
    # Baseline: the smallest of a few samples (the config watcher briefly holds
    # one more fd each time it re-reads the file).
    base = min(open_fds(pid) for _ in range(5) if time.sleep(0.05) is None)
    n = 10

    def body():
        socks = []
        for i in range(2 * n):
            s = socket.create_connection((server.ip, 15008), timeout=3)
            if i >= n:
                s.sendall(PARTIAL_CLIENT_HELLO)
            socks.append(s)
        return socks
    t0 = time.monotonic()
    socks = in_netns(plain.ns, body)
    wait_until(lambda: open_fds(pid) >= base + 2 * n, 3)
    raised = open_fds(pid)
    check(raised >= base + 2 * n, f"TLS stall: agent holds the {2 * n} stalled handshakes "
          f"(fds {base} -> {raised})")
    closed_at = []
    for s in socks:
        s.settimeout(max(0.1, t0 + timeout_s + 3 - time.monotonic()))
        try:
            d = s.recv(4096)
            while d:  # an alert, then EOF
                d = s.recv(4096)
            closed_at.append(time.monotonic() - t0)
        except socket.timeout:
            closed_at.append(None)
        except OSError:
            closed_at.append(time.monotonic() - t0)
        s.close()
    done = [c for c in closed_at if c is not None]
    check(len(done) == 2 * n and min(done) >= timeout_s - 0.5 and max(done) <= timeout_s + 2.5,
          f"TLS stall: {len(done)}/{2 * n} silent/partial-ClientHello clients closed by the agent "
          f"after {min(done, default=0):.2f}..{max(done, default=0):.2f}s (handshake timeout {timeout_s}s)")
    back = wait_until(lambda: open_fds(pid) <= base, 3)
    check(back, f"TLS stall: agent fds back to the baseline {base} (now {open_fds(pid)})")


def h2_probe(ns, ip, certs, send, timeout=5.0):
    """mTLS + h2 to ip:15008; send(conn, sock) writes whatever; returns the
    outcome: 'status N', 'reset CODE', 'goaway CODE', 'closed' or 'timeout'."""
    import h2.config
    import h2.connection
    import h2.events

    def body():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.check_hostname = False
        ctx.load_verify_locations(os.path.join(certs, "root-cert.pem"))
        ctx.load_cert_chain(os.path.join(certs, "cert-chain.pem"), os.path.join(certs, "key.pem"))
        ctx.set_alpn_protocols(["h2"])
        s = ctx.wrap_socket(socket.create_connection((ip, 15008), timeout=timeout))
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8", validate_outbound_headers=False,
            normalize_outbound_headers=False))
        deadline = time.monotonic() + timeout
        try:
            send(conn, s)
            while time.monotonic() < deadline:
                try:
                    chunk = s.recv(65536)
                except (ConnectionResetError, ssl.SSLError):
                    return "closed"
                if not chunk:
                    return "closed"
                try:
                    events = conn.receive_data(chunk)
                except Exception as e:  # the peer's bytes broke h2's state machine
                    return f"protocol {e.__class__.__name__}"
                for ev in events:
                    if isinstance(ev, h2.events.ResponseReceived):
                        return "status " + dict(ev.headers)[":status"]
                    if isinstance(ev, h2.events.StreamReset):
                        return f"reset {int(ev.error_code)}"
                    if isinstance(ev, h2.events.ConnectionTerminated):
                        return f"goaway {int(ev.error_code)}"
                out = conn.data_to_send()
                if out:
                    s.sendall(out)
            return "timeout"
        except socket.timeout:
            return "timeout"
        finally:
            s.close()
    return in_netns(ns, body)


def malformed_h2(env, topo, plain, server):
    certs = issue_cert(env, "sleep")
    auth = f"{server.ip}:8080"

    def huge(conn, s):
        conn.initiate_connection()
        conn.local_settings.acknowledged = True
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "CONNECT"), (":authority", auth),
                                ("x-huge", "a" * 70000)])
        s.sendall(conn.data_to_send())

    def no_authority(conn, s):
        conn.initiate_connection()
        conn.send_headers(conn.get_next_available_stream_id(), [(":method", "CONNECT")])
        s.sendall(conn.data_to_send())

    def garbage(conn, s):
        conn.initiate_connection()
        s.sendall(conn.data_to_send() + bytes(range(256)) * 8)

    def no_preface(conn, s):
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")

    for name, fn, good in (("header block > 64 KiB", huge, ("reset", "goaway", "closed", "status 4")),
                           ("CONNECT without :authority", no_authority, ("reset", "goaway", "status 400")),
                           ("garbage after the preface", garbage, ("goaway", "closed")),
                           ("HTTP/1.1 instead of the preface", no_preface, ("goaway", "closed"))):
        t0 = time.monotonic()
        try:
            outcome = h2_probe(plain.ns, server.ip, certs, fn)
        except Exception as e:  # noqa: BLE001 — report what the client saw
            outcome = f"error {e.__class__.__name__}: {e}"
        check(outcome.startswith(good), f"malformed h2: {name} -> {outcome} "
              f"after {time.monotonic() - t0:.2f}s (want one of {', '.join(good)})")
        status, data = hbone_connect(plain.ns, server.ip, auth, certs)
        check(status == 200 and b"tag=server" in data,
              f"malformed h2: a well-formed CONNECT still gets {status} after '{name}'")
    check(env.agents[2].poll() is None, "malformed h2: agent still running")


def handshake_flag(agent_bin):
    r = subprocess.run([agent_bin, "--help"], capture_output=True, text=True, timeout=10)
    return "--handshake-timeout" in r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--only", default="", help="comma-separated scenario names (debugging)")
    args = ap.parse_args()
    require_root()
    with Topology(nodes=2, tag="f") as topo:
        env = AmbitEnv(topo, args.build)
        client = env.pod(1, "client", sa="sleep")
        plain = env.pod(1, "plain", captured=False)
        server = env.pod(2, "server", sa="echo")
        victim = env.pod(2, "victim", sa="echo")
        extra = ["--termination-deadline", "2s"]
        hs_timeout = 10.0
        if handshake_flag(env.agent_bin):
            extra += ["--handshake-timeout", "2s"]
            hs_timeout = 2.0
        AGENT_ARGS[:] = extra
        env.start(extra_args=extra)
        try:
            topo.echo_server(server.ns, "0.0.0.0", 8080, "server")
            check(exchange_ok(client.ns, server.ip), "baseline: client -> server through two agents")
            for name, fn, fargs in (
                    ("app down", app_down, (env, topo, client, server)),
                    ("peer killed", peer_killed, (env, topo, client, server)),
                    ("netns deleted", netns_deleted, (env, topo, client, server, victim)),
                    ("TLS stall", tls_stall, (env, topo, plain, server, hs_timeout)),
                    ("malformed h2", malformed_h2, (env, topo, plain, server))):
                if args.only and name not in args.only.split(","):
                    continue
                t0 = time.monotonic()
                try:
                    fn(*fargs)
                except Exception as e:  # noqa: BLE001 — one scenario's crash fails it, not the run
                    check(False, f"{name}: raised {e.__class__.__name__}: {e}")
                print(f"     ({name}: {time.monotonic() - t0:.1f}s)", flush=True)
        finally:
            if FAILURES:
                for n in (1, 2):
                    print(f"---- agent {n} log ----\n" + env.log(n)[-5000:])
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
