#!/usr/bin/python3
"""Self-test of echo_backend.py with the helpers of waypoint_clients.py, on
loopback with ephemeral ports (no root): every behaviour the waypoint tests
rely on, over HTTP/1.1, h2c, gRPC, WebSocket and raw TCP, plus the CLI.
Exits 1 when any check fails, 77 (SKIP) when a Debian package is missing.

    echo_backend_selftest.py
"""
import hashlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
MISSING = [m for m in ("grpc", "h2", "h11", "websockets", "wsproto")
           if importlib.util.find_spec(m) is None]
if MISSING:
    print(f"SKIP: no Python module {', '.join(MISSING)} (tools/dev deps installs TEST_PACKAGES)",
          file=sys.stderr)
    sys.exit(77)
import waypoint_clients as wc  # noqa: E402
from echo_backend import pattern_sha256  # noqa: E402

NAME = "selftest-v1"
FAILURES = []


def check(cond, what, detail=None):
    print(("ok   " if cond else "FAIL ") + what + ("" if cond or detail is None else f": {detail}"),
          flush=True)
    if not cond:
        FAILURES.append(what)
    return cond


class Backend:
    """echo_backend.py on 127.0.0.1 with every listener on an ephemeral port."""

    def __init__(self, *extra):
        self.p = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "echo_backend.py"), "--bind", "127.0.0.1",
             "--name", NAME, "--namespace", "selftest", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.ports = None

    def wait_ready(self, timeout=15.0):
        """Reads stdout until `ready` (True) or EOF/timeout (False)."""
        done = threading.Event()

        def reader():
            for line in self.p.stdout:
                self.lines.append(line.strip())
                if line.startswith("listening "):
                    self.ports = json.loads(line[len("listening "):])
                if line.strip() == "ready":
                    break
            done.set()
        threading.Thread(target=reader, daemon=True).start()
        done.wait(timeout)
        return bool(self.lines) and self.lines[-1] == "ready"

    def port(self, kind, i=0):
        return self.ports[kind][i]

    def stop(self, timeout=10.0):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout)
        return self.p.returncode


def raw_exchange(port, payload, until, timeout=5.0):
    """Sends payload on a fresh socket; reads until `until(data)` or EOF/timeout."""
    data = b""
    end = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        while not until(data) and time.monotonic() < end:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
    return data


