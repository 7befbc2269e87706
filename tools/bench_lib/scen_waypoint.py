"""waypoint: HTTP/1.1 through client -> agent -> ambit-waypoint -> agent -> server, against
L7 peers on the same machine in the same run: an HAProxy `mode http` pair with mTLS between
the two proxies (what a user would run instead of a waypoint hop), and one nghttpx (HTTP/1.1
in, HTTP/1.1 out, no TLS: the cheapest L7 hop there is).

Own topology (2 nodes; not BenchEnv's four): pods cu (captured client), su (captured server),
wp (the waypoint pod, not captured), cp/sp (uncaptured client/server for the peers). Every
server is HAProxy answering 1 KiB. wrk: POST 1 KiB, keep-alive.
  - saturation: 32 connections for SECONDS -> rps, p99, rps per proxy core;
  - fixed: 10 connections x 1 request / 10 ms (~1000 rps) -> cores per 1000 rps.
"""
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "netns"))
from harness import Topology, wait_tcp  # noqa: E402
from harness import run as run_cmd  # noqa: E402
from ambit_env import AmbitEnv  # noqa: E402
from waypoint_env import WaypointPod  # noqa: E402

from . import peers  # noqa: E402
from .measure import CpuMeter, fmt, median, ratio, rss_kb, table, verdict  # noqa: E402
from .scen_http import scripts  # noqa: E402

VIP = "10.96.0.40"
VIP_VS, VIP_HR = "10.96.0.41", "10.96.0.42"  # the same backend behind routing resources
VIP_TR = "10.96.0.43"  # the same backend, access-logged and traced at 1 % (Telemetry on it)
COLLECTOR_PORT = 4318
PORT = 8080

# The seed's canary shape (header match, then 90/10 over two subsets that
# both select the one server, with the seed's retry policy and timeout) and
# a 10-rule HTTPRoute whose last rule matches: what routing and a retry
# policy cost per request against the default route.
ROUTING_DOCS = [
    {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
     "metadata": {"name": "web-vs", "namespace": "demo"},
     "spec": {"hosts": ["web-vs"], "http": [
         {"match": [{"headers": {"x-canary-user": {"exact": "true"}}}],
          "route": [{"destination": {"host": "web-vs", "subset": "v2"}}]},
         {"route": [{"destination": {"host": "web-vs", "subset": "v1"}, "weight": 90},
                    {"destination": {"host": "web-vs", "subset": "v2"}, "weight": 10}],
          "timeout": "10s",
          "retries": {"attempts": 3, "perTryTimeout": "2s",
                      "retryOn": "5xx,reset,connect-failure,retriable-4xx"}}]}},
    {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
     "metadata": {"name": "web-vs", "namespace": "demo"},
     "spec": {"host": "web-vs", "subsets": [{"name": "v1", "labels": {"app": "su"}},
                                            {"name": "v2", "labels": {"app": "su"}}]}},
    {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
     "metadata": {"name": "web-hr", "namespace": "demo"},
     "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "web-hr", "port": 80}],
              "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": f"/r{i}"},
                                      "headers": [{"name": "x-rule", "value": str(i)}]}],
                         "backendRefs": [{"name": "web-hr", "port": 80}]} for i in range(9)] +
                       [{"backendRefs": [{"name": "web-hr", "port": 80}]}]}},
]
HAP_A, HAP_B, NGHTTPX = 23000, 23001, 23002


