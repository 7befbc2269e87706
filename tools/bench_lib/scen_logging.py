"""logging: what the access log costs (issue #8) — a burst of N new connections through the
io_uring agent pair with access logging on (level `info`, text: one `connection complete` line
per connection on each agent) and off (level `warn`), interleaved on/off ×reps, median.

The level is switched on both running agents through the admin API (`POST
/logging?level=info|warn`), which sets the same levels as `--log-level info|warn` without
restarting (so no cold pools or caches in either arm). Connections: `ab -n N -c 16` (one TCP
connection per request, no keep-alive) against the HAProxy HTTP responder in the server pod.
`ambit_log_lines_dropped` (both agents) is read after every run; its growth is reported.
"""
import re
import shutil
import urllib.request

from harness import in_netns

from .measure import CpuMeter, fmt, median, runs, table, verdict

CONCURRENCY = 16
LEVELS = {"on": "info", "off": "warn"}


def _admin(env, node, method, path):
    def body():
        req = urllib.request.Request(f"http://127.0.0.1:15000{path}", method=method)
        return urllib.request.urlopen(req, timeout=3).read().decode()
    return in_netns(env.topo.node_ns(node), body)


def _dropped(env, node):
    def body():
        return urllib.request.urlopen("http://127.0.0.1:15020/metrics", timeout=3).read().decode()
    text = in_netns(env.topo.node_ns(node), body)
    m = re.search(r"^ambit_log_lines_dropped(?:_total)?(?:\{[^}]*\})? ([0-9.e+]+)$", text, re.M)
    return int(float(m.group(1))) if m else None


def _set_level(env, level):
    for node in (1, 2):
        out = _admin(env, node, "POST", f"/logging?level={level}")
        if f"default={level}" not in out:
            raise RuntimeError(f"agent {node}: setting log level {level} answered {out!r}")


def _access_lines(env, node):
    return sum(1 for line in env.amb.log(node).splitlines() if "connection complete" in line)


def _burst(env, v, n):
    url = f"http://{v.ip}:{v.port_of['http']}/"
    args = ["ab", "-q", "-n", str(n), "-c", str(CONCURRENCY), "-s", "10", url]
    with CpuMeter(v.pids) as m:
        r = env.exec_in(v.client_ns, args, timeout=120)
    rps = re.search(r"Requests per second:\s*([\d.]+)", r.stdout)
    done = re.search(r"Complete requests:\s*(\d+)", r.stdout)
    failed = re.search(r"Failed requests:\s*(\d+)", r.stdout)
    non2xx = re.search(r"Non-2xx responses:\s*(\d+)", r.stdout)
    if not rps or not done:
        env.log(f"[logging] ab failed: {r.stdout[-300:]} {r.stderr[-300:]}")
        return None
    errors = int(failed.group(1)) if failed else 0
    errors += int(non2xx.group(1)) if non2xx else 0
    return dict(rps=float(rps.group(1)), done=int(done.group(1)), errors=errors,
                cores=m.cores)


def run(env, reps=3, n=100000):
    if shutil.which("ab") is None:
        return "## logging\n\n`ab` not installed (apache2-utils; tools/dev bench installs it)\n"
    v = env.variants["uring"]
    res = {arm: [] for arm in LEVELS}
    drops = {arm: [] for arm in LEVELS}
    lines = {arm: [] for arm in LEVELS}
    try:
        for rep in range(reps):
            for arm, level in LEVELS.items():
                _set_level(env, level)
                d0 = [_dropped(env, node) for node in (1, 2)]
                l0 = [_access_lines(env, node) for node in (1, 2)]
                got = _burst(env, v, n)
                env.settle(1.0)  # the async writer drains; TIME_WAIT ports are reused anyway
                d1 = [_dropped(env, node) for node in (1, 2)]
                l1 = [_access_lines(env, node) for node in (1, 2)]
                res[arm].append(got)
                drops[arm].append(sum((b or 0) - (a or 0) for a, b in zip(d0, d1)))
                lines[arm].append(sum(b - a for a, b in zip(l0, l1)))
                env.log(f"[logging] rep {rep + 1} access log {arm}: "
                        f"{fmt(got and got['rps'])} conns/s, errors {got and got['errors']}, "
                        f"access lines {lines[arm][-1]}, dropped {drops[arm][-1]}")
    finally:
        _set_level(env, "info")  # BenchEnv's agents run at info
    return _report(env, reps, n, res, drops, lines)


def _report(env, reps, n, res, drops, lines):
    def col(arm, key):
        return [None if r is None else r[key] for r in res[arm]]
    on, off = median(col("on", "rps")), median(col("off", "rps"))
    slowdown = None if not on or not off else (off - on) * 100.0 / off
    rows = []
    for arm in LEVELS:
        rows.append([f"access log {arm} (`{LEVELS[arm]}`)", median(col(arm, "rps")),
                     runs(col(arm, "rps"), 0), median(col(arm, "cores")),
                     str(sum(e or 0 for e in col(arm, "errors"))),
                     " / ".join(str(x) for x in lines[arm]), " / ".join(str(x) for x in drops[arm])])
    hdr = ["arm", "new conns/s (median)", "runs", "agent cores (both)", "failed requests",
           "access lines written per run (both agents)", "ambit_log_lines_dropped growth per run"]
    goal = f"slowdown {fmt(slowdown, 1)} % (goal ≤ 5 %: {verdict(slowdown is not None and slowdown <= 5)})"
    note = (f"{n:,} connections per run (`ab -n {n} -c {CONCURRENCY}`, one GET and a 1 KiB answer "
            "per TCP connection, no keep-alive), client pod cu → server pod su through the io_uring "
            f"agent pair, access log on (`info`, text) vs off (`warn`), interleaved ×{reps}, "
            "median. Level switched on the live agents with `POST /logging?level=`. With the log "
            "on, each connection writes one `connection complete` line on each agent.")
    return "## logging\n\n" + note + "\n\n" + table(hdr, rows) + "\n\n" + goal + "\n"
