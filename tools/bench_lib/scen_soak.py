"""soak: MINUTES of mixed, checksummed traffic through two real agents (the io_uring pair).

    tools/bench soak MINUTES         (also: tools/dev bench soak MINUTES)

Workers in the client pod cu (node 1) run, side by side for exactly MINUTES:
  short  request/response exchanges (100 B - 2 KiB up, 100 B - 8 KiB down),
  long   streams of 2 - 8 MiB each way at the same time,
  churn  back-to-back connections carrying 0 - 64 bytes each way,
all to a soak server in pod su (node 2). Every connection carries a deterministic pseudo-random
payload per direction, seeded per connection; each end regenerates the bytes it expects and
compares SHA-256, so every byte is verified end to end (a short read counts as lost bytes).
Agent RSS is sampled every 5 s. Growth compares the median of the samples in the minute after
the warm-up (1 min, or a third of a shorter run) with the median of the last minute's samples
(medians smooth out the data in flight at one instant), and the idle RSS 40 s after the traffic
stopped (after the agent's periodic malloc_trim) shows what stays resident. The agents' heap in
use (`ambit_heap_in_use_bytes`, malloc's live bytes) is sampled alongside and compared the same
way: RSS that grows while live heap does not is allocator retention, not a leak.

Wire format of one soak connection (client → server first):
    header  b"SOAK" + seed u64 + up_len u64 + down_len u64   (big endian, 28 bytes)
    then    up_len bytes  client → server   (stream of Random(seed))
    and     down_len bytes server → client  (stream of Random(seed ^ DOWN_SALT)),
            followed by 32 bytes: SHA-256 of the upload as the server received it.
"""


COMMON = r"""
import hashlib, json, random, socket, struct, sys, threading, time
DOWN_SALT = 0x5A5A5A5A5A5A5A5A
CHUNK = 65536
HDR = struct.Struct(">4sQQQ")

def stream(seed, n):
    # Deterministic bytes in CHUNK pieces (both ends cut the stream the same way).
    rnd = random.Random(seed)
    while n > 0:
        k = min(CHUNK, n)
        yield rnd.randbytes(k)
        n -= k

def expected_hash(seed, n):
    h = hashlib.sha256()
    for piece in stream(seed, n):
        h.update(piece)
    return h.digest()

def recv_exact(s, n, h=None):
    # Reads n bytes (hashing them into h); returns how many arrived before EOF.
    got = 0
    while got < n:
        d = s.recv(min(CHUNK, n - got))
        if not d:
            break
        if h is not None:
            h.update(d)
        got += len(d)
    return got

def send_stream(s, seed, n):
    for piece in stream(seed, n):
        s.sendall(piece)
"""

SERVER = COMMON + r"""
stats = dict(conns=0, up_bytes=0, up_verified=0, up_lost=0, up_corrupt_conns=0, down_sent=0,
             errors=0, probes=0)
lock = threading.Lock()
errs = []

def serve(c):
    with c:
        try:
            c.settimeout(60)
            hdr = bytearray()
            while len(hdr) < HDR.size:
                d = c.recv(HDR.size - len(hdr))
                if not d and not hdr:
                    with lock:
                        stats["probes"] += 1  # a readiness probe: connected, sent nothing
                    return
                if not d:
                    raise EOFError("EOF in header")
                hdr += d
            magic, seed, up, down = HDR.unpack(bytes(hdr))
            if magic != b"SOAK":
                raise ValueError(f"bad magic {magic!r}")
            sender = threading.Thread(target=send_stream, args=(c, seed ^ DOWN_SALT, down))
            sender.start()
            h = hashlib.sha256()
            got = recv_exact(c, up, h)
            sender.join()
            digest = h.digest()
            c.sendall(digest)
            c.shutdown(socket.SHUT_WR)
            recv_exact(c, 1)  # the client closes after reading everything
            ok = got == up and digest == expected_hash(seed, up)
            with lock:
                stats["conns"] += 1
                stats["up_bytes"] += got
                stats["up_lost"] += up - got
                stats["down_sent"] += down
                if ok:
                    stats["up_verified"] += got
                elif got == up:
                    stats["up_corrupt_conns"] += 1
        except Exception as e:
            with lock:
                stats["conns"] += 1
                stats["errors"] += 1
                if len(errs) < 20:
                    errs.append(f"{e.__class__.__name__}: {e}")

def report():
    last = None
    while True:
        time.sleep(0.5)  # stats cadence
        with lock:
            now = json.dumps(dict(stats, samples=errs))
        if now != last:
            print("STATS " + now, flush=True)
            last = now

ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", int(sys.argv[1]))); ls.listen(1024)
threading.Thread(target=report, daemon=True).start()
print("ready", flush=True)
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

CLIENT = COMMON + r"""
ip, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
plan = json.loads(sys.argv[4])
deadline = time.monotonic() + seconds
stats = {}
lock = threading.Lock()
errs = []