def tracing_docs(collector_ip):
    """MeshConfig with an OTLP/HTTP provider (the test collector in the `sp` pod) and a
    Telemetry binding only web-tr: an Envoy-format access line per request (the built-in
    `envoy` provider, to the waypoint's stdout) and tracing at 1 %: the observability cost,
    on vs off, in the same run (metrics are always on)."""
    mesh = (f"extensionProviders:\n- name: otel\n  opentelemetry:\n    service: {collector_ip}\n"
            f"    port: {COLLECTOR_PORT}\n    http: {{path: /v1/traces}}\n")
    return [{"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "istio", "namespace": "istio-system"}, "data": {"mesh": mesh}},
            {"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry",
             "metadata": {"name": "web-tr", "namespace": "demo"},
             "spec": {"targetRefs": [{"kind": "Service", "group": "", "name": "web-tr"}],
                      "accessLogging": [{"providers": [{"name": "envoy"}]}],
                      "tracing": [{"providers": [{"name": "otel"}],
                                   "randomSamplingPercentage": 1}]}}]


def _wrk(ns, url, script, conns, seconds, pids):
    args = ["ip", "netns", "exec", ns, "wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency",
            "-s", script, url]
    with CpuMeter(pids) as m:
        r = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 30)
    rps = re.search(r"Requests/sec:\s*([\d.]+)", r.stdout)
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)", r.stdout, re.M)
    p50 = re.search(r"^\s*50%\s+([\d.]+)(us|ms|s)", r.stdout, re.M)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
    if not rps:
        return None
    unit = {"us": 1, "ms": 1000, "s": 1e6}
    p99_us = float(p99.group(1)) * unit[p99.group(2)] if p99 else None
    p50_us = float(p50.group(1)) * unit[p50.group(2)] if p50 else None
    return {"rps": float(rps.group(1)), "cores": m.cores, "p99": p99_us, "p50": p50_us,
            "non2xx": int(bad.group(1)) if bad else 0}


def _h2load(ns, url, seconds, pids):
    """h2c prior knowledge, 4 connections x 25 concurrent streams, GET (1 KiB answers)."""
    args = ["ip", "netns", "exec", ns, "h2load", "-c", "4", "-m", "25", "-D", str(seconds), url]
    with CpuMeter(pids) as m:
        r = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 30)
    rps = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", r.stdout)
    ok = re.search(r"status codes: (\d+) 2xx", r.stdout)
    lat = re.search(r"time for request:\s+[\d.]+\w+\s+[\d.]+\w+\s+([\d.]+)(us|ms|s)", r.stdout)
    if not rps:
        return None
    mean = float(lat.group(1)) * {"us": 1, "ms": 1000, "s": 1e6}[lat.group(2)] if lat else None
    return {"rps": float(rps.group(1)), "cores": m.cores, "mean": mean,
            "ok": int(ok.group(1)) if ok else 0}


def _haproxy_http_pair(workdir, cert_a, cert_b, ca, server):
    pem_a, pem_b = peers._combined_pem(cert_a), peers._combined_pem(cert_b)
    tls = f"ca-file {ca} verify required ssl-min-ver TLSv1.3"
    g = peers.HAPROXY_GLOBAL.format(threads=2, mode="http")
    a = g + (f"frontend fa\n  bind 10.44.1.1:{HAP_A}\n  option http-keep-alive\n"
             f"  default_backend ba\nbackend ba\n  http-reuse always\n"
             f"  server b 10.44.0.2:{HAP_B} ssl crt {pem_a} {tls}\n")
    b = g + (f"frontend fb\n  bind 10.44.0.2:{HAP_B} ssl crt {pem_b} {tls}\n"
             f"  option http-keep-alive\n  default_backend bb\nbackend bb\n  http-reuse always\n"
             f"  server s {server}\n")
    out = []
    for name, text in (("hap-http-a.cfg", a), ("hap-http-b.cfg", b)):
        p = os.path.join(workdir, name)
        with open(p, "w") as f:
            f.write(text)
        out.append(p)
    return out


def run(build, log, reps=3, seconds=4):
    with Topology(nodes=2, tag="w") as topo:
        env = AmbitEnv(topo, build, workers=2)
        try:
            return _run(topo, env, build, log, reps, seconds)
        finally:
            env.cleanup()


