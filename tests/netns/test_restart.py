#!/usr/bin/env python3
"""Zero-downtime agent restart on real namespaces (issue #9 item 2).

For the client-side node's agent, then the server-side node's: a second
ambit-agent starts beside the old one (other admin/stats/readiness ports, the
same in-pod ports 15001/15006/15008 through SO_REUSEPORT), becomes ready, and
the old one gets SIGTERM and drains. Four client threads open a new
connection, exchange random bytes with an echo server and close, in a loop,
for the whole swap: no attempt may fail and every byte is checked. The pods'
redirection rules must survive the old agent's exit and not be duplicated by
the new agent's install.
"""
import argparse
import ctypes
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import CLONE_NEWNET, Topology, _libc, in_netns, require_root  # noqa: E402
from ambit_env import AmbitEnv  # noqa: E402

FAILURES = []
THREADS = 4


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


class Load:
    """THREADS threads, each inside `ns`: connect, read the greeting, echo
    random bytes, close; until stop() or `limit` seconds."""

    def __init__(self, ns, ip, port, limit=40.0):
        self.ns, self.ip, self.port, self.limit = ns, ip, port, limit
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.done = []       # completion times (monotonic)
        self.failures = []   # (time, description)
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(THREADS)]

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(10)

    def count_between(self, t0, t1):
        with self.lock:
            return sum(1 for t in self.done if t0 <= t <= t1)

    def _one(self, rng):
        payload = rng.randbytes(rng.randint(1, 4096))
        with socket.create_connection((self.ip, self.port), timeout=5) as s:
            s.settimeout(5)
            hello = b""
            while not hello.endswith(b"\n"):
                d = s.recv(256)
                if not d:
                    raise ConnectionError(f"EOF before the greeting ({hello!r})")
                hello += d
            if b"tag=server" not in hello:
                raise ConnectionError(f"unexpected greeting {hello!r}")
            s.sendall(payload)
            got = b""
            while len(got) < len(payload):
                d = s.recv(65536)
                if not d:
                    raise ConnectionError(f"EOF after {len(got)}/{len(payload)} echoed bytes")
                got += d
            if got != payload:
                raise ConnectionError(f"echo mismatch ({len(got)} bytes)")

    def _run(self, i):
        fd = os.open(f"/var/run/netns/{self.ns}", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)
        rng = random.Random(i)
        deadline = time.monotonic() + self.limit
        while not self.stop_ev.is_set() and time.monotonic() < deadline:
            try:
                self._one(rng)
                with self.lock:
                    self.done.append(time.monotonic())
            except (OSError, ConnectionError) as e:
                with self.lock:
                    self.failures.append((time.monotonic(), f"{e.__class__.__name__}: {e}"))


def http_status(ns, url):
    def body():
        try:
            return urllib.request.urlopen(url, timeout=2).status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return None
    return in_netns(ns, body)


def istio_rules(topo, pod):
    """Our iptables lines and policy-routing rules inside a pod netns."""
    save = topo.ns_exec(pod.ns, ["iptables-save"]).stdout
    rules = sorted(l for l in save.splitlines() if "ISTIO" in l and not l.startswith("#"))
    iprules = [l for l in topo.ns_exec(pod.ns, ["ip", "rule"]).stdout.splitlines() if "0x111" in l]
    return rules, iprules


def start_second(env, topo, node, gen):
    """A new agent beside the running one: same config, other local ports."""
    log_path = os.path.join(env.dir, f"agent-{node}-gen{gen}.log")
    base = 15100 + 100 * gen
    cmd = ["ip", "netns", "exec", topo.node_ns(node), env.agent_bin,
           "--config", env.config_path, "--node", f"node-{node}", "--ca-dir", env.ca_dir,
           "--workers", str(env.workers), "--redirect", "auto", "--redirect-backend", env.backend,
           "--log-level", "info", "--termination-deadline", "5s",
           "--admin-addr", f"127.0.0.1:{base}", "--stats-addr", f"0.0.0.0:{base + 20}",
           "--readiness-addr", f"0.0.0.0:{base + 21}"]
    p = subprocess.Popen(cmd, stdout=open(log_path, "a"), stderr=subprocess.STDOUT,
                         env=dict(os.environ, AMBIT_REDIRECT_MODE=env.mode))
    topo.procs.append(p)
    return p, log_path, base + 21


