"""throughput: iperf3 client pod -> server pod per variant, 1 stream and 4 parallel streams;
Gbit/s per proxy core, and for the proxies' kernel work: minor page faults, syscalls and
madvise calls per GB relayed (BENCHMARKS.md: faults ≈ 0 once buffers are reused).

Several streams matter: one connection's placement (worker, buffer sizes) can decide whether a
run is in the fast or the churning mode (issue 20), so the 4-stream rows show what a single
stream can hide."""
import json

from .env import order
from .measure import CpuMeter, KernelMeter, ab_line, fmt, median, per_gb, ratio, runs, table, verdict

ORDER = ["direct", "uring", "epoll", "stunnel", "haproxy"]
STREAMS = (1, 4)
# A fixed-rate row: every path carries the same bytes per second, so CPU per GB compares the
# paths' work even on a machine whose other tenants decide how much CPU a saturating run gets.
FIXED_RATE = "400M"


def _once(env, v, seconds, streams, rate=None):
    args = ["iperf3", "-c", v.ip, "-p", str(v.port_of["iperf"]), "-t", str(seconds), "-O", "1",
            "-P", str(streams), "-J", "--connect-timeout", "3000"] + (["-b", rate] if rate else [])
    with CpuMeter(v.pids) as m, KernelMeter(v.pids) as k:
        r = env.exec_in(v.client_ns, args, timeout=seconds + 15)
    try:
        out = json.loads(r.stdout)
        end = out["end"]["sum_received"]
        gbps = end["bits_per_second"] / 1e9
        # The omitted first second (-O 1) is relayed too: count its bytes for the per-GB figures.
        measured = end["bytes"] + sum(iv["sum"]["bytes"] for iv in out.get("intervals", [])
                                      if iv["sum"].get("omitted"))
    except (ValueError, KeyError, TypeError):
        env.log(f"[throughput] {v.name}: iperf3 failed: {r.stdout[-300:]} {r.stderr[-300:]}")
        return None
    kern = {"faults": per_gb(k.faults, measured), "syscalls": per_gb(k.syscalls, measured),
            "madvise": per_gb(k.madvise, measured)} if v.pids else {}
    kern["cpu_ms_gb"] = per_gb(m.cpu * 1000, measured) if v.pids else None
    return {"gbps": gbps, "cores": m.cores if v.pids else None, **kern}


def _summary(samples):
    def col(key):
        return [s.get(key) if s else None for s in samples]
    per_core = [None if (s is None or s.get("cores") in (None, 0)) else s["gbps"] / (s["cores"] / 2)
                for s in samples]
    return {"gbps": median(col("gbps")), "gbps_runs": col("gbps"), "cores": median(col("cores")),
            "per_core": median(per_core), "faults": median(col("faults")),
            "faults_runs": col("faults"), "syscalls": median(col("syscalls")),
            "madvise": median(col("madvise")), "cpu_ms_gb": median(col("cpu_ms_gb")),
            "cpu_ms_gb_runs": col("cpu_ms_gb")}


