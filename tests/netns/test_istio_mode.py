#!/usr/bin/env python3
"""ambit-agent in Istio mode (issue #7 acceptance): no --config; workloads,
services and policies from a fake istiod over TLS delta xDS, pods from a fake
istio-cni over ZDS, certificates from a fake Istio CA with impersonation.

Two nodes; client pods and one server on node 1, servers on node 2, a
service VIP over the servers; the test installs in-pod rules itself
(`ambitctl redirect install`) as istio-cni would. Phases: readiness (500
until the ZDS snapshot and the first xDS responses), cross-node HBONE and VIP
balancing, CA impersonation, a DENY policy, workload removal, a partly
invalid push (NACK), xDS reconnect with initial_resource_versions.
Diagnostics: `--zds-uids xds` announces pods over ZDS with their xDS uid; the
agents inherit this process's environment (e.g. GRPC_VERBOSITY, GRPC_TRACE).
"""
import argparse
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, require_root, tcp_exchange  # noqa: E402
from istio_env import CLUSTER, TOKEN, IstioEnv, b64, policy, workload  # noqa: E402

FAILURES = []
SVC = "demo/echo.demo.svc.cluster.local"
VIP = "10.96.0.10"


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)
    return cond


def exchange(pod, ip, port=8080, timeout=3):
    """The echo server's greeting line, or '' / the error class when refused."""
    try:
        line = tcp_exchange(pod.ns, ip, port, b"hi\n", timeout=timeout)
        return line.splitlines()[0].strip() if line else ""
    except OSError as e:
        return f"<{e.__class__.__name__}>"


