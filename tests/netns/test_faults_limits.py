#!/usr/bin/env python3
"""Resource limits on real namespaces (issue #9 item 3), standalone mode.

- the client-side agent runs with RLIMIT_NOFILE 256:256: connections are held
  open until one fails; from then on new connections are reset at once (no
  hang in the accept queue), the agent stays idle (no busy loop), counts
  ambit_accept_errors_total{reason="emfile"} and logs a warning; after the
  held connections close, new ones succeed again;
- 10,000 idle connections through two agents (client pod -> server pod): all
  established end to end and verified with one byte each way, then closed;
  agent RSS per connection and the time to open them are printed.
"""
import argparse
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, in_netns, require_root, run  # noqa: E402
from ambit_env import AmbitEnv  # noqa: E402
from test_faults import FAILURES, check, exchange_ok, metric_sum, open_fds, scrape, wait_until  # noqa: E402

# One thread, epoll: greets each connection with b"g", then echoes.
IDLE_ECHO = r"""
import selectors, socket, sys
sel = selectors.DefaultSelector()
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", int(sys.argv[1]))); ls.listen(4096); ls.setblocking(False)
sel.register(ls, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        s = key.fileobj
        if s is ls:
            while True:
                try:
                    c, _ = ls.accept()
                except BlockingIOError:
                    break
                c.setblocking(False)
                try:
                    c.send(b"g")
                except OSError:
                    c.close(); continue
                sel.register(c, selectors.EVENT_READ)
            continue
        try:
            d = s.recv(4096)
        except OSError:
            d = b""
        if d:
            try:
                s.send(d)
            except OSError:
                pass
        else:
            sel.unregister(s); s.close()
"""


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_limited(env, topo, node, nofile, extra=()):
    """Like AmbitEnv.start_agent, under prlimit (soft = hard: the agent
    raises its soft limit to the hard one)."""
    log_path = os.path.join(env.dir, f"agent-{node}.log")
    env.logs[node] = log_path
    cmd = ["ip", "netns", "exec", topo.node_ns(node), "prlimit", f"--nofile={nofile}:{nofile}",
           env.agent_bin, "--config", env.config_path, "--node", f"node-{node}",
           "--ca-dir", env.ca_dir, "--workers", str(env.workers), "--redirect", "auto",
           "--redirect-backend", env.backend, "--log-level", "info", *extra]
    p = subprocess.Popen(cmd, stdout=open(log_path, "a"), stderr=subprocess.STDOUT,
                         env=dict(os.environ, AMBIT_REDIRECT_MODE=env.mode))
    topo.procs.append(p)
    env.agents[node] = p
    return p


def try_open(ip, port, timeout=2.0):
    """(socket, None) once the echo greeting arrived, else (None, what happened)."""
    t0 = time.monotonic()
    try:
        s = socket.create_connection((ip, port), timeout=timeout)
        s.settimeout(timeout)
        hello = b""
        while not hello.endswith(b"\n"):
            d = s.recv(256)
            if not d:
                s.close()
                return None, f"EOF after {time.monotonic() - t0:.2f}s"
            hello += d
        return s, None
    except socket.timeout:
        return None, f"hang ({timeout}s timeout)"
    except OSError as e:
        return None, f"{e.__class__.__name__} after {time.monotonic() - t0:.2f}s"


def fd_limit(env, topo, client, server):
    pid = env.agents[1].pid
    base_fds = open_fds(pid)

    def fill():
        held, failure = [], None
        for _ in range(400):
            s, why = try_open(server.ip, 8080)
            if s is None:
                failure = why
                break
            held.append(s)
        more = []
        for _ in range(5):
            # At the limit an attempt may also be served when an fd frees up
            # for a moment (the config watcher's periodic re-read, the spare
            # fd used for shedding): refused at once or served, never a hang.
            s, why = try_open(server.ip, 8080)
            if s is not None:
                s.close()
            more.append(why or "served")
        return held, failure, more
    held, failure, more = in_netns(client.ns, fill)
    check(failure is not None and "hang" not in failure,
          f"fd limit: {len(held)} connections held (agent fds {base_fds} -> {open_fds(pid)} "
          f"of 256), then the next one failed cleanly: {failure}")
    check(all("hang" not in m for m in more),
          f"fd limit: 5 more attempts refused at once or served, none hangs: {more}")
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    in_netns(client.ns, lambda: [try_open(server.ip, 8080, 0.5) for _ in range(10)])
    time.sleep(max(0.0, 2.0 - (time.monotonic() - t0)))  # measuring CPU over a 2 s window
    busy = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
    check(busy < 0.25, f"fd limit: agent CPU {busy * 100:.1f}% of a core while at the limit")
    check(env.agents[1].poll() is None, "fd limit: agent still running")
    for s in held:
        s.close()
    wait_until(lambda: open_fds(pid) <= base_fds + 5, 5)
    oks = sum(exchange_ok(client.ns, server.ip) for _ in range(5))
    check(oks == 5, f"fd limit: after closing the held connections {oks}/5 new ones succeed "
          f"(agent fds {open_fds(pid)})")
    m = scrape(topo, 1)
    emfile = metric_sum(m, "ambit_accept_errors_total", 'reason="emfile"')
    shed = metric_sum(m, "ambit_accept_shed_total")
    check(emfile > 0, f"fd limit: ambit_accept_errors_total{{reason=\"emfile\"}} = {emfile:.0f}, "
          f"ambit_accept_shed_total = {shed:.0f}")
    warn = [l for l in env.log(1).splitlines()
            if "\twarn\t" in l and "accept on pod" in l and "Too many open files" in l]
    check(bool(warn), f"fd limit: warning logged ({len(warn)} line(s): {(warn or [''])[0][:150]})")


