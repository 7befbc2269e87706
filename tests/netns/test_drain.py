#!/usr/bin/env python3
"""Graceful drain of real agents (ISSUE: reliability).

SIGTERM: the agent stops accepting (new connections fail, readiness turns
500), sends GOAWAY so peers stop using their pooled connections, lets open
connections finish, and exits 0 once the last one closed. POST
/quitquitquit: the same, and connections still open at the deadline are
closed: the agent exits 0 within deadline + 1 s.
"""
import argparse
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, in_netns, open_stream, require_root, still_flows, tcp_exchange  # noqa: E402
from ambit_env import AmbitEnv  # noqa: E402

FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def http(ns, url, method="GET"):
    def body():
        try:
            r = urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=3)
            return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return None
    return in_netns(ns, body)


def wait_exit(p, timeout):
    t0 = time.monotonic()
    try:
        rc = p.wait(timeout=timeout)
    except Exception:
        return None, timeout
    return rc, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    require_root()
    with Topology(nodes=2, tag="d") as topo:
        env = AmbitEnv(topo, args.build)
        client = env.pod(1, "client", sa="sleep")
        server = env.pod(2, "server", sa="echo")
        env.start(extra_args=["--termination-deadline", "2s"])
        try:
            topo.echo_server(server.ns, "0.0.0.0", 8080, "server")
            check(http(topo.node_ns(2), "http://127.0.0.1:15021/healthz/ready") == 200,
                  "readiness 200 before the drain")
            keep = open_stream(client.ns, server.ip, 8080)
            check(still_flows(keep), "connection open and flowing")
            env.agents[2].send_signal(signal.SIGTERM)
            env.wait_log(2, "draining")
            check(http(topo.node_ns(2), "http://127.0.0.1:15021/healthz/ready") in (500, None),
                  "readiness not 200 while draining")
            try:
                r = tcp_exchange(client.ns, server.ip, 8080, b"x\n", timeout=3)
                check("tag=" not in r, f"new connection refused while draining (got {r!r})")
            except OSError as e:
                check(True, f"new connection refused while draining ({e.__class__.__name__})")
            check(still_flows(keep), "the open connection keeps flowing during the drain")
            check(env.agents[2].poll() is None, "agent waits while a connection is open")
            keep.close()
            rc, dt = wait_exit(env.agents[2], 5)
            check(rc == 0 and dt < 1.5, f"agent exited {rc} {dt:.2f}s after the last connection closed")
            check("drained, exiting" in env.log(2), "agent logged a clean exit")

            # quitquitquit with a connection that never closes: deadline applies.
            mark = len(env.log(2))
            env.start_agent(2, ["--termination-deadline", "2s"])
            env.wait_log(2, "agent\tready", after=mark)
            stuck = open_stream(client.ns, server.ip, 8080)
            check(still_flows(stuck), "second agent: connection open")
            check(http(topo.node_ns(1), "http://127.0.0.1:15000/quitquitquit", "GET") == 405,
                  "GET /quitquitquit is 405")
            t0 = time.monotonic()
            check(http(topo.node_ns(1), "http://127.0.0.1:15000/quitquitquit", "POST") == 200,
                  "POST /quitquitquit is 200")
            rc, _ = wait_exit(env.agents[1], 6)
            dt = time.monotonic() - t0
            check(rc == 0 and 1.5 <= dt <= 3.5,
                  f"agent exited {rc} after the 2 s deadline with a connection still open ({dt:.2f}s)")
            stuck.close()
        finally:
            if FAILURES:
                for n in (1, 2):
                    print(f"---- agent {n} log ----\n" + env.log(n)[-4000:])
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
