#!/usr/bin/env python3
"""Control-plane faults against ambit-agent in Istio mode (issue #9 item 3):
what the agents do when the fake istiod (xDS + CA) is away, and certificate
rotation through the Istio CA.

Two nodes: `client` (sa sleep) on node 1; `server` (sa echo, behind a service
VIP) and `late` (sa echo, announced over ZDS at once but pushed over xDS only
after an outage) on node 2. The in-pod rules are installed by the test as
istio-cni would. Phases:
  1. istiod unreachable at start (xDS stopped, CA port closed): readiness 500
     naming `xds` and `certificates(N)`; a client's outbound connection gets no
     plaintext through; 15008 serves no TLS. The CA returns first: still
     nothing through (outbound from the client pod, inbound plaintext from
     outside the mesh) and the agents survive; then xDS: ready, traffic.
  1b. the same with the agents restarted and xDS returning before the CA.
  2. istiod unreachable later: the established connection flows, new ones use
     the last config and certificates, readiness stays 200; after the restart
     the agents resubscribe with initial_resource_versions and a new
     workload + service pushed then is reachable.
  3. agents restarted with --cert-ttl 6s: rotation at half-life (new serial in
     /config_dump, a second CA request), a long-lived connection keeps
     flowing; a failing refresh keeps the old certificate in use.
  4. metrics: istio_xds_connection_terminations_total, istio_xds_message_total,
     ambit_ca_fetches_total.
Prints the time to ready after istiod returns and the rotation interval.
"""
import argparse
import datetime
import os
import re
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, in_netns, require_root, tcp_exchange  # noqa: E402
from istio_env import IstioEnv, service  # noqa: E402

FAILURES = []
SVC = "demo/echo.demo.svc.cluster.local"
VIP = "10.96.0.10"
LATE_SVC = "demo/late.demo.svc.cluster.local"
LATE_VIP = "10.96.0.11"
ADDRESS_URL = "type.googleapis.com/istio.workload.Address"
TTL_S = 6

# One line "peer=<ip>:<port> tag=<tag>" per connection, then echoes; prints
# "conn <ip>:<port>" on stdout for every accepted connection.
COUNTING_SERVER = r"""
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(64)
print("ready", flush=True)
def serve(c, a):
    with c:
        c.sendall(("peer=%s:%d tag=%s\n" % (a[0], a[1], sys.argv[2])).encode())
        while True:
            d = c.recv(4096)
            if not d: break
            c.sendall(d)
while True:
    c, a = s.accept()
    print("conn %s:%d" % a, flush=True)
    threading.Thread(target=serve, args=(c, a), daemon=True).start()
"""


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)
    return cond


def info(what):
    print("info " + what, flush=True)


def wait_until(fn, timeout, interval=0.1):
    """fn() until truthy or timeout; returns the last value."""
    deadline = time.monotonic() + timeout
    last = fn()
    while not last and time.monotonic() < deadline:
        time.sleep(interval)  # poll interval of a wait-with-timeout
        last = fn()
    return last


class CountingServer:
    """COUNTING_SERVER in a pod; `conns` lists the peers it accepted."""

    def __init__(self, topo, pod, port=8080):
        self.p = topo.spawn(pod.ns, [sys.executable, "-c", COUNTING_SERVER, str(port), pod.name])
        topo.wait_line(self.p, "ready", timeout=10)
        self.conns = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            if line.startswith("conn "):
                self.conns.append(line.split()[1])


def exchange(pod, ip, port=8080, timeout=3):
    """The echo server's greeting line, or '' / the error class when refused."""
    try:
        line = tcp_exchange(pod.ns, ip, port, b"hi\n", timeout=timeout)
        return line.splitlines()[0].strip() if line else ""
    except OSError as e:
        return f"<{e.__class__.__name__}>"