def run(env, reps=3, seconds=5):
    names = order(env, ORDER)
    keys = list(STREAMS) + ["fixed"]
    res = {(n, p): [] for n in names for p in keys}
    for rep in range(reps):
        for p in keys:
            for n in names:
                s = (_once(env, env.variants[n], seconds, 1, FIXED_RATE) if p == "fixed"
                     else _once(env, env.variants[n], seconds, p))
                res[(n, p)].append(s)
                how = f"-b {FIXED_RATE}" if p == "fixed" else f"-P {p}"
                env.log(f"[throughput] rep {rep + 1} {n} {how}: " + (f"{fmt(s['gbps'])} Gbit/s, proxies {fmt(s['cores'])} cores, "
                           f"{fmt(s.get('cpu_ms_gb'))} CPU-ms/GB, "
                           f"{fmt(s.get('faults'))} faults/GB, {fmt(s.get('syscalls'))} syscalls/GB"
                           if s else "failed"))
                env.settle()
    sections = []
    for p in STREAMS:
        summ = {n: _summary(res[(n, p)]) for n in names}
        hap = summ["haproxy"]["per_core"]
        rows = []
        for n in names:
            s = summ[n]
            goal = "—"
            if n in ("uring", "epoll", "base"):
                r = ratio(s["per_core"], hap)
                goal = (f"≥ 10 Gbit/s/core: {verdict(s['per_core'] is not None and s['per_core'] >= 10)}; "
                        f"≥ 2× HAProxy: {verdict(r is not None and r >= 2)}")
            rows.append([env.variants[n].label, s["gbps"], runs(s["gbps_runs"]), s["cores"],
                         s["per_core"], ratio(s["gbps"], summ["direct"]["gbps"]),
                         ratio(s["per_core"], hap) if n != "direct" else None,
                         s["faults"], runs(s["faults_runs"], 0), s["syscalls"], s["madvise"], goal])
        hdr = ["path", "Gbit/s (median)", "runs", "proxy cores (both)", "Gbit/s per proxy core",
               "× direct", "per-core × HAProxy", "minor faults / GB", "faults/GB runs",
               "syscalls / GB", "madvise / GB", "goal"]
        sections.append(f"### {p} stream{'s' if p > 1 else ''} (iperf3 -P {p})\n\n" + table(hdr, rows))
        if "base" in summ:
            sections.append(_ab_line(summ))
    sections.append(_fixed_section(env, names, res, reps))
    note = (f"iperf3 -t {seconds} -O 1, 1 and 4 parallel streams, {reps} interleaved rounds. Gbit/s "
            "per proxy core = Gbit/s ÷ (CPU-seconds of both proxies ÷ wall ÷ 2), CPU from "
            "/proc/<pid>/stat over the process tree. Faults, syscalls and madvise per GB: both "
            "proxies together (minflt from /proc/<pid>/stat; syscalls from `perf stat -e "
            "raw_syscalls:sys_enter,syscalls:sys_enter_madvise -p`), per GB received by iperf3 "
            "over the whole run including the omitted first second; goal: faults ≈ 0.")
    return "## throughput\n\n" + note + "\n\n" + "\n\n".join(sections) + "\n"


def _fixed_section(env, names, res, reps):
    summ = {n: _summary(res[(n, "fixed")]) for n in names}
    hap = summ["haproxy"]["cpu_ms_gb"]
    rows = [[env.variants[n].label, summ[n]["gbps"], summ[n]["cpu_ms_gb"],
             runs(summ[n]["cpu_ms_gb_runs"], 0), ratio(summ[n]["cpu_ms_gb"], hap),
             summ[n]["faults"], summ[n]["syscalls"]] for n in names if n != "direct"]
    hdr = ["path", "Gbit/s", "proxy CPU-ms / GB (both)", "runs", "CPU/GB × HAProxy's",
           "minor faults / GB", "syscalls / GB"]
    out = (f"### 1 stream at a fixed {FIXED_RATE}bit/s (iperf3 -b {FIXED_RATE})\n\n"
           "Same bytes per second on every path: CPU per GB is the proxies' work per byte, "
           "less sensitive than a saturating run to how much CPU other tenants leave.\n\n"
           + table(hdr, rows))
    if "base" in summ:
        new, old = summ["uring"], summ["base"]
        out += "\n\n" + ab_line([("CPU-ms/GB", new["cpu_ms_gb"], old["cpu_ms_gb"]),
                                  ("faults/GB", new["faults"], old["faults"]),
                                  ("syscalls/GB", new["syscalls"], old["syscalls"])])
    return out


def _ab_line(summ):
    new, old = summ["uring"], summ["base"]
    return ab_line([(what, new[key], old[key]) for key, what in (
        ("per_core", "Gbit/s per proxy core"), ("gbps", "Gbit/s"), ("faults", "faults/GB"),
        ("syscalls", "syscalls/GB"), ("madvise", "madvise/GB"))])