def wait_until(fn, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last[0]:
            return last
        time.sleep(interval)  # poll interval of a wait-with-timeout
    return last


def vip_tags(client, n):
    tags = {}
    for _ in range(n):
        line = exchange(client, VIP, 80)
        tag = line.split("tag=")[1].split()[0] if "tag=" in line else line or "<empty>"
        tags[tag] = tags.get(tag, 0) + 1
    return tags


def phase_readiness(env, f):
    for node in (1, 2):
        env.wait_log(node, "readiness on", timeout=15)
        text = env.log(node)
        check("mode=istio (xDS + ZDS + Istio CA) args='proxy ztunnel'" in text,
              f"node {node}: started with the chart's `proxy ztunnel` args, in Istio mode")
        check("DNS proxy on localhost:15053" in text, f"node {node}: DNS proxy on by default")
        st, body = env.wait_ready(node, want=500, contains="zds", timeout=10)
        check(st == 500 and "xds" in body and "zds" in body,
              f"node {node}: readiness 500 before xDS and ZDS ({body.strip()})")
    for node in (1, 2):
        acks = env.announce(node)
        check(set(acks) == {"ack"}, f"node {node}: ZDS Adds and SnapshotSent acked ({acks})")
    for node in (1, 2):
        st, body = env.wait_ready(node, want=500, timeout=10)
        env.wait_log(node, "node agent snapshot received", timeout=10)
        st, body = env.ready(node)
        check(st == 500 and "xds" in body and "zds" not in body,
              f"node {node}: after the ZDS snapshot still 500 for xDS only ({body.strip()})")
    f("xds_restart")
    for node in (1, 2):
        st, body = env.wait_ready(node, want=200, timeout=40)
        check(st == 200, f"node {node}: readiness 200 after the first xDS responses")
    r = f("xds_status")
    hdrs = r["stream_headers"]
    check(len(hdrs) >= 2 and all(h.get("authorization") == f"Bearer {TOKEN}" and
                                 h.get("clusterid") == CLUSTER for h in hdrs),
          f"xDS streams carry the bearer token and clusterid ({len(hdrs)} streams)")
    init = f("xds_requests", initial=True, type="address")["requests"]
    ids = sorted({r["node_id"] for r in init})
    check(ids == [f"ztunnel~10.44.0.{n}~ztunnel-{n}.istio-system~istio-system.svc.cluster.local"
                  for n in (1, 2)], f"xDS node ids as ztunnel's ({ids})")


def phase_traffic(env, f, pods):
    client, server_a = pods["client"], pods["server-a"]
    line = exchange(client, server_a.ip)
    check(line.startswith(f"peer={client.ip}:") and "tag=server-a" in line,
          f"cross-node through HBONE keeps the client IP ({line})")
    env.wait_log(2, r"connection complete .*src\.identity=spiffe://cluster\.local/ns/demo/sa/sleep"
                    r".*direction=inbound", regex=True)
    env.wait_log(1, rf"connection complete .*dst\.hbone_addr={re.escape(server_a.ip)}:8080 "
                    r".*direction=outbound", regex=True)
    check(True, "destination agent logged the client's SPIFFE identity; source agent used HBONE")
    tags = vip_tags(client, 45)
    check(set(tags) == {"server-a", "server-b", "local"} and min(tags.values()) >= 5,
          f"VIP {VIP}:80 balanced over the three endpoints ({tags})")


def phase_ca(env, f, pods):
    want = {p.identity for p in pods.values()}
    reqs = f("ca_requests")["requests"]
    got = {r["impersonated_identity"] for r in reqs}
    check(got == want, f"CA impersonation requests for exactly the pods' identities "
                       f"({sorted(got)} vs {sorted(want)})")
    check(all(r["uri_sans"] == [r["impersonated_identity"]] for r in reqs),
          f"each CSR asks for the impersonated identity ({len(reqs)} requests)")
    check(all(r["authorization"] == f"Bearer {TOKEN}" and r["clusterid"] == CLUSTER for r in reqs),
          "CA requests carry the bearer token and clusterid")


def cert_ids(env, node):
    return {c.get("identity") for c in env.config_dump(node).get("certificates", [])}


def phase_prefetch(env, f, pods):
    """A workload of node 1 announced over xDS before its pod: node 1 fetches its
    certificate ahead (ISTIO-COMPAT §6.2), node 2 does not, and it is forgotten
    when the workload goes away."""
    warm = "spiffe://cluster.local/ns/demo/sa/warmup"
    w = workload("warm", "demo", "warmup", "10.44.1.99", "node-1")
    wait_ack(f, f("set_workload", workload=w)["nonce"])
    got = wait_until(lambda: (warm in cert_ids(env, 1), None), 10)
    check(got[0] and any(r["impersonated_identity"] == warm for r in f("ca_requests")["requests"]),
          "certificate of a node-local xDS workload prefetched before its pod exists")
    check(warm not in cert_ids(env, 2), "the other node's agent does not prefetch it")
    wait_ack(f, f("remove", type="address", name=w["uid"])["nonce"])
    gone = wait_until(lambda: (warm not in cert_ids(env, 1), None), 10)
    check(gone[0], "its certificate is forgotten when the workload is removed")


def wait_ack(f, nonce, count=2):
    if not nonce:
        raise AssertionError("the push reached no subscribed xDS stream (empty nonce)")
    return f("xds_wait", nonce=nonce, count=count, timeout_ms=10000)["requests"]


def phase_policy(env, f, pods):
    client, client2, server_a = pods["client"], pods["client2"], pods["server-a"]
    pol = policy("deny-sleep", "demo", action="DENY", scope="NAMESPACE",
                 principals=["cluster.local/ns/demo/sa/sleep"])
    acks = wait_ack(f, f("set_policy", policy=pol)["nonce"])
    check(all(not a["nack"] for a in acks), f"DENY policy ACKed by both agents ({len(acks)})")
    denied = wait_until(lambda: (not exchange(client, server_a.ip).startswith("peer="), None), 10)
    check(denied[0], "DENY for the client's principal: new connections from client fail")
    line = exchange(client2, server_a.ip)
    check(line.startswith(f"peer={client2.ip}:"), f"another client is still allowed ({line})")
    env.wait_log(2, "deny-sleep", timeout=10)
    check(True, "the destination agent logged the deciding policy")
    wait_ack(f, f("remove", type="authorization", name="demo/deny-sleep")["nonce"])
    back = wait_until(lambda: (exchange(client, server_a.ip).startswith("peer="), None), 10)
    check(back[0], "removing the policy lets the client connect again")


def phase_remove(env, f, pods):
    client, server_b = pods["client"], pods["server-b"]
    wait_ack(f, f("remove", type="address", name=server_b.uid)["nonce"])
    gone = wait_until(lambda: (server_b.uid not in str(env.config_dump(1)), None), 10)
    check(gone[0], "removed workload left agent 1's /config_dump")
    tags = vip_tags(client, 30)
    check("server-b" not in tags and set(tags) == {"server-a", "local"},
          f"VIP no longer picks the removed endpoint ({tags})")
    mark = len(env.log(1))
    exchange(client, server_b.ip)
    text = env.wait_log(1, rf"connection complete .*{re.escape(server_b.ip)}:8080", regex=True,
                        after=mark)[mark:]
    check(f"dst.hbone_addr={server_b.ip}:8080" not in text,
          "direct to the removed workload's IP: no HBONE to it any more (not a mesh workload)")


def phase_nack(env, f, pods):
    client, late = pods["client"], pods["late"]
    broken = workload("broken", "demo", "echo", None, "node-2",
                      raw_addresses=[b64(b"\x0a\x2c\x02\x63\x01")])
    legacy = workload("legacy", "demo", "echo", "10.44.2.99", "node-2", protocol="LEGACY_ISTIO_MTLS")
    r = f("push_raw", type="address", resources=[
        {"name": late.uid, "workload": late.workload},
        {"name": broken["uid"], "workload": broken},
        {"name": legacy["uid"], "workload": legacy}])
    acks = wait_ack(f, r["nonce"])
    errs = [a["error"] for a in acks]
    check(len(acks) == 2 and all(a["nack"] for a in acks) and
          all(broken["uid"] in e and legacy["uid"] in e and late.uid not in e for e in errs),
          f"mixed push NACKed naming only the invalid resources ({errs})")
    f("set_workload", workload=late.workload)  # keep it stored for reconnects
    line = exchange(client, late.ip)
    check(line.startswith(f"peer={client.ip}:") and "tag=late" in line,
          f"the valid resource of the NACKed push serves traffic ({line})")
    env.wait_log(1, rf"connection complete .*dst\.hbone_addr={re.escape(late.ip)}:8080", regex=True)
    check(True, "... through HBONE (the client agent knows it as a mesh workload)")


def phase_reconnect(env, f, pods):
    client, server_a = pods["client"], pods["server-a"]
    before = f("xds_status")["streams_accepted"]
    f("xds_stop")
    line = exchange(client, server_a.ip)
    check(line.startswith(f"peer={client.ip}:"), f"traffic flows while istiod is down ({line})")
    f("xds_restart")
    init = f("xds_wait", initial=True, type="address", min_stream=before + 1, count=2,
             timeout_ms=30000)["requests"]
    want = {p.uid for name, p in pods.items() if name != "server-b"} | {SVC}
    for r in init:
        held = set(r["initial_resource_versions"])
        check(want <= held and pods["server-b"].uid not in held,
              f"reconnect of {r['node_id'].split('~')[2]}: initial_resource_versions name what it "
              f"holds ({len(held)} names; missing {sorted(want - held)})")
    line = exchange(client, server_a.ip)
    check(line.startswith(f"peer={client.ip}:"), f"traffic after the xDS reconnect ({line})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--zds-uids", choices=["kube", "xds"], default="kube",
                    help="ZDS uids: Kubernetes pod UIDs (as istio-cni) or the xDS uids (diagnostic)")
    args = ap.parse_args()
    require_root()
    with Topology(nodes=2, tag="i") as topo:
        env = IstioEnv(topo, args.build, zds_uids=args.zds_uids)
        f = env.fake
        svc = {SVC: {80: 8080}}
        pods = {
            "client": env.pod(1, "client", sa="sleep"),
            "client2": env.pod(1, "client2", sa="other"),
            "local": env.pod(1, "local", sa="echo", services=svc),
            "server-a": env.pod(2, "server-a", sa="echo", services=svc),
            "server-b": env.pod(2, "server-b", sa="echo", services=svc),
            "late": env.pod(2, "late", sa="echo", push=False),  # xDS-announced later
        }
        env.service("echo", vip=VIP, ports={80: 8080})
        try:
            for name in ("local", "server-a", "server-b", "late"):
                topo.echo_server(pods[name].ns, "0.0.0.0", 8080, name)
            env.push_all()
            f("xds_stop")  # readiness must wait for the first xDS responses
            env.start_agents()
            phase_readiness(env, f)
            for phase in (phase_traffic, phase_ca, phase_prefetch, phase_policy, phase_remove, phase_nack,
                          phase_reconnect):
                try:  # a failed phase is reported; the next ones still run
                    phase(env, f, pods)
                except Exception as e:
                    check(False, f"{phase.__name__}: {e.__class__.__name__}: {str(e)[:600]}")
            for node in (1, 2):
                check(env.agents[node].poll() is None, f"agent {node} still running")
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