def open_conn(pod, ip, port=8080, timeout=5):
    """(socket, greeting) of a connection kept open."""
    def body():
        s = socket.create_connection((ip, port), timeout=timeout)
        s.settimeout(timeout)
        data = b""
        while not data.endswith(b"\n"):
            d = s.recv(1)
            if not d:
                break
            data += d
        return s, data.decode().strip()
    return in_netns(pod.ns, body)


def flows(s, probe=b"ping\n"):
    try:
        s.sendall(probe)
        got = b""
        while len(got) < len(probe):
            d = s.recv(len(probe) - len(got))
            if not d:
                break
            got += d
        return got == probe
    except OSError:
        return False


def tls_served(env, pod, port=15008, timeout=1.5):
    """'handshake' if pod.ip:port completes a TLS handshake, else why not."""
    def body():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        try:
            with socket.create_connection((pod.ip, port), timeout=timeout) as raw:
                with ctx.wrap_socket(raw) as s:
                    return f"handshake ({s.version()})"
        except (OSError, ssl.SSLError) as e:
            return f"no handshake: {e.__class__.__name__}"
    return in_netns(env.topo.node_ns(pod.node), body)


def rfc3339(t):
    return datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()


def ca_ids(f, since):
    return [r["impersonated_identity"] for r in f("ca_requests", since=since)["requests"]]


# ---- phase 1: istiod unreachable at start ---------------------------------------

def nothing_through(client, server, servers, when, src_ns=None):
    """Client (or any `src_ns`) -> server:8080 must not reach the server app;
    returns the socket if the connection was accepted (it may wait in the
    agent's backlog)."""
    seen = len(servers["server"].conns)
    held = None
    try:
        held = in_netns(src_ns or client.ns,
                        lambda: socket.create_connection((server.ip, 8080), timeout=2))
        held.settimeout(2)
        held.sendall(b"hi\n")
        try:
            got = held.recv(100).decode() or "<closed>"
        except socket.timeout:
            got = "<timeout: waits in the backlog>"
        except OSError as e:
            got = f"<{e.__class__.__name__}>"
    except OSError as e:
        got = f"<{e.__class__.__name__}: refused>"
    new = servers["server"].conns[seen:]
    check(not got.startswith("peer=") and not new,
          f"{when}: client -> server gets nothing through ({got.strip()}; server accepted {new})")
    return held


def survives(env, node):
    """True if the agent is still up 1 s later and answers on readiness."""
    if wait_until(lambda: env.agents[node].poll() is not None, 1.0):
        return False
    return env.ready(node)[0] is not None and env.agents[node].poll() is None


def check_held(held, source_ip):
    """A connection accepted while the agent could not secure it: once it can,
    it is served with the source IP kept (through HBONE from a mesh client, as
    plaintext inbound from outside the mesh), or closed."""
    if held is None:
        return
    try:
        got = held.recv(100).decode().strip()
    except OSError as e:
        got = f"<{e.__class__.__name__}>"
    held.close()
    check(got == "" or got.startswith("<") or got.startswith(f"peer={source_ip}:"),
          f"held connection, once the agent is ready: {got or '<closed>'}")


def wait_not_ready(env, nodes_n, what, fmt):
    for node, n in nodes_n:
        want = fmt.format(n=n)
        st, body = env.wait_ready_body(node, want, 20)
        check(st == 500 and body.strip() == want,
              f"node {node}: {what}: readiness 500 '{want}' ({st} {body.strip()})")


def wait_ready_after(env, t0, what):
    """Waits for 200 on the live agents (a dead one was reported already)."""
    took = {}
    for node in (n for n in (1, 2) if env.agents[n].poll() is None):
        env.wait_ready(node, want=200, timeout=40)
        took[node] = time.monotonic() - t0
    print(f"time to ready after {what}: " +
          ", ".join(f"node {n} {t:.2f} s" for n, t in took.items()), flush=True)
    # The xDS client retries with ztunnel's backoff (10 ms doubling to 15 s,
    # each failed connect taking ~2 s), so after an outage of this test's
    # length the next attempt comes within ~8 s; 20 s leaves room on a busy CI.
    check(len(took) == 2 and max(took.values()) < 20,
          f"both ready soon after {what} ({took}, limit 20 s)")


