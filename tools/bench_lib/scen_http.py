"""rps and connections: wrk against an HAProxy HTTP responder in the server pod."""
import os
import re
import subprocess

from .env import order
from .measure import CpuMeter, ab_line, fmt, median, ratio, runs, table, verdict

ORDER = ["direct", "uring", "epoll", "stunnel", "haproxy"]
FIXED_CONNS, FIXED_DELAY_MS = 10, 10  # 10 connections × one request per 10 ms ≈ 1000 rps

LUA = """wrk.method = "POST"
wrk.body = string.rep("x", 1024)
wrk.headers["Content-Type"] = "text/plain"
{extra}
"""


def scripts(workdir):
    paths = {}
    for name, extra in (("fixed", f"function delay() return {FIXED_DELAY_MS} end"),
                        ("sat", ""), ("close", 'wrk.method = "GET"\nwrk.body = nil\n'
                                      'wrk.headers["Connection"] = "close"')):
        p = os.path.join(workdir, f"wrk-{name}.lua")
        with open(p, "w") as f:
            f.write(LUA.format(extra=extra))
        paths[name] = p
    return paths


def _unit_us(v, unit):
    return float(v) * {"us": 1, "ms": 1000, "s": 1e6}[unit]


def wrk(env, v, script, conns, seconds):
    url = f"http://{v.ip}:{v.port_of['http']}/"
    args = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", script, url]
    with CpuMeter(v.pids) as m:
        r = env.exec_in(v.client_ns, args, timeout=seconds + 20)
    rps = re.search(r"Requests/sec:\s*([\d.]+)", r.stdout)
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)", r.stdout, re.M)
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", r.stdout)
    if not rps:
        env.log(f"[http] {v.name}: wrk failed: {r.stdout[-300:]} {r.stderr[-300:]}")
        return None, None, None
    if errs:
        env.log(f"[http] {v.name}: wrk reported: {errs.group(0)}")
    return (float(rps.group(1)), m.cores if v.pids else None,
            _unit_us(*p99.groups()) if p99 else None)


def _collect(env, label, script, conns, seconds, reps):
    res = {n: [] for n in order(env, ORDER)}
    for rep in range(reps):
        for n in res:
            got = wrk(env, env.variants[n], script, conns, seconds)
            res[n].append(got)
            env.log(f"[{label}] rep {rep + 1} {n}: {fmt(got[0])} rps, proxies {fmt(got[1])} cores,"
                    f" p99 {fmt(got[2])} µs")
            env.settle()
    return res


def _per_agent_k(rps, cores):
    """cores per 1000 rps per proxy (two proxies share the work)."""
    if rps in (None, 0) or cores is None:
        return None
    return (cores / 2) / (rps / 1000)


def run_rps(env, reps=3, seconds=4):
    sc = scripts(env.dir)
    fixed = _collect(env, "rps fixed", sc["fixed"], FIXED_CONNS, seconds, reps)
    sat = _collect(env, "rps sat", sc["sat"], 32, seconds, reps)
    rows, meds = [], {}
    hap_sat = median([_per_agent_k(r, c) for r, c, _ in sat["haproxy"]])
    for n in fixed:
        f_rps = median([r for r, _, _ in fixed[n]])
        f_k = median([_per_agent_k(r, c) for r, c, _ in fixed[n]])
        f_p99 = median([p for _, _, p in fixed[n]])
        s_rps = median([r for r, _, _ in sat[n]])
        s_k = median([_per_agent_k(r, c) for r, c, _ in sat[n]])
        meds[n] = (f_k, f_p99, s_rps, s_k)
        goal = "—"
        if n in ("uring", "epoll", "base"):
            goal = f"≤ 0.02 cores/1000 rps/agent at 1000 rps: {verdict(f_k is not None and f_k <= 0.02)}"
        rows.append([env.variants[n].label, f_rps, f_k, runs([_per_agent_k(r, c) for r, c, _ in fixed[n]], 3),
                     f_p99, s_rps, runs([r for r, _, _ in sat[n]], 0), s_k,
                     None if s_k in (None, 0) else 1000 / s_k,
                     None if n in ("direct", "haproxy") else ratio(s_k, hap_sat), goal])
    hdr = ["path", "fixed: rps", "fixed: cores/1000 rps/proxy", "runs", "fixed: p99 µs",
           "saturation: rps", "runs", "sat: cores/1000 rps/proxy", "sat: rps per proxy core",
           "sat CPU/req × HAProxy's", "goal"]
    note = (f"1 KiB POST → 1 KiB 200 from an HAProxy HTTP responder in the server pod, keep-alive. "
            f"Fixed rate: wrk -t1 -c{FIXED_CONNS} with a Lua delay() of {FIXED_DELAY_MS} ms per "
            f"connection (≈1000 rps; wrk2 isn't in Debian; the achieved rps is what we divide by). "
            f"Saturation: wrk -t1 -c32. -d{seconds}s, {reps} interleaved rounds, median. "
            "cores/1000 rps/proxy = (CPU of both proxies ÷ wall ÷ 2) ÷ (rps ÷ 1000).")
    out = "## rps\n\n" + note + "\n\n" + table(hdr, rows) + "\n"
    if "base" in meds:
        new, old = meds["uring"], meds["base"]
        out += "\n" + ab_line([("fixed cores/1000 rps/proxy", new[0], old[0]),
                               ("fixed p99 µs", new[1], old[1]), ("sat rps", new[2], old[2]),
                               ("sat cores/1000 rps/proxy", new[3], old[3])]) + "\n"
    return out


