#!/usr/bin/env python3
"""ztunnel's environment in Istio mode (issue 21 item 8), against the fake
istiod: two agents started without --workers, each with a different part of
ztunnel's environment.

  node 1: ZTUNNEL_CPU_LIMIT=12 (→ 3 workers), no AUTH_TOKEN and no projected
          token file (→ no authorization header), KEEPALIVE_TIME=7s,
          KEEPALIVE_INTERVAL=3s, KEEPALIVE_RETRIES=4, NETWORK, TRUST_DOMAIN
  node 2: ZTUNNEL_RESOURCE_CPU_LIMIT=2 + ZTUNNEL_WORKER_THREADS=50% (→ 1),
          ENABLE_ORIG_SRC=false, IPV6_ENABLED=false,
          ISTIO_META_ISTIO_VERSION=1.30.2, XDS_ON_DEMAND=true with
          ISTIO_META_DNS_CAPTURE=false

Checks: worker counts, bearer headers on xDS and CA, istio_build labels,
[::] vs 0.0.0.0 in-pod listeners, the client's address at the server with
and without ENABLE_ORIG_SRC, keepalive timers of proxied sockets (ss),
/debug/pprof answers, CRL_PATH on node 1 (a CRL written after start
revokes a node-2 client and a node-2 server: new handshakes either way are
refused and counted in istio_crl_policy_rejections_total{reporter}), and
start-up refusals (PROXY_MODE=dedicated / bogus,
XDS_ON_DEMAND with the DNS proxy on, a non-bool IPV6_ENABLED).
"""
import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, open_stream, require_root, tcp_exchange  # noqa: E402
from istio_env import IstioEnv  # noqa: E402

FAILURES = []

NODE_ENV = {
    1: {"ZTUNNEL_CPU_LIMIT": "12", "KEEPALIVE_TIME": "7s", "KEEPALIVE_INTERVAL": "3s",
        "KEEPALIVE_RETRIES": "4", "NETWORK": "net-env", "TRUST_DOMAIN": "td.example",
        "CRL_PATH": "<dir>/crl.pem"},
    2: {"ZTUNNEL_RESOURCE_CPU_LIMIT": "2", "ZTUNNEL_WORKER_THREADS": "50%",
        "ENABLE_ORIG_SRC": "false", "IPV6_ENABLED": "false", "ISTIO_META_ISTIO_VERSION": "1.30.2",
        "XDS_ON_DEMAND": "true", "ISTIO_META_DNS_CAPTURE": "false"},
}
# Inherited variables that would change what is tested.
SCRUB = ("AUTH_TOKEN", "ZTUNNEL_WORKER_THREADS", "ZTUNNEL_CPU_LIMIT", "ZTUNNEL_RESOURCE_CPU_LIMIT",
         "ZTUNNEL_RESOURCE_CPU_REQUEST", "PROXY_CONFIG", "PROXY_MODE", "ENABLE_ORIG_SRC",
         "IPV6_ENABLED", "XDS_ON_DEMAND", "ISTIO_META_DNS_CAPTURE", "ISTIO_META_ISTIO_VERSION",
         "KEEPALIVE_TIME", "KEEPALIVE_INTERVAL", "KEEPALIVE_RETRIES", "KEEPALIVE_ENABLED",
         "NETWORK", "TRUST_DOMAIN", "CRL_PATH")


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)
    return cond


class EnvUnderTest(IstioEnv):
    def agent_env(self, node):
        env = super().agent_env(node)
        if node == 1:
            env.pop("AUTH_TOKEN")
        env.update({k: v.replace("<dir>", self.dir) for k, v in NODE_ENV[node].items()})
        return env

    def start_istio_agent(self, node, extra_args=()):
        log_path = os.path.join(self.dir, f"agent-{node}.log")
        self.logs[node] = log_path
        logf = open(log_path, "a")
        cmd = ["ip", "netns", "exec", self.topo.node_ns(node), self.agent_bin, "proxy", "ztunnel",
               "--log-level", "info,access=debug", *extra_args]  # no --workers: derived
        base = {k: v for k, v in os.environ.items() if k not in SCRUB}
        # The agent's cwd has no ./var/run/secrets/tokens/istio-token.
        p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=self.dir,
                             env=dict(base, **self.agent_env(node)))
        self.topo.procs.append(p)
        self.agents[node] = p
        return p