def traffic_ok(env, client, server, what):
    mark = len(env.log(1)), len(env.log(2))
    line = exchange(client, server.ip)
    check(line.startswith(f"peer={client.ip}:") and f"tag={server.name}" in line,
          f"{what}: cross-node traffic keeps the client IP ({line})")
    env.wait_log(1, rf"connection complete .*dst\.hbone_addr={re.escape(server.ip)}:8080",
                 regex=True, after=mark[0])
    env.wait_log(2, r"connection complete .*src\.identity=spiffe://cluster\.local/ns/demo/sa/sleep"
                    r".*direction=inbound", regex=True, after=mark[1])
    check(True, f"{what}: ... through HBONE with the client's SPIFFE identity")


def phase_down_at_start(env, f, pods, servers):
    """Agents start with xDS and CA down; the CA returns first, then xDS."""
    client, server = pods["client"], pods["server"]
    for node in (1, 2):
        env.wait_log(node, "readiness on", timeout=15)
        acks = env.announce(node)
        check(set(acks) == {"ack"}, f"node {node}: ZDS Adds and SnapshotSent acked with istiod down")
    wait_not_ready(env, ((1, 1), (2, 2)), "istiod down", "not ready: xds, certificates({n})")
    state = env.config_dump(1)["workloadState"].get(client.kube_uid, {}).get("state")
    check(state == "Pending", f"client pod is Pending without a certificate ({state})")
    held = [(nothing_through(client, server, servers, "istiod down"), client.ip)]
    for p in (server, client):
        r = tls_served(env, p)
        check(not r.startswith("handshake"), f"no TLS on {p.name}:15008 without a certificate ({r})")
    t = wait_until(lambda: env.metric(1, "istio_xds_connection_terminations_total") or 0, 10)
    check(t >= 1, f"node 1: istio_xds_connection_terminations_total counts failed connects ({t})")

    f("ca_restart")  # certificates, but still no xDS config
    wait_not_ready(env, ((1, 1), (2, 2)), "CA back, xDS down", "not ready: xds")
    # From outside the mesh (node 1's own netns): the server pod's inbound plaintext path.
    held.append((nothing_through(client, server, servers, "no xDS config yet, from outside the mesh",
                                 src_ns=env.topo.node_ns(1)), "10.44.0.1"))  # node 1's address
    check(survives(env, 2), f"agent 2 survives an inbound plaintext connection without xDS "
                            f"config (exit {env.agents[2].poll()})")
    held.append((nothing_through(client, server, servers, "certificates but no xDS config yet"),
                 client.ip))
    for node in (1, 2):
        check(survives(env, node),
              f"agent {node} survives connections arriving with a certificate but no xDS config "
              f"(exit {env.agents[node].poll()})")
    t0 = time.monotonic()
    f("xds_restart")
    wait_ready_after(env, t0, "xDS returned (CA first)")
    if all(env.agents[n].poll() is None for n in (1, 2)):  # else reported above
        traffic_ok(env, client, server, "istiod back")
    for s, source_ip in held:
        check_held(s, source_ip)


def phase_xds_first(env, f, pods, servers):
    """Agents restarted with istiod down again; xDS returns before the CA."""
    client, server = pods["client"], pods["server"]
    restart_agents(env, [], istiod_down=True)
    f("xds_restart")
    wait_not_ready(env, ((1, 1), (2, 2)), "xDS back, CA down", "not ready: certificates({n})")
    held = nothing_through(client, server, servers, "xDS config but no certificate yet")
    t0 = time.monotonic()
    f("ca_restart")
    wait_ready_after(env, t0, "the CA returned (xDS first)")
    traffic_ok(env, client, server, "CA back")
    check_held(held, client.ip)


