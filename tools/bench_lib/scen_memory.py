"""memory: proxy RSS idle and with N idle tunnelled connections; KB per connection."""
import socket
import time

from harness import in_netns

from .env import order
from .measure import ab_line, fmt, median, rss_kb, table, verdict

ORDER = ["uring", "epoll", "haproxy"]


def _open(ip, port, n, deadline):
    """Opens up to n connections, each confirmed end to end by the holder's 1-byte greeting."""
    socks, err = [], None
    while len(socks) < n and time.monotonic() < deadline:
        try:
            s = socket.create_connection((ip, port), timeout=3)
            s.settimeout(3)
            if s.recv(1) != b"k":
                s.close()
                err = "no greeting (tunnel not up)"
                break
            socks.append(s)
        except OSError as e:
            err = str(e)
            break
    return socks, err


def _hold(env, v, n, budget):
    def body():
        socks, err = _open(v.ip, v.port_of["hold"], n, time.monotonic() + budget)
        time.sleep(1.0)  # let the proxies finish allocating before reading RSS
        rss = [rss_kb(p) for p in v.pids]
        for s in socks:
            s.close()
        return len(socks), err, rss
    return in_netns(v.client_ns, body)


def run(env, n=10000, budget=60):
    rows, ab = [], {}
    for name in order(env, ORDER):
        v = env.variants[name]
        want = n
        if name == "haproxy":  # A holds 2 fds per connection; keep under the fd limit
            want = min(n, 8900, (env.fd_limit - 200) // 2 - 100)  # its maxconn is 9000
        idle = [rss_kb(p) for p in v.pids]
        got, err, rss = _hold(env, v, want, budget)
        env.log(f"[memory] {name}: idle {idle} KB, {got} connections -> {rss} KB ({err or 'ok'})")
        per = [(b - a) / got if got else None for a, b in zip(idle, rss)]
        start = [env.rss_at_start.get(p) for p in v.pids]
        ab[name] = (median(per), median(start))
        goal = "—"
        if name in ("uring", "epoll", "base"):
            ok_idle = all(x is not None and x <= 8 * 1024 for x in start)
            ok_conn = got >= 10000 and all(x is not None and x <= 2.0 for x in per)
            goal = (f"≤ 8 MB idle: {verdict(ok_idle)}; ≤ 2 KB/conn at 10k: "
                    f"{verdict(ok_conn) if got >= 10000 else 'n/a (N < 10k)'}")
        rows.append([v.label, " / ".join(fmt(x / 1024, 1) for x in start),
                     " / ".join(fmt(x / 1024, 1) for x in idle), f"{got}" + (f" ({err})" if err else ""),
                     " / ".join(fmt(x / 1024, 1) for x in rss),
                     " / ".join(fmt(x, 2) for x in per), goal])
        time.sleep(1.0)  # let the closes drain before the next path
    hdr = ["path", "RSS MB at start (A / B)", "RSS MB before", "idle conns held",
           "RSS MB with conns", "KB per conn (A / B)", "goal"]
    note = (f"N={n} requested; each connection goes client pod → server pod and is confirmed end "
            "to end by a 1-byte greeting from a holder in the server pod, then held idle. VmRSS of "
            f"each proxy. The fd hard limit here is {env.fd_limit} (no CAP_SYS_RESOURCE), so the "
            "HAProxy pair (2 fds per connection in one process) is measured at a smaller N. "
            "stunnel (a thread per connection) is left out.")
    out = "## memory\n\n" + note + "\n\n" + table(hdr, rows) + "\n"
    if "base" in ab:
        new, old = ab["uring"], ab["base"]
        out += "\n" + ab_line([("KB per idle conn (mean of A, B)", new[0], old[0]),
                               ("RSS KB at start (mean of A, B)", new[1], old[1])]) + "\n"
    return out
