"""profile: `tools/bench profile SCENARIO [--event EVENT]` — where the agents' cycles (or page
faults, context switches...) go under one scenario's load, through the io_uring agents.

perf record --call-graph dwarf on both io_uring agents while the load runs, then:
  - a top-N table by symbol (self samples, perf report --no-children), in the markdown;
  - a folded stack file (`frame;frame;frame count` per line, leaf last) next to the markdown,
    ready for flamegraph.pl / speedscope / inferno, and the top leaf-to-root stacks inline.
Loads: throughput = iperf3 -P 4, latency = sockperf ping-pong 64 B, rps = wrk -c32 1 KiB POST,
connections = wrk -c16 Connection: close. Not part of `all`; needs perf.
"""
import collections
import os
import shutil
import signal
import subprocess
import time

from .measure import KernelMeter, fmt, table, tree

LOADS = ("throughput", "latency", "rps", "connections")


def _load(env, v, scenario, seconds):
    if scenario == "throughput":
        return ["iperf3", "-c", v.ip, "-p", str(v.port_of["iperf"]), "-t", str(seconds), "-P", "4",
                "--connect-timeout", "3000"]
    if scenario == "latency":
        return ["sockperf", "ping-pong", "--tcp", "-i", v.ip, "-p", str(v.port_of["sockperf"]),
                "-m", "64", "-t", str(seconds)]
    from .scen_http import scripts
    sc = scripts(env.dir)
    url = f"http://{v.ip}:{v.port_of['http']}/"
    if scenario == "rps":
        return ["wrk", "-t1", "-c32", f"-d{seconds}s", "-s", sc["sat"], url]
    return ["wrk", "-t1", "-c16", f"-d{seconds}s", "-s", sc["close"], url]


def fold(script_text, per_second=None):
    """perf script output (with callchains) -> {"root;...;leaf": samples}; per_second (a
    Counter) gets samples by whole second since the first sample."""
    stacks = collections.Counter()
    frames = []
    t0 = None

    def flush():
        if frames:
            stacks[";".join(reversed(frames))] += 1
            frames.clear()

    for line in script_text.splitlines():
        if not line.strip():
            flush()
            continue
        if line[0] not in " \t":  # sample header: "comm tid time: event:"
            flush()
            if per_second is not None:
                for w in line.split():
                    if w.endswith(":") and w[:-1].replace(".", "", 1).isdigit():
                        t = float(w[:-1])
                        t0 = t if t0 is None else t0
                        per_second[int(t - t0)] += 1
                        break
            continue
        parts = line.strip().split(None, 1)  # "addr sym+off (dso)"
        if len(parts) < 2:
            continue
        sym = parts[1].rsplit(" (", 1)[0]
        sym = sym.split("+0x", 1)[0] if "+0x" in sym else sym
        frames.append(sym.replace(";", ":") or "[unknown]")
    flush()
    return stacks


def _top_symbols(report_text, n):
    rows = []
    for line in report_text.splitlines():
        s = line.strip()
        if not s or s.startswith("#") or "%" not in s.split()[0]:
            continue
        parts = s.split(None, 3)
        if len(parts) < 4:
            continue
        pct, comm, dso, sym = parts[0], parts[1], parts[2], parts[3]
        rows.append([pct, comm, dso, sym.replace("[.] ", "").replace("[k] ", "(kernel) ")[:110]])
        if len(rows) >= n:
            break
    return rows


def _threads(pids):
    """Names of the threads of pids, with their tid: {"iou-wrk-123/456", ...}."""
    out = set()
    for p in tree(pids):
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/comm") as f:
                    out.add(f"{f.read().strip()}/{tid}")
        except OSError:
            pass
    return out


def run(env, scenario, seconds=5, event="cycles", out_base="bench-profile", top=25):
    if shutil.which("perf") is None:
        return "## profile\n\nperf not installed (linux-perf)\n"
    if scenario not in LOADS:
        return f"## profile\n\nunknown load {scenario!r} (one of {', '.join(LOADS)})\n"
    v = env.variants["uring"]
    pids = ",".join(str(p) for p in v.pids)
    data = os.path.join(env.dir, "perf.data")
    rec = ["perf", "record", "-q", "-e", event, "--call-graph", "dwarf,16384", "-p", pids, "-o", data]
    # Time-based events are sampled; counted ones (faults, switches, tracepoints) every time.
    rec[3:3] = ["-F", "499"] if event in ("cycles", "cpu-clock", "task-clock") else ["-c", "1"]
    perf = subprocess.Popen(rec, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)  # attached before the load starts
    with KernelMeter(v.pids) as k:
        threads0 = _threads(v.pids)
        r = env.exec_in(v.client_ns, _load(env, v, scenario, seconds), timeout=seconds + 20)
        threads1 = _threads(v.pids)
    perf.send_signal(signal.SIGINT)
    try:
        _, err = perf.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        perf.kill()
        _, err = perf.communicate()
    if not os.path.exists(data):
        return f"## profile\n\nperf record failed: {err[-500:]}\n"
    rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort",
                          "comm,dso,sym", "-g", "none", "--percent-limit", "0.5"],
                         capture_output=True, text=True, timeout=300)
    scr = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid,time,event,ip,sym,dso"],
                         capture_output=True, text=True, timeout=600)
    per_second = collections.Counter()
    stacks = fold(scr.stdout, per_second)
    folded = f"{out_base}-{scenario}-{event.replace(':', '_')}.folded"
    with open(folded, "w") as f:
        for st, n in stacks.most_common():
            f.write(f"{st} {n}\n")
    total = sum(stacks.values())
    load_ok = "" if r.returncode == 0 else f" (load exited {r.returncode}: {r.stderr[-200:]})"
    out = [f"## profile {scenario} ({event})",
           "",
           f"Load: `{' '.join(_load(env, v, scenario, seconds))}`{load_ok}, through the io_uring "
           f"agents (pids {pids}); `perf record -e {event} --call-graph dwarf`. {total:,} samples. "
           f"Folded stacks (flame-graph-ready): `{folded}`. Over the same run /proc counted "
           f"{fmt(k.faults)} minor faults and perf stat {fmt(k.syscalls)} syscalls in the agents; "
           f"threads seen only after perf attached (perf -p misses them, e.g. io_uring io-wq "
           f"workers): {', '.join(sorted(threads1 - threads0)) or 'none'}.",
           "",
           "Samples per second of the run (first sample = 0 s): "
           + ", ".join(f"{sec}: {per_second[sec]:,}" for sec in range(max(per_second, default=-1) + 1))
           + ".",
           "",
           "Top symbols (self):",
           "",
           table(["self %", "thread", "dso", "symbol"], _top_symbols(rep.stdout, top)),
           "",
           "Top stacks (leaf ← callers, 8 frames):",
           ""]
    rows = []
    for st, n in stacks.most_common(12):
        frames = st.split(";")[::-1][:8]
        rows.append([fmt(100.0 * n / total if total else 0, 1), " ← ".join(frames)[:300]])
    out.append(table(["%", "stack"], rows))
    return "\n".join(out) + "\n"