# ---- phase 2 -------------------------------------------------------------------

def phase_down_later(env, f, pods, servers):
    client, server, late = pods["client"], pods["server"], pods["late"]
    long_conn, hello = open_conn(client, server.ip)
    check(hello.startswith(f"peer={client.ip}:"), f"long-lived connection open ({hello})")
    terms = {n: env.metric(n, "istio_xds_connection_terminations_total") or 0 for n in (1, 2)}
    before = f("xds_status")["streams_accepted"]
    marks = {n: len(env.log(n)) for n in (1, 2)}
    f("xds_stop")
    f("ca_stop")
    for n in (1, 2):  # the outage lasts until each agent failed to reconnect twice
        fails = wait_until(lambda: env.log(n)[marks[n]:].count(
            "xDS stream ended: cannot connect") >= 2, 20)
        check(fails, f"node {n}: agent failed to reconnect to istiod twice")
    for n in (1, 2):
        now = wait_until(lambda: (env.metric(n, "istio_xds_connection_terminations_total") or 0)
                         > terms[n] and env.metric(n, "istio_xds_connection_terminations_total"), 10)
        check(bool(now), f"node {n}: istio_xds_connection_terminations_total rises when istiod goes "
                         f"away ({terms[n]} -> {now})")
    reasons = {r: env.metric(1, "istio_xds_connection_terminations_total", f'reason="{r}"')
               for r in ("ConnectionError", "Reconnect", "Error", "Complete")}
    info(f"node 1 terminations by reason: {reasons}")
    check(flows(long_conn), "istiod down: the established connection keeps flowing")
    lines = [exchange(client, server.ip) for _ in range(3)] + [exchange(client, VIP, 80)]
    check(all(x.startswith(f"peer={client.ip}:") for x in lines),
          f"istiod down: new connections (direct and VIP) work on the last config ({lines})")
    for n in (1, 2):
        st, body = env.ready(n)
        check(st == 200, f"node {n}: readiness stays 200 while istiod is down ({st} {body.strip()})")

    t0 = time.monotonic()
    f("xds_restart")
    f("ca_restart")
    init = f("xds_wait", initial=True, type="address", min_stream=before + 1, count=2,
             timeout_ms=30000)["requests"]
    print(f"xDS resubscribed {time.monotonic() - t0:.2f} s after istiod returned", flush=True)
    want = {client.uid, server.uid, SVC}
    for r in init:
        held = set(r["initial_resource_versions"])
        check(want <= held and late.uid not in held,
              f"reconnect of {r['node_id'].split('~')[2]}: initial_resource_versions carry what it "
              f"holds ({len(held)} names; missing {sorted(want - held)})")
    r1 = f("set_workload", workload=late.workload)
    r2 = f("set_service", service=env.late_service)
    for what, r in (("workload", r1), ("service", r2)):
        acks = f("xds_wait", nonce=r["nonce"], count=2, timeout_ms=10000)["requests"] \
            if r["nonce"] else []
        check(len(acks) == 2 and not any(a["nack"] for a in acks),
              f"push of a new {what} after the restart ACKed by both agents ({len(acks)})")
    line = wait_until(lambda: (lambda x: x if "tag=late" in x else None)(
        exchange(client, LATE_VIP, 80)), 10)
    check(bool(line) and line.startswith(f"peer={client.ip}:"),
          f"the new service {LATE_VIP}:80 -> late is reachable ({line})")
    env.wait_log(1, rf"connection complete .*dst\.hbone_addr={re.escape(late.ip)}:8080", regex=True)
    check(True, "... through HBONE (the new workload is known as a mesh workload)")
    check(flows(long_conn), "the long-lived connection still flows after the reconnect")
    long_conn.close()
    for n in (1, 2):
        m = env.metric(n, "istio_xds_message_total", f'url="{ADDRESS_URL}"')
        check(m is not None and m > 0, f"node {n}: istio_xds_message_total{{url=Address}} = {m}")