def idle_10k(env, topo, client, server, n):
    port = 8090
    p = topo.spawn(server.ns, [sys.executable, "-c", IDLE_ECHO, str(port)])
    topo.wait_line(p, "ready")
    pids = {k: env.agents[k].pid for k in (1, 2)}
    rss0 = {k: rss_kb(pid) for k, pid in pids.items()}

    def body():
        sel = selectors.DefaultSelector()
        socks, pending, started, est, failed = [], 0, 0, 0, 0
        t0 = time.monotonic()
        last_progress = t0
        while est + failed < n and time.monotonic() - last_progress < 15:
            while started < n and pending < 256:
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex((server.ip, port))
                sel.register(s, selectors.EVENT_READ)
                socks.append(s)
                pending += 1
                started += 1
            for key, _ in sel.select(timeout=1):
                s = key.fileobj
                sel.unregister(s)
                pending -= 1
                last_progress = time.monotonic()
                try:
                    ok = s.recv(1) == b"g"
                except OSError:
                    ok = False
                est, failed = est + ok, failed + (not ok)
        t_open = time.monotonic() - t0
        return socks, est, failed, t_open
    socks, est, failed, t_open = in_netns(client.ns, body)
    check(est == n, f"10k idle: {est}/{n} established end to end in {t_open:.1f}s "
          f"({est / max(t_open, 1e-9):.0f}/s), {failed} failed")
    time.sleep(1.0)  # let RSS settle after the burst (a measurement, not a wait for state)
    rss1 = {k: rss_kb(pid) for k, pid in pids.items()}
    per = {k: (rss1[k] - rss0[k]) / max(est, 1) for k in pids}
    print(f"     agent RSS client-side {rss0[1]} -> {rss1[1]} KB ({per[1]:.1f} KB/conn), "
          f"server-side {rss0[2]} -> {rss1[2]} KB ({per[2]:.1f} KB/conn), "
          f"both {per[1] + per[2]:.1f} KB/conn", flush=True)
    t0 = time.monotonic()
    for s in socks:
        s.setblocking(True)
        s.settimeout(5)
        try:
            s.send(b"x")
        except OSError:
            pass
    verified = 0
    for s in socks:
        try:
            verified += s.recv(1) == b"x"
        except OSError:
            pass
    check(verified == n, f"10k idle: {verified}/{n} verified with one byte each way "
          f"({time.monotonic() - t0:.1f}s)")
    fds_open = {k: open_fds(pid) for k, pid in pids.items()}
    for s in socks:
        s.close()
    drained = wait_until(lambda: all(open_fds(pid) < fds_open[k] - 0.95 * n
                                     for k, pid in pids.items()), 20, 0.2)
    check(drained, f"10k idle: all closed: agent fds {fds_open} -> "
          f"{ {k: open_fds(pid) for k, pid in pids.items()} }")
    check(all(env.agents[k].poll() is None for k in (1, 2)), "10k idle: both agents running")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--connections", type=int, default=10000)
    args = ap.parse_args()
    require_root()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children (echo server) inherit
    if hard < args.connections + 1000:
        print(f"FAIL RLIMIT_NOFILE hard limit {hard} is below {args.connections} + 1000")
        return 1
    with Topology(nodes=2, tag="l") as topo:
        env = AmbitEnv(topo, args.build)
        client = env.pod(1, "client", sa="sleep")
        server = env.pod(2, "server", sa="echo")
        run([env.ctl_bin, "ca", "init", env.ca_dir])
        env.write_config()
        start_limited(env, topo, 1, 256, ["--pool-max-streams", "1000"])
        env.start_agent(2)
        for node, name in ((1, "client"), (2, "server")):
            env.wait_log(node, f"capturing pod demo/{name}", timeout=15)
        try:
            topo.echo_server(server.ns, "0.0.0.0", 8080, "server")
            check(exchange_ok(client.ns, server.ip), "baseline: client -> server through two agents")
            t0 = time.monotonic()
            try:
                fd_limit(env, topo, client, server)
            except Exception as e:  # noqa: BLE001
                check(False, f"fd limit: raised {e.__class__.__name__}: {e}")
            print(f"     (fd limit: {time.monotonic() - t0:.1f}s)", flush=True)
            # Client-side agent again without the low limit.
            env.agents[1].send_signal(signal.SIGTERM)
            env.agents[1].wait(10)
            mark = len(env.log(1))
            env.start_agent(1)
            env.wait_log(1, "agent\tready", after=mark, timeout=15)
            t0 = time.monotonic()
            try:
                idle_10k(env, topo, client, server, args.connections)
            except Exception as e:  # noqa: BLE001
                check(False, f"10k idle: raised {e.__class__.__name__}: {e}")
            print(f"     (10k idle: {time.monotonic() - t0:.1f}s)", flush=True)
        finally:
            if FAILURES:
                for node in (1, 2):
                    print(f"---- agent {node} log ----\n" + env.log(node)[-5000:])
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