def refused(env, node, extra, needle):
    """Starts the agent with `extra` on top of node's environment; it must exit
    2 at once naming `needle`."""
    base = {k: v for k, v in os.environ.items() if k not in SCRUB}
    e = dict(base, **IstioEnv.agent_env(env, node), **extra)
    try:
        r = subprocess.run(["ip", "netns", "exec", env.topo.node_ns(node), env.agent_bin, "proxy"],
                           env=e, capture_output=True, text=True, timeout=5, cwd=env.dir)
    except subprocess.TimeoutExpired:
        return check(False, f"{extra}: refused at start-up (still running after 5 s)")
    return check(r.returncode == 2 and needle in r.stderr,
                 f"{extra}: refused at start-up (exit {r.returncode}: {r.stderr.strip()[:160]})")


def listen_addrs(pod):
    out = subprocess.run(["ip", "netns", "exec", pod.ns, "ss", "-Hltn"], capture_output=True,
                         text=True, timeout=10).stdout
    return {line.split()[3] for line in out.splitlines() if re.search(r":150(01|06|08)\s", line)}


def keepalive_timers(pod, dst):
    """ss timers of the established sockets to `dst` in pod's netns, in seconds."""
    out = subprocess.run(["ip", "netns", "exec", pod.ns, "ss", "-Htno", "state", "established",
                          "dst", dst], capture_output=True, text=True, timeout=10).stdout
    secs = []
    # ss prints e.g. "2min59sec", "6.5sec", "2.192ms".
    for m in re.finditer(r"timer:\(keepalive,(?:(\d+)min)?([\d.]+)(ms|sec)", out):
        v = float(m.group(2)) / (1000.0 if m.group(3) == "ms" else 1.0)
        secs.append(int(m.group(1) or 0) * 60 + v)
    return secs, out


def phase_startup(env, f):
    for node, want in ((1, 3), (2, 1)):
        env.wait_log(node, "readiness on", timeout=15)
        check(re.search(rf"ambit-agent \S+ node=node-{node} workers={want} ", env.log(node)),
              f"node {node}: {want} worker thread(s) from {NODE_ENV[node]}")
        check(env.config_dump(node)["config"]["workers"] == str(want),
              f"node {node}: config_dump workers = {want}")
    check("XDS_ON_DEMAND=true: on-demand address lookups are not implemented" in env.log(2),
          "node 2: XDS_ON_DEMAND=true starts (DNS proxy off), says how it is served")
    c1, c2 = env.config_dump(1)["config"], env.config_dump(2)["config"]
    check(c1["network"] == "net-env" and c1["trustDomain"] == "td.example" and
          c1["keepalive"] == "time=7s interval=3s retries=4" and c1["enableOrigSrc"] == "auto" and
          c1["ipv6Enabled"] == "true",
          f"node 1 config_dump: network, trust domain, keepalive, orig src, IPv6 ({c1})")
    check(c2["enableOrigSrc"] == "off" and c2["ipv6Enabled"] == "false" and
          c2["xdsOnDemand"] == "true" and c2["istioVersion"] == "1.30.2",
          "node 2 config_dump: ENABLE_ORIG_SRC, IPV6_ENABLED, XDS_ON_DEMAND, Istio version")


