"""throughput: iperf3, one stream, client pod -> server pod, per variant; Gbit/s per proxy core."""
import json

from .measure import CpuMeter, fmt, median, ratio, runs, table, verdict

ORDER = ["direct", "uring", "epoll", "stunnel", "haproxy"]


def _once(env, v, seconds):
    args = ["iperf3", "-c", v.ip, "-p", str(v.port_of["iperf"]), "-t", str(seconds), "-O", "1",
            "-J", "--connect-timeout", "3000"]
    with CpuMeter(v.pids) as m:
        r = env.exec_in(v.client_ns, args, timeout=seconds + 15)
    try:
        gbps = json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9
    except (ValueError, KeyError, TypeError):
        env.log(f"[throughput] {v.name}: iperf3 failed: {r.stdout[-300:]} {r.stderr[-300:]}")
        return None, None
    return gbps, (m.cores if v.pids else None)


def run(env, reps=3, seconds=5):
    res = {n: {"gbps": [], "cores": []} for n in ORDER}
    for rep in range(reps):
        for n in ORDER:
            g, c = _once(env, env.variants[n], seconds)
            res[n]["gbps"].append(g)
            res[n]["cores"].append(c)
            env.log(f"[throughput] rep {rep + 1} {n}: {fmt(g)} Gbit/s, proxies {fmt(c)} cores")
            env.settle()
    rows, summary = [], {}
    for n in ORDER:
        g = median(res[n]["gbps"])
        per_core = [None if (x is None or c in (None, 0)) else x / (c / 2)
                    for x, c in zip(res[n]["gbps"], res[n]["cores"])]
        summary[n] = (g, median(res[n]["cores"]), median(per_core))
    hap = summary["haproxy"][2]
    for n in ORDER:
        g, c, pc = summary[n]
        goal = "—"
        if n in ("uring", "epoll"):
            r = ratio(pc, hap)
            goal = (f"≥ 10 Gbit/s/core: {verdict(pc is not None and pc >= 10)}; "
                    f"≥ 2× HAProxy: {verdict(r is not None and r >= 2)}")
        rows.append([env.variants[n].label, g, runs(res[n]["gbps"]), c, pc,
                     ratio(g, summary["direct"][0]), ratio(pc, hap) if n != "direct" else None,
                     goal])
    hdr = ["path", "Gbit/s (median)", "runs", "proxy cores (both)", "Gbit/s per proxy core",
           "× direct", "per-core × HAProxy", "goal"]
    note = (f"iperf3 -t {seconds} -O 1, 1 stream, {reps} interleaved rounds. Gbit/s per proxy core "
            "= Gbit/s ÷ (CPU-seconds of both proxies ÷ wall ÷ 2), CPU from /proc/<pid>/stat "
            "over the process tree.")
    return "## throughput\n\n" + note + "\n\n" + table(hdr, rows) + "\n"