def _run(topo, env, build, log, reps, seconds):
    cu = env.pod(1, "cu", sa="client")
    su = env.pod(2, "su", sa="server", services={
        f"demo/{n}.demo.svc.cluster.local": {80: PORT}
        for n in ("web", "web-vs", "web-hr", "web-tr")})
    wp = WaypointPod(env, node=2, name="waypoint")
    for name, vip in (("web", VIP), ("web-vs", VIP_VS), ("web-hr", VIP_HR), ("web-tr", VIP_TR)):
        env.service(name, vip=vip, ports={80: PORT}, extra=wp.use())
    cp, sp = env.pod(1, "cp", captured=False), env.pod(2, "sp", captured=False)
    env.extra_docs = list(ROUTING_DOCS) + tracing_docs(sp.ip)
    procs = []
    for pod in (su, sp):
        cfg = peers.http_responder_config(env.dir, PORT)
        procs.append(topo.spawn(pod.ns, ["haproxy", "-db", "-f", cfg]))
        wait_tcp(pod.ns, pod.ip, PORT, timeout=10)
    col = topo.spawn(sp.ns, [sys.executable, os.path.join(ROOT, "tests", "support",
                                                          "trace_collector.py"),
                             "--port", str(COLLECTOR_PORT)])
    topo.wait_line(col, "ready", timeout=10)
    env.start()
    wp.start(log_level="info,access=warn")  # no access line per request
    agents = [env.agents[1].pid, env.agents[2].pid]
    wpid = wp.proc.pid
    # Peers, with certificates from the same CA as the agents.
    certs = {}
    for name in ("peer-a", "peer-b"):
        out = os.path.join(env.dir, "certs", name)
        run_cmd([env.ctl_bin, "ca", "issue", "--ca", env.ca_dir, "--identity",
             f"spiffe://cluster.local/ns/bench/sa/{name}", "--out", out])
        certs[name] = out
    ca = os.path.join(certs["peer-a"], "root-cert.pem")
    ha, hb = _haproxy_http_pair(env.dir, certs["peer-a"], certs["peer-b"], ca, f"{sp.ip}:{PORT}")
    pb = topo.spawn(topo.node_ns(2), ["haproxy", "-db", "-f", hb])
    pa = topo.spawn(topo.node_ns(1), ["haproxy", "-db", "-f", ha])
    ng = topo.spawn(topo.node_ns(1), ["nghttpx", f"--frontend=10.44.1.1,{NGHTTPX};no-tls",
                                      f"--backend={sp.ip},{PORT};;proto=http/1.1", "--workers=2",
                                      "--no-ocsp", "--errorlog-file=/dev/null",
                                      "--accesslog-file=/dev/null"])
    for port in (HAP_A, NGHTTPX):
        wait_tcp(cp.ns, "10.44.1.1", port, timeout=10)
    variants = {
        "direct": (cp.ns, f"http://{sp.ip}:{PORT}/", [], []),
        "waypoint": (cu.ns, f"http://{VIP}/", [wpid], agents),
        "haproxy": (cp.ns, f"http://10.44.1.1:{HAP_A}/", [pa.pid, pb.pid], []),
        "nghttpx": (cp.ns, f"http://10.44.1.1:{NGHTTPX}/", [ng.pid], []),
    }
    sc = scripts(env.dir)
    res = {n: {"sat": [], "fixed": []} for n in variants}
    for rep in range(reps):
        for n, (ns, url, pids, extra) in variants.items():
            for kind, script, conns in (("sat", sc["sat"], 32), ("fixed", sc["fixed"], 10)):
                got = _wrk(ns, url, script, conns, seconds, pids + extra)
                res[n][kind].append(got)
                log(f"[waypoint] rep {rep + 1} {n} {kind}: "
                    f"{fmt(got and got['rps'])} rps, {fmt(got and got['cores'])} cores, "
                    f"p99 {fmt(got and got['p99'])} us")
                time.sleep(0.3)  # let the previous run's sockets drain
    # Waypoint process alone: one more saturated run measuring only its CPU,
    # interleaved with the same through the two routing resources.
    alone = []
    routed = {"default route": [], "VirtualService (seed canary)": [], "HTTPRoute, 10 rules": [],
              "access log + 1 % tracing (OTLP)": []}
    for _ in range(reps):
        ns, url, pids, _extra = variants["waypoint"]
        # Tracing right after the default route it is compared with (less drift).
        for label, u in (("default route", url), ("access log + 1 % tracing (OTLP)", f"http://{VIP_TR}/"),
                         ("VirtualService (seed canary)", f"http://{VIP_VS}/"),
                         ("HTTPRoute, 10 rules", f"http://{VIP_HR}/")):
            got = _wrk(ns, u, sc["sat"], 32, seconds, pids)
            routed[label].append(got)
            if label == "default route":
                alone.append(got)
            time.sleep(0.3)
    # HTTP/2 (h2c prior knowledge): the waypoint (upstream h2c too) vs one nghttpx hop.
    h2 = {"waypoint": [], "nghttpx": []}
    for _ in range(reps):
        h2["waypoint"].append(_h2load(cu.ns, f"http://{VIP}/", seconds, [wpid]))
        h2["nghttpx"].append(_h2load(cp.ns, f"http://10.44.1.1:{NGHTTPX}/", seconds, [ng.pid]))
        time.sleep(0.3)  # let the previous run's sockets drain
    rss = {"waypoint": rss_kb(wpid), "haproxy": (rss_kb(pa.pid) or 0) + (rss_kb(pb.pid) or 0),
           "nghttpx": rss_kb(ng.pid)}
    return _report(res, alone, reps, seconds, rss) + _report_routes(routed) + _report_h2(h2)