def add(kind, **kv):
    with lock:
        s = stats.setdefault(kind, dict(conns=0, up_bytes=0, down_bytes=0, down_verified=0,
                                        down_lost=0, up_lost=0, corrupt_conns=0, errors=0))
        for k, v in kv.items():
            s[k] += v

def one(kind, seed, up, down):
    try:
        s = socket.create_connection((ip, port), timeout=30)
    except OSError as e:
        add(kind, errors=1)
        with lock:
            if len(errs) < 20: errs.append(f"{kind} connect: {e}")
        return
    with s:
        try:
            s.settimeout(60)
            s.sendall(HDR.pack(b"SOAK", seed, up, down))
            sender = threading.Thread(target=send_stream, args=(s, seed, up)) if up > CHUNK else None
            if sender: sender.start()
            else: send_stream(s, seed, up)
            h = hashlib.sha256()
            got = recv_exact(s, down, h)
            digest = bytearray()
            while len(digest) < 32:
                d = s.recv(32 - len(digest))
                if not d: break
                digest += d
            if sender: sender.join()
            ok_down = got == down and h.digest() == expected_hash(seed ^ DOWN_SALT, down)
            ok_up = bytes(digest) == expected_hash(seed, up)
            add(kind, conns=1, up_bytes=up, down_bytes=got, down_lost=down - got,
                down_verified=got if ok_down else 0, up_lost=0 if len(digest) == 32 else up,
                corrupt_conns=0 if (ok_down and ok_up) or got != down or len(digest) != 32 else 1)
        except Exception as e:
            add(kind, errors=1)
            with lock:
                if len(errs) < 20: errs.append(f"{kind}: {e.__class__.__name__}: {e}")

def worker(kind, wid, up_range, down_range, pause):
    rnd = random.Random(wid)
    n = 0
    while time.monotonic() < deadline:
        seed = (wid << 40) | n
        one(kind, seed, rnd.randint(*up_range), rnd.randint(*down_range))
        n += 1
        if pause: time.sleep(pause)  # pacing between exchanges of this worker

threads = []
for i, (kind, count, up, down, pause) in enumerate(plan):
    for j in range(count):
        t = threading.Thread(target=worker, args=(kind, i * 1000 + j, up, down, pause))
        t.start(); threads.append(t)
for t in threads:
    t.join()
print("RESULT " + json.dumps(dict(kinds=stats, samples=errs)), flush=True)
"""

import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

from harness import in_netns, wait_tcp  # noqa: E402

from .measure import fmt, rss_kb, table  # noqa: E402

PORT = 9100
# kind, workers, up bytes (min, max), down bytes (min, max), pause between connections (s)
PLAN = [("short", 4, (100, 2048), (100, 8192), 0.0),
        ("long", 2, (2 << 20, 8 << 20), (2 << 20, 8 << 20), 0.0),
        ("churn", 2, (0, 64), (0, 64), 0.0)]


def _last_stats(path):
    last = None
    with open(path) as f:
        for line in f:
            if line.startswith("STATS "):
                last = json.loads(line[6:])
    return last


def _wait_server(path, conns, timeout):
    """The server's counters once it has finished `conns` connections (it reports every 0.5 s)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = _last_stats(path)
        if last is not None and last["conns"] >= conns:
            return last
        time.sleep(0.1)  # poll interval of a wait-with-timeout
    return last


