"""latency: sockperf TCP ping-pong, 64 B and 1 KiB, unpinned and pinned to CPU 0.

sockperf 3.7 sleeps a fixed 2 s between its warm-up and the measured phase; 60 runs spent two
of the scenario's four minutes there. `sockperf_shortsleep.c`, built here with cc and preloaded
into the sockperf client only, shortens that one sleep to 200 ms (the measured phase is
unchanged), so the scenario fits in its 3-minute budget.
"""
import os
import re
import shutil
import subprocess

from .env import order, tempdir
from .measure import ab_line, fmt, median, pin, ratio, runs, table, verdict

ORDER = ["direct", "uring", "epoll", "stunnel", "haproxy"]
PCT = {"p50": "50.000", "p99": "99.000", "p99.9": "99.900"}


def parse(out):
    got = {}
    for k, p in PCT.items():
        m = re.search(r"percentile " + re.escape(p) + r" =\s*([\d.]+)", out)
        got[k] = float(m.group(1)) if m else None
    return got


_SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sockperf_shortsleep.c")


def build_shim(env):
    """Compiles the sleep shim into a temp dir; None (and the full 2 s sleep) if that fails or
    AMBIT_BENCH_SOCKPERF_FULL_SLEEP=1 asks for sockperf as shipped."""
    if os.environ.get("AMBIT_BENCH_SOCKPERF_FULL_SLEEP") == "1":
        env.log("[latency] AMBIT_BENCH_SOCKPERF_FULL_SLEEP=1: sockperf keeps its 2 s warm-up sleep")
        return None
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        env.log("[latency] no C compiler: sockperf keeps its 2 s warm-up sleep")
        return None
    out = os.path.join(tempdir(), "sockperf_shortsleep.so")
    r = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", out, _SHIM, "-ldl"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        env.log(f"[latency] building the sleep shim failed ({r.stderr.strip()[-200:]}); "
                "sockperf keeps its 2 s warm-up sleep")
        return None
    return out


def _once(env, v, size, pinned, seconds, shim=None):
    args = ["sockperf", "ping-pong", "--tcp", "-i", v.ip, "-p", str(v.port_of["sockperf"]),
            "-m", str(size), "-t", str(seconds), "--full-rtt"]
    if shim:
        args = ["env", f"LD_PRELOAD={shim}"] + args
    if pinned:
        args = ["taskset", "-c", "0"] + args
    r = env.exec_in(v.client_ns, args, timeout=seconds + 15)
    got = parse(r.stdout)
    if got["p50"] is None:
        tail = " ".join(r.stdout.split("\n")[-3:]).strip() or r.stderr.strip()[-200:]
        env.log(f"[latency] {v.name}: sockperf got no answers ({tail}); restarting its server")
    return got


def _measure(env, v, size, pinned, seconds, failures, shim):
    got = _once(env, v, size, pinned, seconds, shim)
    if got["p50"] is None:
        failures.append(f"{v.label} {size} B {'pinned' if pinned else 'unpinned'}")
        if env.restart_sockperf(v):
            if pinned:
                pin([env.sockperf[v.server_pod].pid], "0")
            got = _once(env, v, size, pinned, seconds, shim)
    return got


def _goal(pinned, add50, add99, h50, h99):
    if not pinned:
        return "— (goal is pinned)"
    r50, r99 = ratio(add50, h50), ratio(add99, h99)
    return (f"+p50 ≤ 40 µs: {verdict(None if add50 is None else add50 <= 40)}; "
            f"≤ 0.4× HAProxy: {verdict(None if r50 is None else r50 <= 0.4)}; "
            f"+p99 ≤ 0.5× HAProxy: {verdict(None if r99 is None else r99 <= 0.5)}")


def run(env, reps=3, seconds=2, sizes=(64, 1024)):
    res = {}  # (pinned, size, variant) -> list of dicts
    names = order(env, ORDER)
    failures = []
    shim = build_shim(env)
    for pinned in (False, True):
        pin(env.all_pids(), "0" if pinned else "0-1")
        try:
            for rep in range(reps):
                for size in sizes:
                    for n in names:
                        got = _measure(env, env.variants[n], size, pinned, seconds, failures, shim)
                        res.setdefault((pinned, size, n), []).append(got)
                        env.log(f"[latency] {'pinned' if pinned else 'unpinned'} rep {rep + 1} "
                                f"{size} B {n}: p50 {fmt(got['p50'])} p99 {fmt(got['p99'])} µs")
        finally:
            pin(env.all_pids(), "0-1")
    rows, ab = [], []
    for pinned in (False, True):
        for size in sizes:
            med = {n: {k: median([g[k] for g in res[(pinned, size, n)]]) for k in PCT}
                   for n in names}
            d = med["direct"]
            add = {n: {k: (None if med[n][k] is None or d[k] is None else med[n][k] - d[k])
                       for k in PCT} for n in names}
            h = add["haproxy"]
            if "base" in add:
                where = f"{'pinned' if pinned else 'unpinned'} {size} B"
                ab += [(f"{where} +p50 µs", add["uring"]["p50"], add["base"]["p50"]),
                       (f"{where} +p99 µs", add["uring"]["p99"], add["base"]["p99"])]
            for n in names:
                m, a = med[n], add[n]
                goal = "—"
                if n in ("uring", "epoll", "base"):
                    goal = _goal(pinned, a["p50"], a["p99"], h["p50"], h["p99"])
                rows.append(["pinned" if pinned else "unpinned", f"{size} B", env.variants[n].label,
                             m["p50"], m["p99"], m["p99.9"],
                             None if n == "direct" else a["p50"],
                             None if n == "direct" else a["p99"],
                             None if n in ("direct", "haproxy") else ratio(a["p50"], h["p50"]),
                             None if n in ("direct", "haproxy") else ratio(a["p99"], h["p99"]),
                             runs([g["p50"] for g in res[(pinned, size, n)]], 1), goal])
    hdr = ["cpu", "size", "path", "p50 µs", "p99 µs", "p99.9 µs", "+p50 over direct",
           "+p99 over direct", "+p50 × HAProxy's", "+p99 × HAProxy's", "p50 runs", "goal"]
    note = (f"sockperf ping-pong --tcp --full-rtt -t {seconds} (RTT in µs), {reps} interleaved "
            "rounds, median. Pinned: agents, peers, servers and client all on CPU 0 (taskset)."
            + (" sockperf's fixed 2 s post-warm-up sleep shortened to 0.2 s (LD_PRELOAD shim)."
               if shim else ""))
    if failures:
        note += (f" **{len(failures)} run(s) got no answers** and were retried once against a fresh "
                 "sockperf server on the next port (single-threaded; a connection the proxy never closes "
                 "wedges it): " + "; ".join(failures) + ".")
    out = "## latency\n\n" + note + "\n\n" + table(hdr, rows) + "\n"
    return out + ("\n" + ab_line(ab) + "\n" if ab else "")