def phase_auth(env, f, pods):
    hdrs = f("xds_status")["stream_headers"]
    auth = sorted(h.get("authorization", "<none>") for h in hdrs)
    check(len(hdrs) >= 2 and "<none>" in auth and all(a in ("<none>", f"Bearer {env.token}")
                                                      for a in auth),
          f"xDS: no authorization header without AUTH_TOKEN or token file ({auth})")
    reqs = f("ca_requests")["requests"]
    by_id = {r["impersonated_identity"]: r["authorization"] for r in reqs}
    check(by_id.get(pods["client"].identity) == "" and
          by_id.get(pods["server"].identity) == f"Bearer {env.token}",
          f"CA: node 1 sends no bearer token, node 2 its AUTH_TOKEN ({by_id})")


def phase_build(env):
    for node, tag in ((1, "1.31"), (2, "1.30.2")):
        status, text = env.http(node, "/metrics", port=15020)
        lines = [ln for ln in text.splitlines() if ln.startswith("istio_build{")]
        check(lines == [f'istio_build{{component="ztunnel",tag="{tag}",ambit_version="0.1.0"}} 1'],
              f"node {node}: istio_build carries Istio {tag} and Ambit's version ({lines})")


def phase_listeners(pods):
    a1, a2 = listen_addrs(pods["client"]), listen_addrs(pods["server"])
    check(a1 and all(a.startswith(("[::]:", "*:")) for a in a1),
          f"node 1 pod: 15001/15006/15008 on [::] (IPV6_ENABLED default) {sorted(a1)}")
    check(a2 and all(a.startswith("0.0.0.0:") for a in a2),
          f"node 2 pod: on 0.0.0.0 with IPV6_ENABLED=false {sorted(a2)}")


def phase_orig_src(pods):
    client, server, client2, server1 = pods["client"], pods["server"], pods["client2"], pods["server1"]
    line = tcp_exchange(client.ns, server.ip, 8080, b"hi\n").strip()
    check(line.startswith(f"peer={server.ip}:"),
          f"ENABLE_ORIG_SRC=false: the node-2 app sees its own address, not {client.ip} ({line})")
    line = tcp_exchange(client2.ns, server1.ip, 8080, b"hi\n").strip()
    check(line.startswith(f"peer={client2.ip}:"),
          f"ENABLE_ORIG_SRC unset: the node-1 app sees the client {client2.ip} ({line})")


def phase_keepalive(pods):
    client, server = pods["client"], pods["server"]
    s = open_stream(client.ns, server.ip, 8080)
    try:
        secs, raw = [], ""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not secs:
            secs, raw = keepalive_timers(client, f"{server.ip}:15008")
            if not secs:
                time.sleep(0.2)  # poll interval of a wait-with-timeout
        check(secs and all(v <= 7.0 for v in secs),
              f"node 1: HBONE socket to {server.ip}:15008 keepalive timer ≤ 7 s ({secs or raw})")
        far, raw2 = [], ""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not far:
            far, raw2 = keepalive_timers(server, f"{client.ip}")
            if not far:
                time.sleep(0.2)  # poll interval of a wait-with-timeout
        check(far and all(v > 60 for v in far),
              f"node 2 (defaults): accepted HBONE socket keepalive timer 180 s ({far or raw2})")
    finally:
        s.close()


