"""CPU, memory and statistics helpers for tools/bench (Python 3 stdlib only)."""
import os
import shutil
import signal
import statistics
import subprocess
import time

TICK = os.sysconf("SC_CLK_TCK")


def _children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def tree(pids):
    """pids and all their descendants."""
    seen, todo = [], list(pids)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo += _children(p)
    return seen


def cpu_seconds(pids):
    """utime+stime (seconds) summed over the process trees of pids."""
    total = 0
    for p in tree(pids):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except (OSError, IndexError, ValueError):
            pass
    return total / TICK


def minor_faults(pids):
    """Minor page faults (minflt) summed over the process trees of pids (all threads)."""
    total = 0
    for p in tree(pids):
        try:
            with open(f"/proc/{p}/stat") as f:
                total += int(f.read().rsplit(")", 1)[1].split()[7])  # minflt (field 10)
        except (OSError, IndexError, ValueError):
            pass
    return total


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class CpuMeter:
    """with CpuMeter(pids) as m: ...; m.cores = CPU-seconds / wall seconds (all pids)."""

    def __init__(self, pids):
        self.pids = list(pids)

    def __enter__(self):
        self.t0, self.c0 = time.monotonic(), cpu_seconds(self.pids)
        return self

    def __exit__(self, *exc):
        self.wall = time.monotonic() - self.t0
        self.cpu = cpu_seconds(self.pids) - self.c0
        self.cores = self.cpu / self.wall if self.wall > 0 else 0.0
        return False


class KernelMeter:
    """with KernelMeter(pids) as k: ...; k.faults (minor page faults, /proc), k.syscalls and
    k.madvise (perf stat tracepoints; None when perf cannot attach). Counts cover every thread
    the processes have when the meter starts (agents start their workers at boot)."""

    EVENTS = "raw_syscalls:sys_enter,syscalls:sys_enter_madvise"

    def __init__(self, pids):
        self.pids = [p for p in tree(pids)]
        self.faults = self.syscalls = self.madvise = None
        self._perf = None

    def __enter__(self):
        self.f0 = minor_faults(self.pids)
        if self.pids and shutil.which("perf"):
            self._perf = subprocess.Popen(
                ["perf", "stat", "-x", ",", "--no-big-num", "-e", self.EVENTS, "-p",
                 ",".join(str(p) for p in self.pids)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            time.sleep(0.2)  # perf attaches before the measured work starts
        return self

    def __exit__(self, *exc):
        self.faults = minor_faults(self.pids) - self.f0
        if self._perf is not None:
            self._perf.send_signal(signal.SIGINT)
            try:
                _, err = self._perf.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self._perf.kill()
                _, err = self._perf.communicate()
            counts = {}
            for line in err.splitlines():
                f = line.split(",")
                if len(f) > 2 and f[0].strip().isdigit():
                    counts[f[2]] = int(f[0])
            self.syscalls = counts.get("raw_syscalls:sys_enter")
            self.madvise = counts.get("syscalls:sys_enter_madvise")
        return False


def per_gb(count, nbytes):
    if count is None or not nbytes:
        return None
    return count / (nbytes / 1e9)


def pin(pids, cpus):
    for p in tree(pids):
        subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(p)], capture_output=True)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=2):
    if x is None:
        return "n/a"
    if isinstance(x, str):
        return x
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if 0 < abs(x) < 0.1:
        return f"{x:.3f}"
    return f"{x:.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def runs(xs, digits=2):
    return " / ".join(fmt(x, digits) for x in xs)


def verdict(ok):
    if ok is None:
        return "n/a"
    return "met" if ok else "**missed**"


def table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in rows:
        out.append("| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in r) + " |")
    return "\n".join(out)


def ab_line(items):
    """One A/B summary line: items are (what, this build, baseline) medians of the same run."""
    parts = [f"{what} {fmt(old)} → {fmt(new)} ({fmt(ratio(new, old))}×)" for what, new, old in items]
    return "**A/B** (baseline → this build, medians of this run; ratio = this ÷ baseline): " + "; ".join(parts)