def _med(xs, key):
    return median([x[key] for x in xs if x is not None])


def _report(res, alone, reps, seconds, rss):
    rows = []
    per_core = {}
    base50, base99 = _med(res["direct"]["fixed"], "p50"), _med(res["direct"]["fixed"], "p99")
    added = {}
    for n, procs in (("direct", 0), ("waypoint", 1), ("haproxy", 2), ("nghttpx", 1)):
        sat, fixed = res[n]["sat"], res[n]["fixed"]
        rps, p99 = _med(sat, "rps"), _med(sat, "p99")
        if n != "direct" and base50 is not None and _med(fixed, "p50") is not None:
            added[n] = (_med(fixed, "p50") - base50, _med(fixed, "p99") - base99)
        if n == "direct":
            proxy_cores = None
            label = "direct (no proxies)"
        elif n == "waypoint":
            proxy_cores = _med(alone, "cores")
            label = "Ambit: agent → ambit-waypoint → agent"
        else:
            proxy_cores = _med(sat, "cores") / procs if _med(sat, "cores") is not None else None
            label = "HAProxy mode http pair (mTLS)" if n == "haproxy" else "nghttpx, 1 hop (no TLS)"
        per_core[n] = rps / proxy_cores if rps and proxy_cores else None
        k = _med(fixed, "cores") if n != "direct" else None
        k_per_1000 = (k / (_med(fixed, "rps") / 1000)) if k and _med(fixed, "rps") else None
        bad = sum((x or {}).get("non2xx", 0) for x in sat + fixed)
        p50f = _med(fixed, "p50")
        rows.append([label, fmt(rps, 0), fmt(p99, 0), fmt(p50f, 0), fmt(_med(fixed, "p99"), 0),
                     fmt(proxy_cores), fmt(per_core[n], 0), fmt(k_per_1000, 3),
                     fmt(rss.get(n) and rss[n] / 1024, 1), str(bad)])
    hap = per_core.get("haproxy")
    wpc = per_core.get("waypoint")
    wp_p99, hap_p99 = _med(res["waypoint"]["sat"], "p99"), _med(res["haproxy"]["sat"], "p99")
    fixed_wp = _med(res["waypoint"]["fixed"], "cores")
    fixed_rps = _med(res["waypoint"]["fixed"], "rps")
    total_k = fixed_wp / (fixed_rps / 1000) if fixed_wp and fixed_rps else None
    text = ["## waypoint (HTTP/1.1, 1 KiB POST, keep-alive)", "",
            f"Median of {reps} interleaved rounds, {seconds} s each. Saturation: wrk 32 connections; "
            "fixed: 10 connections × 1 request / 10 ms. \"proxy cores\" at saturation: the waypoint "
            "process alone (a separate run) / per HAProxy process / the nghttpx process; "
            "\"cores per 1000 rps\" at the fixed rate: every proxy on the path (Ambit: both "
            "agents + the waypoint).", ""]
    text.append(table(["path", "rps (sat)", "p99 µs (sat)", "p50 µs (fixed)", "p99 µs (fixed)",
                       "proxy cores (sat)", "rps per proxy core",
                       "cores / 1000 rps (fixed, whole path)", "proxy RSS MiB", "non-2xx"],
                      rows))
    for n, (a50, a99) in added.items():
        text.append(f"- added at the fixed rate vs direct, {n}: p50 +{fmt(a50, 0)} µs, p99 +{fmt(a99, 0)} µs")
    text += ["", f"- waypoint rps per core / HAProxy `mode http` per proxy core: **{fmt(ratio(wpc, hap))}×** "
             f"(goal ≥ 1.2×) {verdict(wpc is not None and hap is not None and wpc >= 1.2 * hap)}",
             f"- p99 at saturation: waypoint path {fmt(wp_p99, 0)} µs vs HAProxy pair {fmt(hap_p99, 0)} µs "
             f"(goal ≤) {verdict(wp_p99 is not None and hap_p99 is not None and wp_p99 <= hap_p99)}",
             f"- whole Ambit path per 1000 rps: {fmt(total_k, 3)} cores (goal ≤ 0.06) "
             f"{verdict(total_k is not None and total_k <= 0.06)}"]
    return "\n".join(text) + "\n"