# ---- phase 3 -------------------------------------------------------------------

def restart_agents(env, extra_args, istiod_down=False):
    """Kills both agents and starts them again (ZDS snapshot resent); with
    istiod_down the fake's xDS and CA are stopped first and readiness is not awaited."""
    for n in (1, 2):
        env.agents[n].kill()
        env.agents[n].wait(timeout=10)
    if istiod_down:
        env.fake("xds_stop")
        env.fake("ca_stop")
    else:  # a phase that failed may have left istiod down
        if env.fake("xds_status")["stopped"]:
            env.fake("xds_restart")
        env.fake("ca_restart")  # a no-op while the CA serves
    marks = {n: len(env.log(n)) for n in (1, 2)}
    env.start_agents(extra_args)
    for n in (1, 2):
        env.wait_log(n, "readiness on", timeout=15, after=marks[n])
        acks = env.announce(n)
        check(set(acks) == {"ack"}, f"node {n}: restarted agent took the ZDS snapshot ({acks})")
    for n in () if istiod_down else (1, 2):
        env.wait_ready(n, want=200, timeout=20)
    return marks


def phase_rotation(env, f, pods, servers):
    client, server = pods["client"], pods["server"]
    ca_mark = f("ca_requests")["total"]
    marks = restart_agents(env, ["--cert-ttl", f"{TTL_S}s"])
    first = wait_until(lambda: env.cert(1, client.identity), 5)
    t_first = time.monotonic()
    check(bool(first), f"node 1 holds a certificate for {client.identity} ({first})")
    if not first:
        return
    life = rfc3339(first[2]) - rfc3339(first[1])
    check(abs(life - TTL_S) <= 1, f"the CA issued a {TTL_S} s certificate ({life:.0f} s)")
    fetches0 = env.metric(1, "ambit_ca_fetches_total")
    long_conn, hello = open_conn(client, server.ip)
    check(hello.startswith(f"peer={client.ip}:"), f"long-lived connection before rotation ({hello})")

    second = wait_until(lambda: (lambda c: c if c and c[0] != first[0] else None)(
        env.cert(1, client.identity)), TTL_S + 4)
    took = time.monotonic() - t_first
    check(bool(second), f"rotated: new serial in /config_dump ({first[0]} -> "
                        f"{second[0] if second else None})")
    if not second:
        return
    gap = rfc3339(second[1]) - rfc3339(first[1])
    print(f"rotation: new certificate {took:.2f} s after the first was seen; validFrom "
          f"{gap:.0f} s apart (TTL {TTL_S} s, refresh at half-life)", flush=True)
    n_ids = ca_ids(f, ca_mark).count(client.identity)
    check(n_ids >= 2, f"the fake CA saw a second request for {client.identity} ({n_ids})")
    env.wait_log(1, f"rotated certificate for {client.identity} (serial {second[0]})",
                 after=marks[1], timeout=5)
    check(True, "agent 1 logged the rotation")
    check(flows(long_conn), "the connection opened before the rotation keeps flowing")
    line = exchange(client, server.ip)
    check(line.startswith(f"peer={client.ip}:"), f"new connection after the rotation ({line})")
    fetches1 = env.metric(1, "ambit_ca_fetches_total")
    check(fetches1 is not None and fetches0 is not None and fetches1 >= fetches0 + 1,
          f"ambit_ca_fetches_total counts the rotation ({fetches0} -> {fetches1})")
    failed_refresh(env, f, pods, second, long_conn)
    long_conn.close()