def s_time(env, ns, ip, port, seconds, server_pids):
    c = env.client_cert
    args = ["openssl", "s_time", "-connect", f"{ip}:{port}", "-new", "-time", str(seconds),
            "-cert", f"{c}/cert-chain.pem", "-key", f"{c}/key.pem", "-CAfile", f"{c}/root-cert.pem"]
    with CpuMeter(server_pids) as m:
        r = env.exec_in(ns, args, timeout=seconds + 20)
    got = re.search(r"(\d+) connections in ([\d.]+)s", r.stdout)
    if not got or int(got.group(1)) == 0:
        env.log(f"[handshakes] {ip}:{port}: s_time failed: {r.stdout[-300:]} {r.stderr[-300:]}")
        return None, None
    n = int(got.group(1))
    return n / m.wall, (n / m.cpu if m.cpu > 0 else None)


def run_connections(env, reps=3, seconds=4):
    sc = scripts(env.dir)
    conns = _collect(env, "connections", sc["close"], 16, seconds, reps)
    p = env.pods
    hs_targets = {
        "uring": (p["su"].ip, 15008, [env.agent_pids[2]], "Ambit io_uring agent :15008"),
        "epoll": (p["se"].ip, 15008, [env.agent_pids[4]], "Ambit epoll agent :15008"),
        "base": (p["sb"].ip, 15008, [env.agent_pids[6]], "baseline agent :15008 (A/B)")
        if "base" in env.variants else None,
        "stunnel": ("10.44.0.2", env.stunnel_b_port, [env.stunnel_pids[1]], "stunnel B"),
        "haproxy": ("10.44.0.2", env.haproxy_b_port, [env.haproxy_pids[1]], "HAProxy B"),
    }
    hs_targets = {n: t for n, t in hs_targets.items() if t is not None}
    hs = {n: [] for n in hs_targets}
    for rep in range(reps):
        for n, (ip, port, pids, _) in hs_targets.items():
            got = s_time(env, p["cp"].ns, ip, port, seconds, pids)
            hs[n].append(got)
            env.log(f"[handshakes] rep {rep + 1} {n}: {fmt(got[0])}/s, {fmt(got[1])} per server core-s")
    rows, ab = [], {}
    for n in conns:
        rps = median([r for r, _, _ in conns[n]])
        cores = median([c for _, c, _ in conns[n]])
        per_core = median([None if c in (None, 0) or r is None else r / (c / 2)
                           for r, c, _ in conns[n]])
        ab[n] = [rps, per_core]
        goal = "—"
        if n in ("uring", "epoll", "base"):
            goal = f"≥ 20,000/s: {verdict(rps is not None and rps >= 20000)}"
        rows.append([env.variants[n].label, rps, runs([r for r, _, _ in conns[n]], 0), cores,
                     per_core, ratio(rps, median([r for r, _, _ in conns["haproxy"]])), goal])
    hdr = ["path", "new conns/s", "runs", "proxy cores (both)", "conns/s per proxy core",
           "× HAProxy pair", "goal"]
    t1 = table(hdr, rows)
    rows = []
    hap = median([c for _, c in hs["haproxy"]])
    for n, (_, _, _, label) in hs_targets.items():
        per = median([c for _, c in hs[n]])
        if n in ab:
            ab[n].append(per)
        goal = "—"
        if n in ("uring", "epoll", "base"):
            goal = f"≥ 2,000: {verdict(per is not None and per >= 2000)}"
        rows.append([label, median([r for r, _ in hs[n]]), per, runs([c for _, c in hs[n]], 0),
                     ratio(per, hap), goal])
    t2 = table(["server", "handshakes/s", "per server core-second", "runs", "× HAProxy", "goal"],
               rows)
    note1 = (f"Short-lived connections: wrk -t1 -c16 -d{seconds}s with `Connection: close` (one GET "
             "and a 1 KiB answer per TCP connection; the responder closes), client pod → server "
             "pod; through Ambit each connection is a new HBONE stream on the pooled mTLS "
             "connection. The peers' side A resumes TLS sessions to side B (their default).")
    note2 = (f"Full mTLS handshakes: `openssl s_time -new -time {seconds}` with a client "
             "certificate from the same CA (TLS 1.3, ECDSA P-256) against one server, from the "
             "plain client pod; per server core-second = handshakes ÷ CPU-seconds of the server "
             "process. The s_time client shares the 2 vCPUs. Peers also open their backend "
             "connection per handshake; the agent's :15008 only does the handshake.")
    out = "## connections\n\n" + note1 + "\n\n" + t1 + "\n\n" + note2 + "\n\n" + t2 + "\n"
    if "base" in ab:
        new, old = ab["uring"], ab["base"]
        out += "\n" + ab_line([("new conns/s", new[0], old[0]), ("conns/s per proxy core", new[1], old[1]),
                               ("handshakes per server core-s", new[2], old[2])]) + "\n"
    return out


def openssl_ok():
    return subprocess.run(["openssl", "version"], capture_output=True).returncode == 0
