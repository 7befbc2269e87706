#!/usr/bin/env python3
"""The DNS proxy on 15053 (issue 21 item 1), on real namespaces.

One node, one captured pod (namespace demo) whose resolv.conf names a
"kube-dns" 10.96.0.10 that exists nowhere: istio-cni's DNS capture rules
(installed by --redirect auto) send its UDP and TCP port 53 to the agent's
15053 inside the pod. The agent forwards what the mesh does not know to the
nameserver of its own resolv.conf (--dns-resolv-conf): dns_upstream.py on the
node. Checked with dig and the C library resolver (getent):
  - mesh names (full, short `httpbin`, `other.other`, a ServiceEntry host, a
    wildcard host) answer the VIP, authoritative, from the agent alone;
  - AAAA of a v4-only service: NOERROR with no record;
  - external names are relayed (A, NXDOMAIN), and a > 4 KiB answer arrives
    by TCP fallback: UDP truncated (TC), dig retries over TCP via the proxy;
  - malformed queries: FORMERR, or dropped when shorter than a header;
  - the DNS metrics count exactly;
  - a query in flight while the agent is replaced is answered by the new one,
    and none of the queries after it is lost.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, in_netns, require_root  # noqa: E402
from ambit_env import AmbitEnv  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FAILURES = []
KUBE_DNS = "10.96.0.10"
UPSTREAM = "10.44.1.1"  # the node's address on its pod bridge


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def dig(topo, pod, *args):
    r = topo.ns_exec(pod.ns, ["dig", f"@{KUBE_DNS}", "+time=2", "+tries=2", *args], check=False)
    return r.stdout


def status_of(out):
    m = re.search(r"status: (\w+)", out)
    return m.group(1) if m else None


def answers(out):
    """(name, type, value) of the ANSWER section."""
    rows, inside = [], False
    for line in out.splitlines():
        if line.startswith(";; ANSWER SECTION"):
            inside = True
        elif inside and (not line.strip() or line.startswith(";;")):
            inside = False
        elif inside:
            f = line.split()
            rows.append((f[0], f[3], f[4]))
    return rows


def getent(topo, pod, name):
    r = topo.ns_exec(pod.ns, ["getent", "ahostsv4", name], check=False)
    return r.stdout.split()[0] if r.returncode == 0 and r.stdout else f"exit {r.returncode}"


def scrape(topo, port=15020):
    text = in_netns(topo.node_ns(1),
                    lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3).read().decode())
    out = {}
    for line in text.splitlines():
        if line.startswith("istio_dns_") or line.startswith("ambit_dns_"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def metric(m, name, **labels):
    """Sum of the series of `name` whose labels include `labels`."""
    total = 0.0
    for key, v in m.items():
        if not key.startswith(name + "{") and key != name:
            continue
        if all(f'{k}="{val}"' in key for k, val in labels.items()):
            total += v
    return total


def raw_udp(topo, pod, payload, timeout=1.0):
    def body():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        s.sendto(payload, (KUBE_DNS, 53))
        try:
            return s.recv(65535)
        except socket.timeout:
            return None
        finally:
            s.close()
    return in_netns(pod.ns, body)


def upstream_log(path):
    with open(path) as f:
        return f.read().splitlines()


def mesh_checks(topo, client):
    out = dig(topo, client, "httpbin.demo.svc.cluster.local", "A")
    check(answers(out) == [("httpbin.demo.svc.cluster.local.", "A", "10.96.0.20")] and " aa" in out,
          f"dig full name: the service VIP, authoritative ({answers(out)})")
    out = dig(topo, client, "httpbin", "A")
    check(answers(out) == [("httpbin.", "A", "10.96.0.20")], f"dig short name 'httpbin' ({answers(out)})")
    out = dig(topo, client, "other.other", "A")
    check(answers(out) == [("other.other.", "A", "10.96.0.21")], f"dig 'other.other' ({answers(out)})")
    out = dig(topo, client, "httpbin.demo.svc.cluster.local", "AAAA")
    check(status_of(out) == "NOERROR" and answers(out) == [],
          f"AAAA of a v4-only service: NOERROR, no record ({status_of(out)}, {answers(out)})")
    for name, want in (("httpbin", "10.96.0.20"), ("httpbin.demo", "10.96.0.20"),
                       ("httpbin.demo.svc.cluster.local", "10.96.0.20"), ("other.other", "10.96.0.21"),
                       ("api.external.com", "240.240.0.1"), ("x.wild.example", "240.240.0.2")):
        got = getent(topo, client, name)
        check(got == want, f"getent ahostsv4 {name} = {want} (got {got})")


def external_checks(topo, client, uplog):
    out = dig(topo, client, "ext.example.com", "A")
    check(answers(out) == [("ext.example.com.", "A", "192.0.2.10")] and " aa" in out,
          f"dig external name relayed from upstream ({answers(out)})")
    got = getent(topo, client, "ext.example.com")
    check(got == "192.0.2.10", f"getent ahostsv4 ext.example.com through the upstream ({got})")
    out = dig(topo, client, "nope.example.com", "A")
    check(status_of(out) == "NXDOMAIN", f"unknown name: NXDOMAIN relayed ({status_of(out)})")
    got = getent(topo, client, "nope.example.com")
    check(got == "exit 2", f"getent of an unknown name fails with 'not found' ({got})")
    before = len(upstream_log(uplog))
    out = dig(topo, client, "big.example.com", "A")
    n = len(answers(out))
    check("Truncated, retrying in TCP mode" in out and n == 300,
          f"> 4 KiB answer: UDP truncated, dig retried over TCP through the proxy ({n} records, "
          f"{'TC seen' if 'Truncated' in out else 'no TC'})")
    seen = upstream_log(uplog)[before:]
    check(seen == ["udp big.example.com 1", "tcp big.example.com 1"],
          f"upstream saw the UDP query, then the TCP retry ({seen})")


def malformed_checks(topo, client):
    # Header only (QDCOUNT 0): FORMERR with the id echoed.
    reply = raw_udp(topo, client, bytes.fromhex("abcd01000000000000000000"))
    check(reply is not None and reply[:2] == b"\xab\xcd" and reply[3] & 0x0f == 1,
          f"query without a question: FORMERR ({reply.hex() if reply else None})")
    # A label running past the end.
    reply = raw_udp(topo, client, bytes.fromhex("1234010000010000000000003f61"))
    check(reply is not None and reply[3] & 0x0f == 1, "truncated question: FORMERR")
    reply = raw_udp(topo, client, b"\x01\x02\x03", timeout=0.5)
    check(reply is None, "3 bytes (no header): dropped, no answer")


def metric_checks(topo, client):
    m0 = scrape(topo)
    for _ in range(3):
        dig(topo, client, "httpbin.demo.svc.cluster.local", "A")
    for _ in range(2):
        dig(topo, client, "ext.example.com", "A")
    dig(topo, client, "nope.example.com", "A")
    dig(topo, client, "+tcp", "httpbin.demo.svc.cluster.local", "AAAA")
    m1 = scrape(topo)

    def d(name, **labels):
        return metric(m1, name, **labels) - metric(m0, name, **labels)
    src = {"source_canonical_service": "client", "source_canonical_revision": "v1"}
    got = (d("istio_dns_requests_total", request_query_type="a", request_protocol="udp", **src),
           d("istio_dns_requests_total", request_query_type="aaaa", request_protocol="tcp", **src),
           d("istio_dns_upstream_requests_total", request_query_type="a", **src),
           d("istio_dns_upstream_failures_total"),
           d("istio_dns_upstream_request_duration_seconds_count", request_query_type="a", **src))
    check(got == (6, 1, 3, 0, 3), f"metrics: requests a/udp 6, aaaa/tcp 1, upstream 3, failures 0, "
          f"duration count 3 (got {got})")
    rej = metric(m1, "ambit_dns_rejected_requests_total")
    check(rej == 3, f"ambit_dns_rejected_requests_total counted the 3 malformed messages ({rej})")


def start_second(env, topo, resolv):
    log_path = os.path.join(env.dir, "agent-1-gen1.log")
    cmd = ["ip", "netns", "exec", topo.node_ns(1), env.agent_bin, "--config", env.config_path,
           "--node", "node-1", "--ca-dir", env.ca_dir, "--workers", "2", "--redirect", "auto",
           "--dns-resolv-conf", resolv, "--termination-deadline", "2s", "--log-level", "info",
           "--admin-addr", "127.0.0.1:15100", "--stats-addr", "0.0.0.0:15120",
           "--readiness-addr", "0.0.0.0:15121"]
    p = subprocess.Popen(cmd, stdout=open(log_path, "a"), stderr=subprocess.STDOUT)
    topo.procs.append(p)
    return p, log_path


def restart_checks(env, topo, client, uplog, resolv):
    """A forwarded query in flight at the old agent when it is replaced."""
    old = env.agents[1]
    before = len(upstream_log(uplog))
    q = subprocess.Popen(["ip", "netns", "exec", client.ns, "dig", f"@{KUBE_DNS}", "+time=1",
                          "+tries=6", "slow.example.com", "A"], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 3
    while not any("slow.example.com" in l for l in upstream_log(uplog)[before:]):
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)  # poll interval of a wait-with-timeout
    check(any("slow.example.com" in l for l in upstream_log(uplog)[before:]),
          "the slow query reached the upstream through the old agent")
    new, log_path = start_second(env, topo, resolv)
    env.agents[1], env.logs[1] = new, log_path
    env.wait_log(1, "capturing pod demo/client", timeout=15)
    old.send_signal(signal.SIGTERM)
    try:
        rc = old.wait(timeout=10)
    except subprocess.TimeoutExpired:
        rc = None
    check(rc == 0, f"old agent drained and exited ({rc})")
    out, _ = q.communicate(timeout=15)
    check(answers(out) == [("slow.example.com.", "A", "192.0.2.20")],
          f"the query in flight during the restart was answered ({answers(out)})")
    lost = 0
    for i in range(20):
        out = dig(topo, client, "ext.example.com", "A")
        if answers(out) != [("ext.example.com.", "A", "192.0.2.10")]:
            lost += 1
    check(lost == 0, f"20 queries after the restart: {lost} lost")
    m = scrape(topo, 15120)
    got = metric(m, "istio_dns_upstream_requests_total", request_query_type="a")
    check(got >= 20, f"the new agent forwarded them ({got} upstream requests)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    require_root()
    with Topology(nodes=1, tag="d") as topo:
        env = AmbitEnv(topo, args.build)
        client = env.pod(1, "client", sa="sleep")
        env.service("httpbin", vip="10.96.0.20", ports={80: 8080}, extra={"ipFamilies": "IPv4"})
        env.service("other", vip="10.96.0.21", ports={80: 8080}, ns="other")
        env.services.append({"name": "api", "namespace": "demo", "hostname": "api.external.com",
                             "vips": ["/240.240.0.1"], "ports": {"443": 443}})
        env.services.append({"name": "wild", "namespace": "demo", "hostname": "*.wild.example",
                             "vips": ["/240.240.0.2"], "ports": {"80": 80}})
        etc = f"/etc/netns/{client.ns}"
        try:
            uplog = os.path.join(env.dir, "upstream.log")
            open(uplog, "w").close()
            up = topo.spawn(topo.node_ns(1), [sys.executable, os.path.join(HERE, "dns_upstream.py"),
                                              UPSTREAM, "53", uplog])
            topo.wait_line(up, "ready")
            resolv = os.path.join(env.dir, "agent-resolv.conf")
            with open(resolv, "w") as f:
                f.write(f"# the agent's own resolv.conf\nnameserver {UPSTREAM}\noptions timeout:1 attempts:2\n")
            os.makedirs(etc, exist_ok=True)  # `ip netns exec` bind-mounts it over /etc/resolv.conf
            with open(os.path.join(etc, "resolv.conf"), "w") as f:
                f.write(f"search demo.svc.cluster.local svc.cluster.local cluster.local\n"
                        f"nameserver {KUBE_DNS}\noptions ndots:5 timeout:2 attempts:2\n")
            env.start(extra_args=["--dns-resolv-conf", resolv, "--termination-deadline", "2s"])
            env.wait_log(1, "DNS proxy on localhost:15053", timeout=5)
            mesh_checks(topo, client)
            external_checks(topo, client, uplog)
            malformed_checks(topo, client)
            metric_checks(topo, client)
            restart_checks(env, topo, client, uplog, resolv)
        finally:
            shutil.rmtree(etc, ignore_errors=True)
            if FAILURES:
                print("---- agent log ----\n" + env.log(1)[-5000:])
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