def failed_refresh(env, f, pods, current, long_conn):
    client, server = pods["client"], pods["server"]
    mark = f("ca_requests")["total"]
    log_mark = len(env.log(1))
    fetches0 = env.metric(1, "ambit_ca_fetches_total") or 0
    f("ca_fail", n=1000, code=14, message="istiod is restarting")
    failed = wait_until(lambda: client.identity in ca_ids(f, mark), TTL_S + 4, interval=0.05)
    if not check(failed, "the refresh of the client's certificate reached the failing CA"):
        f("ca_recover")
        return
    env.wait_log(1, "refreshing certificate for", after=log_mark, timeout=5)
    now = env.cert(1, client.identity)
    line = exchange(client, server.ip)
    f("ca_recover")
    check(now is not None and now[0] == current[0] and time.time() < rfc3339(current[2]),
          f"failed refresh: the unexpired certificate stays in use ({now})")
    check(line.startswith(f"peer={client.ip}:"), f"traffic right after a failed refresh ({line})")
    env.wait_log(1, "certificate fetch failed", after=log_mark, timeout=5)
    nxt = wait_until(lambda: (lambda c: c if c and c[0] != current[0] else None)(
        env.cert(1, client.identity)), TTL_S + 4)
    check(bool(nxt), f"after the CA recovers the retry rotates ({current[0]} -> "
                     f"{nxt[0] if nxt else None})")
    fetches = env.metric(1, "ambit_ca_fetches_total")
    check(fetches is not None and fetches >= fetches0 + 2,
          f"ambit_ca_fetches_total counts the failed refresh and its retry ({fetches0} -> {fetches})")
    check(flows(long_conn), "the long-lived connection flows through the failed and the retried refresh")
    line = exchange(client, server.ip)
    check(line.startswith(f"peer={client.ip}:"), f"traffic with the retried certificate ({line})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    require_root()
    t_start = time.monotonic()
    with Topology(nodes=2, tag="c") as topo:
        env = IstioEnv(topo, args.build)
        f = env.fake
        pods = {
            "client": env.pod(1, "client", sa="sleep"),
            "server": env.pod(2, "server", sa="echo", services={SVC: {80: 8080}}),
            "late": env.pod(2, "late", sa="echo", services={LATE_SVC: {80: 8080}}, push=False),
        }
        env.service("echo", vip=VIP, ports={80: 8080})
        env.late_service = service("late", "demo", LATE_VIP, {80: 8080})  # pushed in phase 2
        try:
            servers = {n: CountingServer(topo, pods[n]) for n in ("server", "late")}
            env.push_all()
            f("xds_stop")
            f("ca_stop")
            env.start_agents()
            phases = (phase_down_at_start, phase_xds_first, phase_down_later, phase_rotation)
            for phase in phases:
                t = time.monotonic()
                try:  # a failed phase is reported; the next ones still run
                    phase(env, f, pods, servers)
                except Exception as e:
                    text = str(e)
                    check(False, f"{phase.__name__}: {e.__class__.__name__}: {text[:300]}"
                                 + (f" ... {text[-3000:]}" if len(text) > 300 else ""))
                print(f"---- {phase.__name__}: {time.monotonic() - t:.1f} s", flush=True)
                dead = [n for n in (1, 2) if env.agents[n].poll() is not None]
                nxt = phases[phases.index(phase) + 1] if phase is not phases[-1] else None
                if dead and nxt is not None and nxt not in (phase_xds_first, phase_rotation):
                    check(False, f"agent(s) {dead} died in {phase.__name__} "
                                 f"(exit {[env.agents[n].poll() for n in dead]}): restarting both")
                    restart_agents(env, [])
            for node in (1, 2):
                check(env.agents[node].poll() is None, f"agent {node} still running")
        except Exception as e:  # report, print logs, fail
            check(False, f"{e.__class__.__name__}: {e}")
        finally:
            if FAILURES:
                env.dump_tails()
            env.cleanup()
    print(f"{len(FAILURES)} failure(s) in {time.monotonic() - t_start:.1f} s")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