def swap(env, topo, node, gen, load, pods):
    """Starts the new agent, waits until it is ready, SIGTERMs the old one."""
    old = env.agents[node]
    before = {p.name: istio_rules(topo, p) for p in pods}
    t0 = time.monotonic()
    new, log_path, ready_port = start_second(env, topo, node, gen)
    env.agents[node], env.logs[node] = new, log_path
    env.wait_log(node, "capturing pod", timeout=15)
    deadline = time.monotonic() + 15
    while http_status(topo.node_ns(node), f"http://127.0.0.1:{ready_port}/healthz/ready") != 200:
        check(time.monotonic() < deadline and new.poll() is None, f"node {node}: new agent ready")
        if time.monotonic() >= deadline or new.poll() is not None:
            return
        time.sleep(0.05)  # poll interval of a wait-with-timeout
    t_ready = time.monotonic()
    reinstalled = {p.name: istio_rules(topo, p) for p in pods}
    old.send_signal(signal.SIGTERM)
    try:
        rc = old.wait(timeout=10)
    except subprocess.TimeoutExpired:
        rc = None
    t_exit = time.monotonic()
    check(rc == 0, f"node {node}: old agent drained and exited {rc} "
          f"{t_exit - t_ready:.2f}s after SIGTERM")
    after = {p.name: istio_rules(topo, p) for p in pods}
    for p in pods:
        check(reinstalled[p.name] == before[p.name] and len(before[p.name][0]) > 0,
              f"node {node}: new agent's install left {p.name}'s rules as they were "
              f"({len(before[p.name][0])} iptables lines, {len(before[p.name][1])} ip rule)")
        check(after[p.name] == before[p.name],
              f"node {node}: old agent's exit kept {p.name}'s redirection rules")
    errors = [l for l in env.log(node).splitlines() if "\terror\t" in l or "installing redirection" in l]
    check(not errors, f"node {node}: new agent logged no error ({errors[:2]})")
    # Some more traffic only through the new agent.
    t_more = time.monotonic()
    more_deadline = t_more + 10
    while load.count_between(t_more, time.monotonic()) < 50 and time.monotonic() < more_deadline:
        time.sleep(0.05)  # poll interval of a wait-with-timeout
    after_n = load.count_between(t_more, time.monotonic())
    check(after_n >= 50, f"node {node}: {after_n} connections through the new agent alone")
    n = load.count_between(t0, t_exit)
    check(n > 0, f"node {node}: {n} connections completed during the swap "
          f"({t_exit - t0:.2f}s from start to the old agent's exit)")
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    require_root()
    with Topology(nodes=2, tag="r") as topo:
        env = AmbitEnv(topo, args.build)
        client = env.pod(1, "client", sa="sleep")
        server = env.pod(2, "server", sa="echo")
        env.start(extra_args=["--termination-deadline", "5s"])
        try:
            topo.echo_server(server.ns, "0.0.0.0", 8080, "server")
            mig = topo.ns_exec(client.ns, ["sysctl", "-n", "net.ipv4.tcp_migrate_req"]).stdout.strip()
            check(mig == "1", f"agent set net.ipv4.tcp_migrate_req=1 in the pod netns (got {mig!r})")
            load = Load(client.ns, server.ip, 8080)
            t_start = time.monotonic()
            load.start()
            swaps = []
            for gen in (1, 2):  # each node's agent is replaced twice
                for node, pods in ((1, [client]), (2, [server])):
                    time.sleep(1.5)  # traffic through the current agents between swaps (not a wait)
                    swaps.append(swap(env, topo, node, gen, load, pods) or 0)
            time.sleep(1.5)  # and after the last one
            load.stop()
            elapsed = time.monotonic() - t_start
            total = len(load.done)
            fails = load.failures
            print(f"connections: {total} in {elapsed:.1f}s ({total / elapsed:.0f}/s, {THREADS} threads); "
                  f"during the swaps (client, server, client, server) {swaps}; "
                  f"failed attempts {len(fails)}", flush=True)
            for t, e in fails[:10]:
                print(f"   failure at +{t - t_start:.2f}s: {e}")
            check(not fails, f"no connection attempt failed ({len(fails)} of {total + len(fails)})")
        finally:
            if FAILURES:
                for n in (1, 2):
                    print(f"---- agent {n} log ----\n" + env.log(n)[-4000:])
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