def _metric(env, node, name):
    def body():
        return urllib.request.urlopen("http://127.0.0.1:15020/metrics", timeout=3).read().decode()
    try:
        text = in_netns(env.topo.node_ns(node), body)
    except OSError:
        return None
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
               if l.startswith(name) and not l.startswith("#"))


def _totals(client, server):
    kinds = client["kinds"]
    c = {k: sum(v[k] for v in kinds.values()) for k in
         ("conns", "up_bytes", "down_bytes", "down_verified", "down_lost", "corrupt_conns", "errors")}
    verified = c["down_verified"] + server["up_verified"]
    moved = c["up_bytes"] + c["down_bytes"]
    return dict(c, verified=verified, moved=moved, lost=c["down_lost"] + server["up_lost"],
                corrupt=c["corrupt_conns"] + server["up_corrupt_conns"],
                errors_all=c["errors"] + server["errors"])


def run(env, minutes):
    seconds = minutes * 60.0
    warm = min(60.0, seconds / 3)
    su, cu = env.pods["su"], env.pods["cu"]
    pids = [env.agent_pids[1], env.agent_pids[2]]
    server, spath = env.spawn(su.ns, [sys.executable, "-c", SERVER, str(PORT)], "soak-server")
    env.servers.append(server.pid)
    wait_tcp(su.ns, su.ip, PORT, timeout=10)
    wait_tcp(cu.ns, su.ip, PORT, timeout=10)  # through both agents
    cpath = os.path.join(env.dir, "soak-client.log")
    env.log(f"[soak] {minutes} min of mixed traffic cu -> su:{PORT}; warm-up {warm:.0f} s")
    t0 = time.monotonic()
    client = subprocess.Popen(["ip", "netns", "exec", cu.ns, sys.executable, "-c", CLIENT, su.ip,
                               str(PORT), str(seconds), json.dumps(PLAN)],
                              stdout=open(cpath, "w"), stderr=subprocess.STDOUT)
    env.topo.procs.append(client)
    samples = []  # (seconds since start, [rss A, rss B, heap A, heap B] in KB)
    stop = threading.Event()

    def heap_kb(node):
        v = _metric(env, node, "ambit_heap_in_use_bytes")
        return None if v is None else v / 1024

    def sample():
        while not stop.wait(5.0):
            samples.append((time.monotonic() - t0,
                            [rss_kb(p) for p in pids] + [heap_kb(1), heap_kb(2)]))
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        client.wait(timeout=seconds + 90)
    except subprocess.TimeoutExpired:
        client.kill()
        client.wait(timeout=10)
    stop.set()
    sampler.join(timeout=10)
    wall = time.monotonic() - t0
    with open(cpath) as f:
        out = f.read()
    res = [l for l in out.splitlines() if l.startswith("RESULT ")]
    if client.returncode != 0 or not res:
        raise RuntimeError(f"soak client failed (exit {client.returncode}): {out[-1500:]}")
    cres = json.loads(res[-1][7:])
    conns = sum(v["conns"] + v["errors"] for v in cres["kinds"].values())
    sres = _wait_server(spath, conns, timeout=30) or {}
    window = min(60.0, (seconds - warm) / 2)

    def median_in(lo, hi):
        picked = [v for t, v in samples if lo <= t < hi]
        if not picked:
            return None
        out = []
        for i in range(len(pids) * 2):
            vals = [v[i] for v in picked if v[i] is not None]
            out.append(statistics.median(vals) if vals else None)
        return out
    start = median_in(warm, warm + window)
    end = median_in(seconds - window, seconds)
    env.log(f"[soak] medians (RSS A, B, heap A, B in KB): after warm-up {start}, last minute {end}; "
            f"waiting 40 s idle")
    time.sleep(40)
    idle = [rss_kb(p) for p in pids] + [heap_kb(1), heap_kb(2)]
    end = end or idle
    return _report(env, minutes, wall, warm, cres, sres, start, end, idle)