def _report_routes(routed):
    rows = []
    per_core = {}
    for label, runs in routed.items():
        rps, cores = _med(runs, "rps"), _med(runs, "cores")
        per_core[label] = rps / cores if rps and cores else None
        rows.append([label, fmt(rps, 0), fmt(cores), fmt(per_core[label], 0),
                     fmt(ratio(per_core[label], per_core.get("default route")))])
    worst = min((r for k, r in per_core.items()
                 if k not in ("default route", "access log + 1 % tracing (OTLP)") and r), default=None)
    base = per_core.get("default route")
    traced = per_core.get("access log + 1 % tracing (OTLP)")
    base_rps, traced_rps = _med(routed["default route"], "rps"), _med(routed["access log + 1 % tracing (OTLP)"], "rps")
    text = ["", "### Routing cost (waypoint CPU only, saturation, same backend)", "",
            table(["route", "rps", "waypoint cores", "rps per core", "vs default"], rows), "",
            f"- routed rps per core / default route: **{fmt(ratio(worst, base))}×** (goal ≥ 0.95) "
            f"{verdict(worst is not None and base is not None and worst >= 0.95 * base)}",
            f"- access log + tracing at 1 % vs off: rps {fmt(ratio(traced_rps, base_rps))}×, rps per core "
            f"**{fmt(ratio(traced, base))}×** (goal ≥ 0.95) "
            f"{verdict(traced is not None and base is not None and traced >= 0.95 * base)}"]
    return "\n".join(text) + "\n"


def _report_h2(h2):
    rows = []
    per_core = {}
    for n, label in (("waypoint", "Ambit: agent → ambit-waypoint → agent (waypoint CPU)"),
                     ("nghttpx", "nghttpx, 1 hop (no TLS)")):
        rps, cores = _med(h2[n], "rps"), _med(h2[n], "cores")
        per_core[n] = rps / cores if rps and cores else None
        rows.append([label, fmt(rps, 0), fmt(_med(h2[n], "mean"), 0), fmt(cores),
                     fmt(per_core[n], 0), str(sum((x or {}).get("ok", 0) for x in h2[n]))])
    text = ["", "### HTTP/2 (h2load: h2c, 4 connections × 25 streams, GET, 1 KiB answers)", "",
            table(["path", "rps", "mean latency µs", "proxy cores", "rps per proxy core", "2xx"],
                  rows),
            "", f"- waypoint rps per core / nghttpx per core: "
                f"**{fmt(ratio(per_core['waypoint'], per_core['nghttpx']))}×**"]
    return "\n".join(text) + "\n"