def parse_responses(data):
    """Splits Content-Length HTTP/1.1 responses: [(status, {hdr: value}, body)]."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        n = int(hdrs.get("content-length", "0"))
        out.append((status, hdrs, rest[:n]))
        data = rest[n:]
    return out


def test_http1(b):
    port = b.port("http")
    base = f"http://127.0.0.1:{port}"
    r = wc.http1_keepalive(f"{base}/ka?x=1", count=1000, headers=["x-canary-user:true"],
                           count_fields=["headers.x-canary-user", "proto"], keep=1)
    check(r["ok"] and r["statuses"] == {"200": 1000} and r["pods"] == {NAME: 1000},
          "http1: 1000 keep-alive requests all 200 from the pod", r)
    check(r["connections"] == 1, "http1: one connection (local port unchanged)", r["local_ports"])
    check(r["field_values"]["headers.x-canary-user"] == {"true": 1000}
          and r["field_values"]["proto"] == {"HTTP/1.1": 1000}, "http1: header and proto echoed")
    check(r["latency_ms"]["p50"] is not None and r["latency_ms"]["p99"] >= r["latency_ms"]["p50"],
          "http1: latency p50/p99 reported", r["latency_ms"])
    e = r["responses"][0]["json"]
    check(e["method"] == "GET" and e["path"] == "/ka?x=1" and e["host"] == f"127.0.0.1:{port}"
          and e["namespace"] == "selftest" and e["local"] == f"127.0.0.1:{port}"
          and e["remote"] == f"127.0.0.1:{r['local_ports'][0]}"
          and e["body_bytes"] == 0 and e["body_sha256"] == hashlib.sha256(b"").hexdigest(),
          "http1: echo JSON fields (method, path+query, host, namespace, remote, local, body)", e)
    check(r["responses"][0]["headers"].get("x-echo-pod") == [NAME], "http1: x-echo-pod header")
    print(f"     http1 keep-alive: {r['rps']} req/s, p50 {r['latency_ms']['p50']} ms", flush=True)

    # Request bodies: Content-Length and chunked, 1 MiB each.
    n = 1 << 20
    for chunked in (False, True):
        r = wc.http1_keepalive(f"{base}/upload", method="POST", body_size=n, chunked=chunked,
                               keep=1)
        e = r["responses"][0]["json"] if r["responses"] else {}
        check(r["ok"] and e.get("body_bytes") == n and e.get("body_sha256") == pattern_sha256(n)
              and e.get("method") == "POST",
              f"http1: {'chunked' if chunked else 'Content-Length'} 1 MiB request body hashed",
              {k: e.get(k) for k in ("body_bytes", "headers")})

    # Repeated headers, HEAD, then keep-alive after HEAD (http.client directly).
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.putrequest("GET", "/multi")
    c.putheader("X-Multi", "a")
    c.putheader("X-Multi", "b")
    c.endheaders()
    resp = c.getresponse()
    e = json.loads(resp.read())
    check(e["headers"].get("x-multi") == ["a", "b"], "http1: repeated header values kept in order")
    c.request("HEAD", "/head")
    resp = c.getresponse()
    body = resp.read()
    check(resp.status == 200 and body == b"" and int(resp.getheader("content-length", "0")) > 0,
          "http1: HEAD has Content-Length and no body")
    c.request("GET", "/after-head")
    resp = c.getresponse()
    check(json.loads(resp.read())["path"] == "/after-head", "http1: keep-alive after HEAD")
    c.request("GET", "/bytes/1000")
    resp = c.getresponse()
    check(resp.read() == bytes(i % 251 for i in range(1000)), "http1: /bytes/1000 is i % 251")
    c.close()

    # Expect: 100-continue: the interim 100 comes before the body is sent.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /expect HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        interim = s.recv(4096)
        s.sendall(b"abc")
        data = b""
        while b'"body_sha256"' not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    got = parse_responses(data)
    check(interim.startswith(b"HTTP/1.1 100 ") and got and got[0][0] == 200
          and json.loads(got[0][2])["body_bytes"] == 3, "http1: Expect: 100-continue", interim)

    # A malformed request gets a 400 and a close; a WebSocket version other
    # than 13 gets 426 naming 13.
    got = parse_responses(raw_exchange(port, b"GET / HTTP/1.1\r\nHost a\r\n\r\n", lambda d: False))
    check(len(got) == 1 and got[0][0] == 400 and got[0][1].get("connection") == "close",
          "http1: malformed request answered 400, connection closed", got)
    got = parse_responses(raw_exchange(port, b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                                       b"Connection: Upgrade\r\nSec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n"
                                       b"Sec-WebSocket-Version: 12\r\n\r\n", lambda d: False))
    check(len(got) == 1 and got[0][0] == 426 and got[0][1].get("sec-websocket-version") == "13",
          "ws: version 12 answered 426 with Sec-WebSocket-Version: 13", got)

    # Pipelining: three requests in one write come back in order.
    pipe = (b"GET /p1 HTTP/1.1\r\nHost: a\r\n\r\n"
            b"POST /p2?delay=100ms HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\n\r\n"
            b"GET /p3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    got = parse_responses(raw_exchange(port, pipe, lambda d: False))
    paths = [json.loads(body)["path"] for _, _, body in got]
    check(paths == ["/p1", "/p2?delay=100ms", "/p3"]
          and json.loads(got[1][2])["body_bytes"] == 3, "http1: pipelined requests answered in order",
          paths)

    # HTTP/1.1 response trailers (chunked).
    data = raw_exchange(port, b"GET /trailers HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n",
                        lambda d: d.endswith(b"\r\n\r\n") and b"\r\n0\r\n" in d)
    check(b"transfer-encoding: chunked" in data.lower() and b"x-trailer: yes\r\n" in data.lower(),
          "http1: /trailers sends a chunked trailer x-trailer: yes", data[-80:])

    # 200 concurrent connections, each answered after 300 ms (serially: 60 s).
    t0 = time.monotonic()
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(200)]
    try:
        for i, s in enumerate(socks):
            s.sendall(f"GET /conc/{i}?delay=300ms HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                      .encode())
        good = 0
        for i, s in enumerate(socks):
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            got = parse_responses(data)
            good += bool(got) and got[0][0] == 200 and json.loads(got[0][2])["path"].startswith(
                f"/conc/{i}?")
    finally:
        for s in socks:
            s.close()
    elapsed = time.monotonic() - t0
    check(good == 200 and elapsed < 10, "http1: 200 concurrent connections answered concurrently",
          f"{good} good in {elapsed:.1f}s")


def test_behaviours(b, proto):
    """Status, delay, X-Echo-Set-Header, /bytes, retry over `proto` (h1 | h2)."""
    port = b.port("http")
    base = f"http://127.0.0.1:{port}"

    def get(path, count=1, **kw):
        if proto == "h1":
            return wc.http1_keepalive(base + path, count=count, **kw)
        return wc.h2_concurrent(base + path, count=count, streams=1, **kw)

    r = get("/status/418", keep=1)
    check(r["statuses"] == {"418": 1} and r["pods"] == {NAME: 1}
          and r["responses"][0]["json"]["path"] == "/status/418",
          f"{proto}: /status/418 answers 418 with the echo JSON", r["statuses"])
    r = get("/status/204", keep=1)
    check(r["statuses"] == {"204": 1} and r["responses"][0]["body_bytes"] == 0,
          f"{proto}: /status/204 without a body")
    r = get("/status/700", keep=1)
    check(r["statuses"] == {"400": 1} and "error" in (r["responses"][0]["json"] or {}),
          f"{proto}: /status/700 refused with 400")

    r = get("/d?delay=250ms")
    lat = r["latency_ms"]["p50"]
    check(r["ok"] and lat is not None and 250 <= lat < 2000, f"{proto}: ?delay=250ms waits", lat)
    r = get("/d?delay=1s")
    lat = r["latency_ms"]["p50"]
    check(r["ok"] and lat is not None and 1000 <= lat < 3000, f"{proto}: ?delay=1s waits", lat)
    r = get("/d?delay=31s")
    check(r["statuses"] == {"400": 1} and r["latency_ms"]["p50"] < 2000,
          f"{proto}: ?delay=31s refused (max 30 s)")
    r = get("/d?delay=soon")
    check(r["statuses"] == {"400": 1}, f"{proto}: ?delay=soon refused")

    r = get("/h", headers=["X-Echo-Set-Header:X-A:1,X-B:two", "X-Echo-Set-Header:content-type:text/x"],
            count_headers=["x-a", "x-b", "content-type"])
    hv = r["header_values"]
    check(hv["x-a"] == {"1": 1} and hv["x-b"] == {"two": 1} and hv["content-type"] == {"text/x": 1},
          f"{proto}: X-Echo-Set-Header sets (and replaces) response headers", hv)

    u = uuid.uuid4().hex
    if proto == "h1":
        r = wc.http1_keepalive(f"{base}/retry?uuid={u}&succeedAfter=2", count=3,
                               allow_reconnect=True, keep=1)
        check(r["errors"] == {"ConnectionResetError": 2} and r["statuses"] == {"200": 1},
              "h1: /retry resets the first 2 tries with a TCP RST, then 200", r["errors"])
    else:
        r = wc.h2_concurrent(f"{base}/retry?uuid={u}&succeedAfter=2", count=3, streams=1, keep=1)
        check(r["errors"] == {"reset:INTERNAL_ERROR": 2} and r["statuses"] == {"200": 1},
              "h2: /retry resets the first 2 streams (RST_STREAM), then 200", r["errors"])
        u2 = uuid.uuid4().hex
        r2 = wc.h2_concurrent(f"{base}/retry?uuid={u2}&succeedAfter=1&resetCode=REFUSED_STREAM",
                              count=2, streams=1)
        check(r2["errors"] == {"reset:REFUSED_STREAM": 1} and r2["statuses"] == {"200": 1},
              "h2: /retry resetCode=REFUSED_STREAM", r2["errors"])
    e = r["responses"][0]["json"] if r["responses"] else {}
    check(e.get("attempt") == 3, f"{proto}: the successful try is attempt 3", e.get("attempt"))
    u3 = uuid.uuid4().hex
    r = get(f"/retry?uuid={u3}&succeedAfter=2&responseCode=503", count=4)
    check(r["statuses"] == {"503": 2, "200": 2} and not r["errors"] and r["connections"] == 1,
          f"{proto}: /retry responseCode=503 answers 503 twice then 200 on one connection",
          r["statuses"])
    stats = wc.backend_stats(base)
    check(stats["uuids"].get(u) == 3 and stats["uuids"].get(u3) == 4,
          f"{proto}: /__stats counts the tries per uuid", {u: stats["uuids"].get(u)})


def test_h2(b):
    for kind in ("http", "h2c"):
        port = b.port(kind)
        r = wc.h2_concurrent(f"http://127.0.0.1:{port}/slow?delay=500ms", count=100, streams=100,
                             count_fields=["proto"])
        check(r["ok"] and r["statuses"] == {"200": 100} and r["max_in_flight"] == 100
              and r["field_values"]["proto"] == {"HTTP/2": 100} and r["elapsed_s"] < 5,
              f"h2 on --{kind}: 100 concurrent streams on one connection, answered in parallel",
              {k: r[k] for k in ("statuses", "errors", "max_in_flight", "elapsed_s")})
    port = b.port("h2c")
    r = wc.h2_concurrent(f"http://127.0.0.1:{port}/many", count=1000, streams=50,
                         headers=["host:reviews.bookinfo"], keep=1)
    check(r["ok"] and r["statuses"] == {"200": 1000} and r["pods"] == {NAME: 1000}
          and r["responses"][0]["json"]["host"] == "reviews.bookinfo",
          "h2: 1000 requests as 50 streams, :authority echoed as host",
          {k: r[k] for k in ("statuses", "errors", "rps")})
    n = 16 << 20
    r = wc.h2_concurrent(f"http://127.0.0.1:{port}/upload", method="POST", body_size=n, keep=1)
    e = r["responses"][0]["json"] if r["responses"] else {}
    check(r["ok"] and e.get("body_bytes") == n and e.get("body_sha256") == pattern_sha256(n),
          "h2: 16 MiB request body through flow control, sha256 matches", r["errors"])
    r = wc.h2_concurrent(f"http://127.0.0.1:{port}/bytes/{n}", count=2, streams=2)
    check(r["ok"] and r["body_bytes"] == 2 * n,
          "h2: 2 x 16 MiB /bytes responses on one connection, pattern intact", r["errors"])
    r = wc.h2_concurrent(f"http://127.0.0.1:{port}/trailers", count=3, streams=3)
    check(r["ok"] and r.get("trailer_values") == {"x-trailer": {"yes": 3}},
          "h2: /trailers sends trailer x-trailer: yes", r.get("trailer_values"))
    r = wc.h2_concurrent(f"http://127.0.0.1:{port}/head", method="HEAD", keep=1)
    check(r["ok"] and r["responses"][0]["body_bytes"] == 0
          and int(r["responses"][0]["headers"]["content-length"][0]) > 0,
          "h2: HEAD has content-length and no body")


def test_bulk_and_stream(b):
    port = b.port("http")
    n = 64 << 20
    r = wc.http1_keepalive(f"http://127.0.0.1:{port}/bytes/{n}")
    check(r["ok"] and r["body_bytes"] == n, "http1: /bytes/64MiB arrives with the pattern's sha256",
          r["errors"])
    for use_h2 in (False, True):
        r = wc.http_stream(f"http://127.0.0.1:{port}/stream?n=5&interval=100ms", use_h2=use_h2)
        # Sent over 400 ms; a buffered response would arrive all at once
        # (spread ~0). Gaps alone are not asserted: a busy client can merge two.
        check(r["ok"] and r["lines"] == 5 and r["spread_ms"] is not None
              and r["spread_ms"] >= 300,
              f"{r['proto']}: /stream chunks arrive spaced in time",
              {k: r[k] for k in ("lines", "arrival_ms", "error")})
        first = json.loads(r["first_line"] or "{}")
        check(first.get("chunk") == 0 and first.get("of") == 5 and first.get("pod") == NAME,
              f"{r['proto']}: /stream lines are JSON naming the pod", first)


def test_grpc(b):
    target = f"127.0.0.1:{b.port('grpc')}"
    r = wc.grpc_unary(target, message="hello", count=5)
    check(r["ok"] and r["codes"] == {"OK": 5} and r["responses"] == ["hello"] * 5
          and r["trailing_metadata"].get("x-pod") == [NAME],
          "grpc: Unary echoes the bytes with trailing metadata x-pod", r)
    r = wc.grpc_stream(target, k=5, interval_ms=60)
    spread = r["arrival_ms"][-1] - r["arrival_ms"][0] if r["arrival_ms"] else 0
    check(r["ok"] and r["messages"] == [f"msg-{i}" for i in range(5)] and spread >= 150
          and r["pod"] == NAME, "grpc: ServerStream sends msg-0..msg-4, spaced", r)
    r = wc.grpc_fail(target, code="NOT_FOUND")
    check(r["ok"] and r["codes"] == {"NOT_FOUND": 1}
          and r["details"] == "echo.Echo/Fail: NOT_FOUND requested"
          and r["trailing_metadata"].get("x-pod") == [NAME],
          "grpc: Fail NOT_FOUND returns that status, details and x-pod", r)
    r = wc.grpc_fail(target, code="BOGUS")
    check(r["codes"] == {"INVALID_ARGUMENT": 1} and not r["ok"], "grpc: Fail with a bad name")
    r = wc.grpc_unary(target, method="Slow", message="100", timeout=5)
    check(r["ok"] and r["latency_ms"]["p50"] >= 100, "grpc: Slow 100 ms then echoes", r["latency_ms"])
    r = wc.grpc_unary(target, method="Slow", message="3000", timeout=0.3,
                      expect_code="DEADLINE_EXCEEDED")
    check(r["ok"] and r["latency_ms"]["p50"] < 2000, "grpc: Slow 3000 ms past a 300 ms deadline",
          r["codes"])
    r = wc.grpc_unary(target, method="Headers", message="", metadata=["X-Route:canary"])
    md = json.loads(r["responses"][0])["metadata"] if r["responses"] else {}
    check(r["ok"] and md.get("x-route") == ["canary"], "grpc: Headers echoes request metadata", md)
    stats = wc.backend_stats(f"http://127.0.0.1:{b.port('http')}")
    check(stats["paths"].get("/echo.Echo/Unary") == 5, "grpc: calls counted in /__stats")


def test_ws_tcp(b):
    for kind in ("http", "ws"):
        r = wc.ws_echo(f"ws://127.0.0.1:{b.port(kind)}/ws", count=6, size=100000)
        check(r["ok"] and r["echoed"] == 6 and r["pod"] == NAME and r["close_code"] == 1000
              and r["fragmented_ok"] and r["ping_ok"],
              f"ws on --{kind}: text, binary and fragmented echoed, ping, close 1000", r)
    r = wc.tcp_line(f"127.0.0.1:{b.port('tcp')}", count=3)
    check(r["ok"] and r["greeting"] == f"hello from {NAME}" and r.get("eof_after_echo"),
          "tcp: greeting line, lines echoed, EOF after the client's half-close", r)


def test_stats(b):
    base = f"http://127.0.0.1:{b.port('http')}"
    s = wc.backend_stats(base)
    check(s["paths"].get("/ka") == 1000 and s["protos"].get("HTTP/2", 0) >= 1200
          and "/__stats" not in s["paths"] and s["connections"].get("ws") == 2,
          "stats: per-path, per-proto and connection counters",
          {k: s[k] for k in ("protos", "connections")})
    wc.backend_stats(base, reset=True)
    s = wc.backend_stats(base)
    check(s["requests"] == 0 and not s["paths"], "stats: ?reset=1 clears the counters", s)


def test_cli(b):
    cli = [sys.executable, os.path.join(HERE, "waypoint_clients.py")]
    http = f"http://127.0.0.1:{b.port('http')}"

    def run(*args):
        p = subprocess.run(cli + list(args), capture_output=True, text=True, timeout=60)
        try:
            return p.returncode, json.loads(p.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return p.returncode, {"stdout": p.stdout, "stderr": p.stderr[-500:]}

    rc, out = run("http1-keepalive", "--url", f"{http}/cli", "--count", "20",
                  "--header", "x-canary-user:true", "--count-field", "headers.x-canary-user")
    check(rc == 0 and out["ok"] and out["pods"] == {NAME: 20}
          and out["field_values"]["headers.x-canary-user"] == {"true": 20},
          "cli: http1-keepalive prints one JSON summary, exit 0", out)
    rc, out = run("http1-keepalive", "--url", f"{http}/cli", "--count", "3",
                  "--header", "connection:close")
    check(rc == 1 and not out["ok"] and out["errors"].get("reconnect") == 2,
          "cli: http1-keepalive fails when the connection is not reused", out.get("errors"))
    checks = [
        (["h2-concurrent", "--url", f"{http}/cli", "--count", "20", "--streams", "10"], "h2-concurrent"),
        (["grpc-unary", "--target", f"127.0.0.1:{b.port('grpc')}", "--message", "x"], "grpc-unary"),
        (["grpc-stream", "--target", f"127.0.0.1:{b.port('grpc')}", "--k", "2"], "grpc-stream"),
        (["grpc-fail", "--target", f"127.0.0.1:{b.port('grpc')}", "--code", "UNAVAILABLE"], "grpc-fail"),
        (["ws-echo", "--url", f"ws://127.0.0.1:{b.port('http')}/ws"], "ws-echo"),
        (["tcp-line", "--addr", f"127.0.0.1:{b.port('tcp')}"], "tcp-line"),
        (["stats", "--url", http], "stats"),
    ]
    for args, kind in checks:
        rc, out = run(*args)
        check(rc == 0 and out.get("ok") and out.get("kind") == kind, f"cli: {kind} exit 0", out)
    rc, out = run("grpc-unary", "--target", f"127.0.0.1:{b.port('grpc')}", "--method", "Fail",
                  "--message", "INTERNAL")
    check(rc == 1 and out["codes"] == {"INTERNAL": 1}, "cli: a failed expectation exits 1")


def test_port_taken(b):
    for kind in ("http", "grpc"):
        other = Backend(f"--{kind}", str(b.port(kind)))
        ready = other.wait_ready(timeout=15)
        rc = other.stop()
        check(not ready and rc not in (0, None),
              f"a second backend on a taken --{kind} port fails instead of sharing it",
              other.lines + [other.p.stderr.read()[-300:]])


def main():
    t0 = time.monotonic()
    b = Backend("--http", "0", "--h2c", "0", "--ws", "0", "--grpc", "0", "--tcp", "0")
    try:
        if not check(b.wait_ready(), "backend prints listening {ports} then ready", b.lines):
            print(b.p.stderr.read() if b.p.poll() is not None else "", file=sys.stderr)
            return 1
        check(set(b.ports) == {"http", "h2c", "ws", "grpc", "tcp"}, "every listener reported",
              b.ports)
        for test in (test_http1, lambda b: test_behaviours(b, "h1"), lambda b: test_behaviours(b, "h2"),
                     test_h2, test_bulk_and_stream, test_grpc, test_ws_tcp, test_stats, test_cli,
                     test_port_taken):
            try:
                test(b)
            except Exception as e:  # one broken area must not hide the others
                check(False, f"{getattr(test, '__name__', 'test')} raised", repr(e))
    finally:
        rc = b.stop()
    check(rc == 0, "backend exits 0 on SIGTERM", rc)
    err = b.p.stderr.read()
    check("Traceback" not in err, "backend stderr has no traceback", err[-2000:])
    print(f"{len(FAILURES)} failure(s) in {time.monotonic() - t0:.1f}s", flush=True)
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