def write_crl(env, serials):
    """A CRL of the fake istiod's root revoking `serials` (hex), at CRL_PATH."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    with open(os.path.join(env.fake.dir, "root-cert.pem"), "rb") as f:
        root = x509.load_pem_x509_certificate(f.read())
    with open(os.path.join(env.fake.dir, "root-key.pem"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateRevocationListBuilder().issuer_name(root.subject)
         .last_update(now).next_update(now + datetime.timedelta(hours=1)))
    for s in serials:
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(int(s, 16))
                                      .revocation_date(now).build())
    crl = b.sign(key, hashes.SHA256())
    tmp = os.path.join(env.dir, "crl.pem.tmp")
    with open(tmp, "wb") as f:
        f.write(crl.public_bytes(serialization.Encoding.PEM))
    os.rename(tmp, os.path.join(env.dir, "crl.pem"))


def exchange(pod, ip):
    try:
        return tcp_exchange(pod.ns, ip, 8080, b"hi\n", timeout=3).strip()
    except OSError as e:
        return f"<{e.__class__.__name__}>"


def phase_crl(env, pods):
    c3, s1, c1, s2 = pods["client3"], pods["server1"], pods["client"], pods["server2"]
    check("CRL_PATH" in env.log(1) and "no such file" in env.log(1),
          "node 1: CRL_PATH missing at start is a warning, not a failure")
    serial = {c: env.cert(2, c.identity)[0] for c in (c3, s2)}
    write_crl(env, serial.values())
    env.wait_log(1, "CRL_PATH .* reloaded: 1 CRL", timeout=10, regex=True)
    line = exchange(c3, s1.ip)
    check(not line.startswith("peer="),
          f"revoked client {c3.identity} (serial {serial[c3]}) refused by node 1 ({line})")
    check((env.metric(1, "istio_crl_policy_rejections_total", 'reporter="destination"') or 0) >= 1,
          "istio_crl_policy_rejections_total{reporter=destination} counted on node 1")
    line = exchange(c1, s2.ip)
    check(not line.startswith("peer="),
          f"node 1 refuses the revoked server {s2.identity} (serial {serial[s2]}) ({line})")
    check((env.metric(1, "istio_crl_policy_rejections_total", 'reporter="source"') or 0) >= 1,
          "istio_crl_policy_rejections_total{reporter=source} counted on node 1")
    env.wait_log(1, r"revoked \(CRL .*crl\.pem\): serial 0x", timeout=5, regex=True)
    line = exchange(c1, pods["server"].ip)
    check(line.startswith("peer="), f"certificates not on the CRL still pass ({line})")


def phase_pprof(env):
    for path in ("/debug/pprof/profile?seconds=1", "/debug/pprof/heap"):
        status, body = env.http(1, path, port=15000)
        check(status == 501 and "not served" in body, f"{path}: 501 not served ({status})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    require_root()
    with Topology(nodes=2, tag="e") as topo:
        env = EnvUnderTest(topo, args.build)
        env.token = "fake-istio-token-1"
        f = env.fake
        pods = {
            "client": env.pod(1, "client", sa="sleep"),
            "server1": env.pod(1, "server1", sa="echo1"),
            "server": env.pod(2, "server", sa="echo"),
            "client2": env.pod(2, "client2", sa="sleep2"),
            # First used after the CRL revokes them (a pooled connection
            # made before stays: live connections are not re-checked).
            "client3": env.pod(2, "client3", sa="sleep3"),
            "server2": env.pod(2, "server2", sa="echo2"),
        }
        try:
            for name in ("server", "server1", "server2"):
                topo.echo_server(pods[name].ns, "0.0.0.0", 8080, name)
            env.push_all()
            refused(env, 1, {"PROXY_MODE": "dedicated"}, "dedicated mode")
            refused(env, 1, {"PROXY_MODE": "sidecar"}, "must be one of dedicated, shared")
            refused(env, 1, {"XDS_ON_DEMAND": "true"}, "DNS proxy does not support on-demand")
            refused(env, 1, {"IPV6_ENABLED": "no"}, "IPV6_ENABLED='no': expected true or false")
            env.start_agents()
            phase_startup(env, f)
            for node in (1, 2):
                acks = env.announce(node)
                check(set(acks) == {"ack"}, f"node {node}: ZDS acked ({acks})")
            for node in (1, 2):
                env.wait_ready(node, want=200, timeout=30)
            for phase in (lambda: phase_auth(env, f, pods), lambda: phase_build(env),
                          lambda: phase_listeners(pods), lambda: phase_orig_src(pods),
                          lambda: phase_keepalive(pods), lambda: phase_pprof(env),
                          lambda: phase_crl(env, pods)):
                try:  # a failed phase is reported; the next ones still run
                    phase()
                except Exception as e:
                    check(False, f"phase: {e.__class__.__name__}: {str(e)[:600]}")
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