def _growth(a, b):
    return None if not a or b is None else (b - a) * 100.0 / a


def _mb(values):
    return " / ".join("n/a" if x is None else fmt(x / 1024, 1) for x in values)


def _report(env, minutes, wall, warm, cres, sres, start, end, idle):
    t = _totals(cres, dict(dict(up_verified=0, up_lost=0, up_corrupt_conns=0, errors=0), **sres))
    opened = [_metric(env, n, "istio_tcp_connections_opened_total") for n in (1, 2)]
    alive = env.agents_alive()
    rows = []
    for kind, v in sorted(cres["kinds"].items()):
        rows.append([kind, f"{v['conns']:,}", fmt((v["up_bytes"] + v["down_bytes"]) / 1e6, 1),
                     str(v["errors"]), str(v["corrupt_conns"]), f"{v['down_lost']:,}"])
    per = table(["kind", "connections", "MB moved", "errors", "corrupt conns", "bytes lost (down)"],
                rows)
    start = start or [None] * 4
    growth = [_growth(a, b) for a, b in zip(start, end)]
    ok = (t["errors_all"] == 0 and t["corrupt"] == 0 and t["lost"] == 0
          and t["verified"] == t["moved"] and all(alive.values()))
    summary = table(["figure", "value"], [
        ["duration", f"{minutes} min (wall {wall:.0f} s)"],
        ["connections (client / server)", f"{t['conns']:,} / {sres.get('conns', 0):,}"],
        ["connections opened per agents' metrics (A / B)", " / ".join(fmt(x, 0) for x in opened)],
        ["bytes moved / verified", f"{t['moved']:,} / {t['verified']:,} "
                                   f"({t['verified'] / 1e9:.2f} GB)"],
        ["errors (client + server)", str(t["errors_all"])],
        ["corrupted connections", str(t["corrupt"])],
        ["lost bytes", f"{t['lost']:,}"],
        [f"agent RSS MB, median of the minute after the {warm:.0f} s warm-up (A / B)", _mb(start[:2])],
        ["agent RSS MB, median of the last minute (A / B)", _mb(end[:2])],
        ["RSS growth % (A / B) (goal < 5 %)", " / ".join(fmt(g, 1) for g in growth[:2])],
        ["agent RSS MB 40 s after the traffic stopped (A / B)", _mb(idle[:2])],
        ["agent heap in use MB, median of the minute after warm-up (A / B)", _mb(start[2:])],
        ["agent heap in use MB, median of the last minute (A / B)", _mb(end[2:])],
        ["heap-in-use growth % (A / B)", " / ".join(fmt(g, 1) for g in growth[2:])],
        ["agent heap in use MB 40 s after the traffic stopped (A / B)", _mb(idle[2:])],
        ["agents alive at end", "yes" if all(alive.values()) else f"**no** {alive}"],
        ["verdict", "pass" if ok else "**FAIL**"],
    ])
    samples = cres.get("samples", []) + sres.get("samples", [])
    note = ("Mixed traffic through the io_uring agent pair (client pod cu on node 1 → server pod "
            "su on node 2), every byte of both directions checked with SHA-256 against a "
            "regenerated per-connection pseudo-random stream. Workers: "
            + ", ".join(f"{k} ×{n}" for k, n, *_ in PLAN) + ".")
    text = "## soak\n\n" + note + "\n\n" + summary + "\n\n" + per + "\n"
    if samples:
        text += "\nfirst errors: " + "; ".join(samples[:5]) + "\n"
    return text
