#!/usr/bin/env python3
"""ZDS faults against ambit-agent in Istio mode (issue #7 acceptance):
protocol errors from the node agent (Add without fd, Add with two fds, Keep
after the snapshot, a second SnapshotSent) make the agent close the
connection, count the error, stay up and reconnect; a failing first CA call
is retried; a pod missing from the
snapshot after a reconnect is torn down; DelWorkload removes a pod.
One node; pods a (client) and b, c (echo servers).
`--zds-uids xds` announces pods over ZDS with their xDS uid (a diagnostic aid).
"""
import argparse
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, in_netns, require_root, tcp_exchange  # noqa: E402
from istio_env import IstioEnv  # noqa: E402

FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)
    return cond


def metric(env, name):
    status, text = env.http(1, "/metrics", port=15020)
    if status != 200:
        return None
    total = 0.0
    found = False
    for m in re.finditer(rf"^{name}(?:_total)?(?:{{[^}}]*}})? (\S+)$", text, re.M):
        total += float(m.group(1))
        found = True
    return total if found else None


def listener_accepts(env, pod, port=15008):
    """True if pod.ip:port accepts a TCP connection from the node netns."""
    def body():
        try:
            socket.create_connection((pod.ip, port), timeout=1).close()
            return True
        except OSError:
            return False
    return in_netns(env.topo.node_ns(pod.node), body)


def wait_for(fn, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(0.1)  # poll interval of a wait-with-timeout
    return fn()


def resnapshot(env, pods):
    """Accept the agent's reconnection and send a full snapshot of `pods`."""
    return env.announce(1, pods=pods)


def protocol_error(env, f, pods, what, send):
    before = metric(env, "ambit_zds_protocol_errors") or 0
    mark = len(env.log(1))
    r = send()
    if r.get("result") == "nack":  # the error may be NACKed before the agent hangs up
        check("protocol error" in r.get("ack_error", ""), f"{what}: NACK names a protocol error ({r})")
        r = f("zds_expect_closed", node="node-1", timeout_ms=5000)
        check(r.get("closed") is True, f"{what}: ... then the agent closes the connection")
    else:
        check(r.get("result") == "closed", f"{what}: the agent closes the connection ({r})")
    after = wait_for(lambda: (metric(env, "ambit_zds_protocol_errors") or 0) >= before + 1, 5)
    check(after, f"{what}: ambit_zds_protocol_errors counted "
                 f"({before} -> {metric(env, 'ambit_zds_protocol_errors')})")
    check(env.agents[1].poll() is None, f"{what}: the agent stays up")
    acks = resnapshot(env, pods)
    check(set(acks) == {"ack"}, f"{what}: the agent reconnects and takes a new snapshot ({acks})")
    return mark


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--zds-uids", choices=["kube", "xds"], default="kube",
                    help="ZDS uids: Kubernetes pod UIDs (as istio-cni) or the xDS uids (diagnostic)")
    args = ap.parse_args()
    require_root()
    with Topology(nodes=1, tag="z") as topo:
        env = IstioEnv(topo, args.build, zds_uids=args.zds_uids)
        f = env.fake
        a = env.pod(1, "a", sa="sleep")
        b = env.pod(1, "b", sa="echo")
        c = env.pod(1, "c", sa="echo")
        try:
            for p in (b, c):
                topo.echo_server(p.ns, "0.0.0.0", 8080, p.name)
            env.push_all()
            f("ca_fail", n=1, code=14, message="istiod is warming up")  # first CSR fails
            env.start_agents()
            acks = env.announce(1)
            check(set(acks) == {"ack"}, f"initial snapshot acked ({acks})")
            env.wait_ready(1, timeout=30)
            reqs = f("ca_requests")["requests"]
            ids = [r["impersonated_identity"] for r in reqs]
            check(len(reqs) == 3 and set(ids) == {a.identity, b.identity},
                  f"a failed CA call is retried: ready with {len(reqs)} CA calls for {sorted(set(ids))}")
            try:
                line = tcp_exchange(a.ns, b.ip, 8080, b"hi\n", timeout=5).split("\n")[0]
            except OSError as e:
                line = f"<{e.__class__.__name__}>"
            check(line.startswith(f"peer={a.ip}:"), f"a -> b through the agent ({line})")
            check(all(listener_accepts(env, p) for p in (a, b, c)), "15008 open in every pod")
            pods = [a, b, c]

            protocol_error(env, f, pods, "Add without an fd", lambda: env.zds_add(c, fds=0))
            protocol_error(env, f, pods, "Add with two fds", lambda: env.zds_add(c, fds=2))
            protocol_error(env, f, pods, "Keep after the snapshot",
                           lambda: f("zds_keep", node="node-1", uid=b.kube_uid))
            protocol_error(env, f, pods, "second SnapshotSent",
                           lambda: f("zds_snapshot", node="node-1"))
            check(metric(env, "ambit_zds_connects") is not None and
                  metric(env, "ambit_zds_connects") >= 5,
                  f"ambit_zds_connects counts the reconnections ({metric(env, 'ambit_zds_connects')})")

            # Reconnect with a snapshot that no longer has c: c is torn down.
            f("zds_drop", node="node-1")
            acks = resnapshot(env, [a, b])
            check(set(acks) == {"ack"}, f"snapshot without c acked ({acks})")
            check(wait_for(lambda: not listener_accepts(env, c), 10),
                  "pod missing from the new snapshot: its 15008 stops accepting")
            env.wait_log(1, f"stopped capturing pod demo/c ({c.kube_uid})", timeout=5)
            check(listener_accepts(env, b), "pods in the snapshot keep their listeners")

            # DelWorkload removes b.
            r = f("zds_del", node="node-1", uid=b.kube_uid)
            check(r.get("result") == "ack", f"DelWorkload acked ({r})")
            check(wait_for(lambda: not listener_accepts(env, b), 10),
                  "DelWorkload: the pod's 15008 stops accepting")
            env.wait_log(1, f"stopped capturing pod demo/b ({b.kube_uid})", timeout=5)
            check(listener_accepts(env, a), "other pods keep running")
            check(env.agents[1].poll() is None, "agent still running")
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
