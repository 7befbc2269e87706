#!/usr/bin/python3
"""waypoint_clients.py: client helpers for waypoint netns tests, talking to
echo_backend.py (directly or through a waypoint). Every helper is a function
returning a summary dict and a CLI subcommand printing that dict as one JSON
line (exit 0 when "ok" is true, 1 otherwise):

    waypoint_clients.py http1-keepalive --url http://10.96.0.30:80/ --count 1000 \\
        --header x-canary-user:true
    waypoint_clients.py h2-concurrent --url http://10.96.0.30:80/ --count 500 --streams 100
    waypoint_clients.py http-stream --url 'http://10.96.0.30/stream?n=5&interval=100ms' [--h2]
    waypoint_clients.py grpc-unary --target 10.96.0.31:9090 --message hi --count 10
    waypoint_clients.py grpc-stream --target 10.96.0.31:9090 --k 5
    waypoint_clients.py grpc-fail --target 10.96.0.31:9090 --code NOT_FOUND
    waypoint_clients.py ws-echo --url ws://10.96.0.30:80/ws --count 10
    waypoint_clients.py tcp-line --addr 10.96.0.32:9000 --count 3
    waypoint_clients.py stats --url http://10.44.1.2:8080/

The HTTP, WebSocket and TCP functions open their sockets on the calling
thread, so harness.in_netns(ns, fn, ...) runs them inside a pod's netns.
grpcio may connect from its own threads: in_netns worked with Debian 12's
grpcio 1.51 (tested), but the CLI under `ip netns exec` (Topology.ns_exec)
is the robust way.

Common HTTP summary: kind, ok, count (asked), done, statuses {code: n}, pods
{pod: n} (from the echo JSON, else the x-echo-pod header; "-" when neither),
errors {kind: n}, error_samples [...], latency_ms {p50, p99, max, mean},
elapsed_s, rps, connections, responses (the first `keep`).
Debian packages: python3-h2, python3-grpcio, python3-websockets.
"""
import argparse
import asyncio
import hashlib
import json
import os
import re
import select
import socket
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from echo_backend import pattern_chunks, pattern_sha256  # noqa: E402

ECHO_BACKEND = os.path.join(os.path.dirname(os.path.abspath(__file__)), "echo_backend.py")
JSON_LIMIT = 1 << 20  # bodies up to this size are kept and parsed as JSON
BYTES_PATH = re.compile(r"^/bytes/(\d+)$")
ERROR_SAMPLES = 5


# ---- shared pieces ----------------------------------------------------------
def parse_headers(items):
    """["name:value", ...] or [(name, value), ...] -> [(name, value)]."""
    out = []
    for item in items or ():
        if isinstance(item, (tuple, list)):
            out.append((str(item[0]), str(item[1])))
        else:
            name, sep, value = item.partition(":")
            if not sep:
                raise ValueError(f"header {item!r} is not name:value")
            out.append((name.strip(), value.strip()))
    return out


def percentile(sorted_values, q):
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def latency_summary(latencies_s):
    v = sorted(x * 1000.0 for x in latencies_s)
    if not v:
        return {"p50": None, "p99": None, "max": None, "mean": None}
    return {"p50": round(percentile(v, 50), 3), "p99": round(percentile(v, 99), 3),
            "max": round(v[-1], 3), "mean": round(sum(v) / len(v), 3)}


def request_body(body=None, body_size=None):
    """(iterable of chunks, length): body bytes/str, or body_size pattern bytes."""
    if body_size is not None:
        return pattern_chunks(body_size), body_size
    if body is None:
        return [], 0
    data = body.encode() if isinstance(body, str) else bytes(body)
    return [data], len(data)


class Tally:
    """Accumulates per-response outcomes into the common summary."""

    def __init__(self, kind, count, keep=0, count_headers=(), count_fields=()):
        self.kind, self.count, self.keep = kind, count, keep
        self.statuses, self.pods, self.errors = {}, {}, {}
        self.error_samples, self.latencies, self.responses = [], [], []
        self.count_headers = [h.lower() for h in count_headers]
        self.count_fields = list(count_fields)
        self.header_values = {h: {} for h in self.count_headers}
        self.field_values = {f: {} for f in self.count_fields}
        self.trailer_values = {}
        self.done = 0
        self.body_bytes = 0
        self.start = time.monotonic()

    def error(self, kind, detail):
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if len(self.error_samples) < ERROR_SAMPLES:
            self.error_samples.append(f"{kind}: {detail}")

    def response(self, path, status, headers, body_len, sha, body, latency, trailers=()):
        """headers: [(lower-name, value)]; body: kept bytes (None when too big)."""
        self.done += 1
        self.latencies.append(latency)
        self.body_bytes += body_len
        _inc(self.statuses, str(status))
        echo = None
        if body is not None and body[:1] == b"{":
            try:
                echo = json.loads(body)
            except ValueError:
                echo = None
        hdr = {}
        for k, v in headers:
            hdr.setdefault(k, []).append(v)
        pod = (echo or {}).get("pod") or (hdr.get("x-echo-pod") or ["-"])[0]
        _inc(self.pods, pod)
        for h in self.count_headers:
            for v in hdr.get(h, ["<absent>"]):
                _inc(self.header_values[h], v)
        for f in self.count_fields:
            _inc(self.field_values[f], _field(echo, f))
        for k, v in trailers:
            _inc(self.trailer_values.setdefault(k, {}), v)
        m = BYTES_PATH.match(urllib.parse.urlsplit(path).path)
        if m and status == 200:
            n = int(m.group(1))
            if body_len != n or sha != pattern_sha256(n):
                self.error("body_mismatch", f"{path}: got {body_len} bytes sha {sha[:16]}")
        if len(self.responses) < self.keep:
            self.responses.append({"status": status, "headers": hdr, "json": echo,
                                   "body_bytes": body_len, "body_sha256": sha,
                                   "trailers": dict(trailers)})

    def summary(self, **extra):
        elapsed = time.monotonic() - self.start
        out = {"kind": self.kind, "ok": not self.errors and self.done == self.count,
               "count": self.count, "done": self.done, "statuses": self.statuses,
               "pods": self.pods, "errors": self.errors, "error_samples": self.error_samples,
               "latency_ms": latency_summary(self.latencies), "elapsed_s": round(elapsed, 3),
               "rps": round(self.done / elapsed, 1) if elapsed > 0 else None,
               "body_bytes": self.body_bytes}
        if self.count_headers:
            out["header_values"] = self.header_values
        if self.count_fields:
            out["field_values"] = self.field_values
        if self.trailer_values:
            out["trailer_values"] = self.trailer_values
        if self.keep:
            out["responses"] = self.responses
        out.update(extra)
        return out


def _inc(d, k):
    d[k] = d.get(k, 0) + 1


def _field(echo, dotted):
    """Echo JSON value at 'a.b' ('headers.x-foo' gives the first value); '<absent>'."""
    cur = echo
    for part in dotted.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return "<absent>"
    if isinstance(cur, list):
        cur = cur[0] if cur else "<absent>"
    return cur if isinstance(cur, str) else json.dumps(cur)


class BodySink:
    """Hashes a response body and keeps it while it is small enough to parse."""

    def __init__(self):
        self.sha = hashlib.sha256()
        self.n = 0
        self.kept = bytearray()

    def feed(self, data):
        self.sha.update(data)
        self.n += len(data)
        if self.n <= JSON_LIMIT:
            self.kept += data

    def body(self):
        return bytes(self.kept) if self.n <= JSON_LIMIT else None


def split_url(url):
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "ws"):
        raise ValueError(f"{url}: only http:// (and ws://) are supported")
    target = (u.path or "/") + (f"?{u.query}" if u.query else "")
    return u.hostname, u.port or 80, target, u.netloc


# ---- HTTP/1.1 keep-alive ----------------------------------------------------
def http1_keepalive(url, count=1, method="GET", headers=(), body=None, body_size=None,
                    chunked=False, timeout=10.0, deadline=120.0, allow_reconnect=False,
                    count_headers=(), count_fields=(), keep=0):
    """`count` requests, one after another, on ONE keep-alive connection
    (http.client). A changed local port means the connection was not reused:
    an error ("reconnect") unless allow_reconnect. Any error (reset, timeout)
    closes the connection and the next request opens a new one. /bytes/N
    bodies are checked against the pattern ("body_mismatch")."""
    import http.client
    host, port, target, _ = split_url(url)
    hdrs = parse_headers(headers)
    skip_host = any(k.lower() == "host" for k, _ in hdrs)
    tally = Tally("http1-keepalive", count, keep, count_headers, count_fields)
    end = time.monotonic() + deadline
    conn = None
    ports = []
    for i in range(count):
        if time.monotonic() > end:
            tally.error("deadline", f"{deadline}s passed after {i} requests")
            break
        if conn is None:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        t0 = time.monotonic()
        try:
            chunks, length = request_body(body, body_size)
            conn.putrequest(method, target, skip_host=skip_host, skip_accept_encoding=True)
            for k, v in hdrs:
                conn.putheader(k, v)
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            elif length or method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(length))
            conn.endheaders()
            local = conn.sock.getsockname()[1]
            if not ports or ports[-1] != local:
                if ports and not allow_reconnect:
                    tally.error("reconnect", f"request {i}: local port {ports[-1]} -> {local}")
                ports.append(local)
            for c in chunks:
                if chunked:
                    conn.send(b"%x\r\n" % len(c) + bytes(c) + b"\r\n")
                else:
                    conn.send(c)
            if chunked:
                conn.send(b"0\r\n\r\n")
            resp = conn.getresponse()
            sink = BodySink()
            while True:
                data = resp.read(65536)
                if not data:
                    break
                sink.feed(data)
            hl = [(k.lower(), v) for k, v in resp.getheaders()]
            tally.response(target, resp.status, hl, sink.n, sink.sha.hexdigest(), sink.body(),
                           time.monotonic() - t0)
            if resp.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            tally.error(type(e).__name__, f"request {i}: {e}")
            conn.close()
            conn = None
    if conn is not None:
        conn.close()
    return tally.summary(connections=len(ports), local_ports=ports[:10])


# ---- HTTP/2 (h2c prior knowledge) -------------------------------------------
class _H2Stream:
    def __init__(self, sid, body_chunks):
        self.sid = sid
        self.t0 = time.monotonic()
        self.status = None
        self.headers = []
        self.trailers = []
        self.sink = BodySink()
        self.pending = b""
        self.chunks = iter(body_chunks)
        self.body_done = False
        self.record = False  # keep (seconds since start, data) per DATA frame
        self.arrivals = []


class H2Client:
    """A blocking h2c (prior knowledge) client over one socket, single thread."""

    def __init__(self, host, port, timeout=10.0):
        import h2.config
        import h2.connection
        import h2.settings
        self.h2 = __import__("h2.events").events
        self.exceptions = __import__("h2.exceptions").exceptions
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.local_port = self.sock.getsockname()[1]
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="latin-1")
        self.conn = h2.connection.H2Connection(cfg)
        self.conn.local_settings = h2.settings.Settings(client=True, initial_values={
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20,
            h2.settings.SettingCodes.ENABLE_PUSH: 0})
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(16 << 20)
        self.streams = {}
        self.finished = []  # (_H2Stream, error or None)
        self.terminated = None
        self.settings_seen = False
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def remote_max_streams(self):
        return self.conn.remote_settings.max_concurrent_streams

    def start(self, method, authority, target, headers, body_chunks, length, has_body):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "http"), (":authority", authority),
                (":path", target)] + [(k.lower(), v) for k, v in headers if k.lower() != "host"]
        if has_body:
            hdrs.append(("content-length", str(length)))
        st = _H2Stream(sid, body_chunks)
        self.streams[sid] = st
        self.conn.send_headers(sid, hdrs, end_stream=not has_body)
        st.body_done = not has_body
        self._pump(st)
        self.flush()
        return st

    def _pump(self, st):
        """Sends as much of st's request body as the windows allow."""
        while not st.body_done:
            if not st.pending:
                nxt = next(st.chunks, None)
                if nxt is None:
                    self.conn.end_stream(st.sid)
                    st.body_done = True
                    return
                st.pending = bytes(nxt)
            window = self.conn.local_flow_control_window(st.sid)
            if window <= 0:
                return
            n = min(window, self.conn.max_outbound_frame_size, len(st.pending))
            self.conn.send_data(st.sid, st.pending[:n])
            st.pending = st.pending[n:]

    def poll(self, timeout):
        """Reads once (up to timeout) and handles the events; False on EOF."""
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return True
        data = self.sock.recv(1 << 20)
        if not data:
            self.terminated = self.terminated or "connection closed by peer"
            return False
        now = time.monotonic()
        E = self.h2
        for ev in self.conn.receive_data(data):
            st = self.streams.get(getattr(ev, "stream_id", None) or -1)
            if isinstance(ev, E.RemoteSettingsChanged):
                self.settings_seen = True
            elif isinstance(ev, E.ResponseReceived) and st:
                st.headers = [(k, v) for k, v in ev.headers if not k.startswith(":")]
                st.status = int(dict(ev.headers).get(":status", "0"))
            elif isinstance(ev, E.DataReceived):
                if st:
                    st.sink.feed(ev.data)
                    if st.record:
                        st.arrivals.append((now - st.t0, ev.data))
                if ev.flow_controlled_length:
                    try:
                        self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    except self.exceptions.StreamClosedError:
                        pass
            elif isinstance(ev, E.TrailersReceived) and st:
                st.trailers = list(ev.headers)
            elif isinstance(ev, E.StreamEnded) and st:
                self.finished.append((self.streams.pop(st.sid), None))
            elif isinstance(ev, E.StreamReset) and st:
                err = getattr(ev.error_code, "name", str(ev.error_code))
                self.finished.append((self.streams.pop(st.sid), f"reset:{err}"))
            elif isinstance(ev, (E.WindowUpdated, E.RemoteSettingsChanged)):
                for s in list(self.streams.values()):
                    self._pump(s)
            elif isinstance(ev, E.ConnectionTerminated):
                self.terminated = f"goaway:{getattr(ev.error_code, 'name', ev.error_code)}"
        self.flush()
        return self.terminated is None

    def close(self):
        try:
            self.conn.close_connection()
            self.flush()
        except (OSError, self.exceptions.ProtocolError):
            pass
        self.sock.close()


def h2_concurrent(url, count=1, streams=1, method="GET", headers=(), body=None, body_size=None,
                  timeout=10.0, deadline=120.0, authority=None, count_headers=(),
                  count_fields=(), keep=0):
    """`count` requests as up to `streams` concurrent streams on ONE h2c
    connection (prior knowledge; never more than the peer's
    MAX_CONCURRENT_STREAMS). Stream resets count as errors "reset:CODE"; a
    GOAWAY or EOF ends the run ("connection")."""
    host, port, target, netloc = split_url(url)
    hdrs = parse_headers(headers)
    hosts = [v for k, v in hdrs if k.lower() == "host"]
    auth = authority or (hosts[0] if hosts else netloc)
    tally = Tally("h2-concurrent", count, keep, count_headers, count_fields)
    end = time.monotonic() + deadline
    c = H2Client(host, port, timeout)
    started = finished = max_in_flight = 0
    try:
        while not c.settings_seen and time.monotonic() < end:
            if not c.poll(min(timeout, end - time.monotonic())):
                break
        last_progress = time.monotonic()
        while finished < count and c.terminated is None:
            now = time.monotonic()
            if now > end:
                tally.error("deadline", f"{deadline}s passed")
                break
            if now - last_progress > timeout:
                tally.error("timeout", f"no stream finished for {timeout}s")
                break
            limit = min(streams, c.remote_max_streams())
            while started < count and len(c.streams) < limit:
                chunks, length = request_body(body, body_size)
                has_body = body is not None or body_size is not None
                c.start(method, auth, target, hdrs, chunks, length, has_body)
                started += 1
            max_in_flight = max(max_in_flight, len(c.streams))
            c.poll(min(0.5, max(0.0, end - now)))
            for st, err in c.finished:
                last_progress = time.monotonic()
                finished += 1
                if err:
                    tally.error(err, f"stream {st.sid}")
                else:
                    tally.response(target, st.status, st.headers, st.sink.n,
                                   st.sink.sha.hexdigest(), st.sink.body(),
                                   time.monotonic() - st.t0, st.trailers)
            c.finished.clear()
        if c.terminated is not None:
            tally.error("connection", c.terminated)
    except (OSError, c.exceptions.ProtocolError) as e:
        tally.error(type(e).__name__, str(e))
    finally:
        c.close()
    return tally.summary(connections=1, local_port=c.local_port, max_in_flight=max_in_flight,
                         remote_max_concurrent_streams=c.remote_max_streams())


# ---- streaming: when do chunks arrive? --------------------------------------
def http_stream(url, use_h2=False, headers=(), timeout=10.0, deadline=120.0):
    """GETs a streaming URL (e.g. /stream?n=5&interval=100ms) and records when
    each newline-terminated line arrives (ms since the request was sent). A
    proxy that buffers shows every line at the same time."""
    import http.client
    host, port, target, netloc = split_url(url)
    hdrs = parse_headers(headers)
    t0 = time.monotonic()
    arrivals, status, pod, buf, error = [], None, None, b"", None
    end = t0 + deadline

    def take(data, when):
        nonlocal buf
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            arrivals.append((round(when * 1000.0, 1), line.decode("latin-1")))

    try:
        if use_h2:
            c = H2Client(host, port, timeout)
            try:
                auth = next((v for k, v in hdrs if k.lower() == "host"), netloc)
                st = c.start("GET", auth, target, hdrs, [], 0, False)
                st.record = True
                while not c.finished and time.monotonic() < end:
                    if not c.poll(min(timeout, end - time.monotonic())):
                        break
                error = c.finished[0][1] if c.finished else (c.terminated or "incomplete")
                for when, data in st.arrivals:
                    take(data, when)
                status = st.status
                pod = dict(st.headers).get("x-echo-pod")
            finally:
                c.close()
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
            try:
                skip_host = any(k.lower() == "host" for k, _ in hdrs)
                conn.putrequest("GET", target, skip_host=skip_host, skip_accept_encoding=True)
                for k, v in hdrs:
                    conn.putheader(k, v)
                conn.endheaders()
                t0 = time.monotonic()
                resp = conn.getresponse()
                status = resp.status
                pod = resp.getheader("x-echo-pod")
                while time.monotonic() < end:
                    data = resp.read1(65536)
                    if not data:
                        break
                    take(data, time.monotonic() - t0)
            finally:
                conn.close()
    except OSError as e:
        error = f"{type(e).__name__}: {e}"
    times = [t for t, _ in arrivals]
    gaps = [round(b - a, 1) for a, b in zip(times, times[1:])]
    return {"kind": "http-stream", "ok": error is None and status == 200 and bool(arrivals),
            "status": status, "pod": pod, "proto": "HTTP/2" if use_h2 else "HTTP/1.1",
            "lines": len(arrivals), "arrival_ms": times, "gaps_ms": gaps,
            "min_gap_ms": min(gaps) if gaps else None,
            "spread_ms": round(times[-1] - times[0], 1) if times else None,
            "error": error, "first_line": arrivals[0][1] if arrivals else None}


# ---- gRPC -------------------------------------------------------------------
def _grpc_channel(target, authority=None):
    import grpc
    opts = [("grpc.enable_http_proxy", 0)]
    if authority:
        opts.append(("grpc.default_authority", authority))
    return grpc.insecure_channel(target, options=opts)


def _md_dict(md):
    out = {}
    for k, v in md or ():
        out.setdefault(k, []).append(v if isinstance(v, str) else v.hex())
    return out


def grpc_unary(target, method="Unary", message=b"hi", count=1, metadata=(), timeout=10.0,
               authority=None, expect_code="OK", keep=5):
    """`count` calls of /echo.Echo/<method> on one channel (identity
    serializers). ok = every call ended with expect_code (and, for OK
    Unary/Slow, echoed the message)."""
    import grpc
    msg = message.encode() if isinstance(message, str) else bytes(message)
    md = [(k.lower(), v) for k, v in parse_headers(metadata)]
    codes, pods, errors, responses, lat = {}, {}, {}, [], []
    last = {"details": None, "trailing_metadata": {}, "initial_metadata": {}}
    ch = _grpc_channel(target, authority)
    try:
        call_fn = ch.unary_unary(f"/echo.Echo/{method}", request_serializer=lambda b: b,
                                 response_deserializer=lambda b: b)
        for i in range(count):
            t0 = time.monotonic()
            try:
                reply, call = call_fn.with_call(msg, timeout=timeout, metadata=md or None)
                code, details = call.code(), call.details()
                tmd, imd = call.trailing_metadata(), call.initial_metadata()
                if method in ("Unary", "Slow") and reply != msg:
                    _inc(errors, "echo_mismatch")
            except grpc.RpcError as e:
                reply, code, details = None, e.code(), e.details()
                tmd, imd = e.trailing_metadata(), e.initial_metadata()
            lat.append(time.monotonic() - t0)
            _inc(codes, code.name)
            tm = _md_dict(tmd)
            _inc(pods, (tm.get("x-pod") or ["-"])[0])
            if len(responses) < keep and reply is not None:
                responses.append(reply.decode("latin-1"))
            last = {"details": details, "trailing_metadata": tm, "initial_metadata": _md_dict(imd)}
    finally:
        ch.close()
    ok = codes == {expect_code: count} and not errors
    return {"kind": f"grpc-{method.lower()}", "ok": ok, "count": count, "codes": codes,
            "pods": pods, "errors": errors, "responses": responses,
            "latency_ms": latency_summary(lat), **last}


def grpc_fail(target, code="NOT_FOUND", **kw):
    """/echo.Echo/Fail with a status code name; ok = that code came back."""
    out = grpc_unary(target, method="Fail", message=code, expect_code=code, **kw)
    out["kind"] = "grpc-fail"
    return out


def grpc_stream(target, k=3, interval_ms=0, metadata=(), timeout=10.0, authority=None):
    """/echo.Echo/ServerStream: K messages; ok = code OK and msg-0..msg-<K-1>
    in order. arrival_ms: when each message arrived (for streaming checks)."""
    import grpc
    md = [(k.lower(), v) for k, v in parse_headers(metadata)]
    ch = _grpc_channel(target, authority)
    msgs, arrivals = [], []
    t0 = time.monotonic()
    try:
        fn = ch.unary_stream("/echo.Echo/ServerStream", request_serializer=lambda b: b,
                             response_deserializer=lambda b: b)
        req = f"{k} {interval_ms}".encode() if interval_ms else str(k).encode()
        call = fn(req, timeout=timeout, metadata=md or None)
        try:
            for m in call:
                msgs.append(m.decode("latin-1"))
                arrivals.append(round((time.monotonic() - t0) * 1000.0, 1))
            code, details = call.code(), call.details()
        except grpc.RpcError as e:
            code, details = e.code(), e.details()
        tmd = _md_dict(call.trailing_metadata())
    finally:
        ch.close()
    want = [f"msg-{i}" for i in range(k)]
    return {"kind": "grpc-stream", "ok": code.name == "OK" and msgs == want, "code": code.name,
            "details": details, "messages": msgs[:20], "count": len(msgs),
            "arrival_ms": arrivals[:100], "trailing_metadata": tmd,
            "pod": (tmd.get("x-pod") or ["-"])[0]}


# ---- WebSocket ----------------------------------------------------------------
def ws_echo(url, count=3, size=16, headers=(), timeout=10.0):
    """WebSocket handshake, `count` messages (text and binary in turn, `size`
    payload bytes each) that must come back unchanged, one message in three
    fragments, a ping answered by a pong, then the close handshake (ok needs
    all of that and close code 1000)."""
    import websockets
    hdrs = parse_headers(headers)
    major = int(websockets.__version__.split(".")[0])

    async def run():
        kw = {"open_timeout": timeout, "close_timeout": timeout, "max_size": None}
        if hdrs:
            kw["additional_headers" if major >= 14 else "extra_headers"] = hdrs
        if major >= 15:
            kw["proxy"] = None
        out = {"sent": 0, "echoed": 0, "failures": [], "pod": None, "close_code": None,
               "fragmented_ok": False, "ping_ok": False}
        async with websockets.connect(url, **kw) as ws:
            rh = getattr(ws, "response_headers", None)
            if rh is None:
                rh = ws.response.headers
            out["pod"] = rh.get("x-echo-pod")
            for i in range(count):
                if i % 2 == 0:
                    msg = f"msg-{i}-" + "x" * size
                else:
                    msg = bytes((i + j) % 251 for j in range(size))
                await ws.send(msg)
                out["sent"] += 1
                got = await asyncio.wait_for(ws.recv(), timeout)
                if got == msg:
                    out["echoed"] += 1
                elif len(out["failures"]) < ERROR_SAMPLES:
                    out["failures"].append(f"message {i}: sent {len(msg)} got {len(got)} "
                                           f"({type(got).__name__})")
            # A fragmented message (3 frames) and a ping must come back too.
            parts = [b"frag-0|", b"frag-1|", b"frag-2"]
            await ws.send(iter(parts))
            got = await asyncio.wait_for(ws.recv(), timeout)
            out["fragmented_ok"] = got == b"".join(parts)
            pong = await ws.ping(b"are-you-there")
            await asyncio.wait_for(pong, timeout)
            out["ping_ok"] = True
            await ws.close(code=1000, reason="done")
            out["close_code"] = ws.close_code
        return out

    t0 = time.monotonic()
    try:
        out = asyncio.run(run())
        error = None
    except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as e:
        out = {"sent": 0, "echoed": 0, "failures": [], "pod": None, "close_code": None}
        error = f"{type(e).__name__}: {e}"
    ok = (error is None and out["echoed"] == count and out["close_code"] == 1000
          and out["fragmented_ok"] and out["ping_ok"])
    return {"kind": "ws-echo", "ok": ok, "count": count, "error": error,
            "elapsed_s": round(time.monotonic() - t0, 3), **out}


# ---- raw TCP --------------------------------------------------------------------
def tcp_line(addr, count=3, timeout=5.0):
    """Connects to echo_backend --tcp: reads `hello from NAME`, sends `count`
    lines and expects each echoed; ok = greeting seen and all echoed."""
    host, _, port = addr.rpartition(":")
    host = host.strip("[]")
    out = {"kind": "tcp-line", "ok": False, "greeting": None, "pod": None, "echoed": 0,
           "count": count, "error": None}
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            f = s.makefile("rb")
            greeting = f.readline(4096).decode("latin-1").rstrip("\n")
            out["greeting"] = greeting
            if greeting.startswith("hello from "):
                out["pod"] = greeting[len("hello from "):]
            for i in range(count):
                line = f"line-{i}\n".encode()
                s.sendall(line)
                if f.readline(4096) == line:
                    out["echoed"] += 1
            s.shutdown(socket.SHUT_WR)
            out["eof_after_echo"] = f.read(1) == b""
    except OSError as e:
        out["error"] = f"{type(e).__name__}: {e}"
    out["ok"] = out["pod"] is not None and out["echoed"] == count and out["error"] is None
    return out


# ---- /__stats --------------------------------------------------------------
def backend_stats(url, reset=False, timeout=5.0):
    """The backend's /__stats JSON (url: any http:// URL of the backend)."""
    import http.client
    host, port, _, _ = split_url(url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/__stats?reset=1" if reset else "/__stats")
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"/__stats answered {resp.status}")
        return json.loads(data)
    finally:
        conn.close()


# ---- CLI -------------------------------------------------------------------------
def _http_args(p):
    p.add_argument("--url", required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--method", default="GET")
    p.add_argument("--header", action="append", default=[], metavar="NAME:VALUE")
    p.add_argument("--body", help="request body (text)")
    p.add_argument("--body-size", type=int, help="request body of N pattern bytes")
    p.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    p.add_argument("--deadline", type=float, default=120.0, help="whole run, seconds")
    p.add_argument("--count-header", action="append", default=[], metavar="NAME",
                   help="count the values of this response header")
    p.add_argument("--count-field", action="append", default=[], metavar="FIELD",
                   help="count values of an echo JSON field (dotted: headers.x-foo)")
    p.add_argument("--keep", type=int, default=0, help="include the first N responses")


def main(argv=None):
    ap = argparse.ArgumentParser(description="waypoint test clients (one JSON summary line)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("http1-keepalive", help="N requests on one HTTP/1.1 connection")
    _http_args(p)
    p.add_argument("--chunked", action="store_true", help="send the body chunked")
    p.add_argument("--allow-reconnect", action="store_true")
    p = sub.add_parser("h2-concurrent", help="N requests as S streams on one h2c connection")
    _http_args(p)
    p.add_argument("--streams", type=int, default=10)
    p.add_argument("--authority")
    p = sub.add_parser("http-stream", help="arrival times of a streamed response's lines")
    p.add_argument("--url", required=True)
    p.add_argument("--h2", action="store_true")
    p.add_argument("--header", action="append", default=[])
    p.add_argument("--timeout", type=float, default=10.0)
    for name in ("grpc-unary", "grpc-stream", "grpc-fail"):
        p = sub.add_parser(name)
        p.add_argument("--target", required=True, help="host:port")
        p.add_argument("--metadata", action="append", default=[], metavar="KEY:VALUE")
        p.add_argument("--timeout", type=float, default=10.0)
        p.add_argument("--authority")
        if name == "grpc-unary":
            p.add_argument("--method", default="Unary", help="Unary|Slow|Fail|Headers")
            p.add_argument("--message", default="hi")
            p.add_argument("--count", type=int, default=1)
            p.add_argument("--expect-code", default="OK")
        elif name == "grpc-stream":
            p.add_argument("--k", type=int, default=3)
            p.add_argument("--interval-ms", type=int, default=0)
        else:
            p.add_argument("--code", default="NOT_FOUND")
            p.add_argument("--count", type=int, default=1)
    p = sub.add_parser("ws-echo")
    p.add_argument("--url", required=True, help="ws://host:port/ws")
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--header", action="append", default=[])
    p.add_argument("--timeout", type=float, default=10.0)
    p = sub.add_parser("tcp-line")
    p.add_argument("--addr", required=True, help="host:port")
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--timeout", type=float, default=5.0)
    p = sub.add_parser("stats", help="the backend's /__stats")
    p.add_argument("--url", required=True)
    p.add_argument("--reset", action="store_true")
    a = ap.parse_args(argv)

    common = {}
    if a.cmd in ("http1-keepalive", "h2-concurrent"):
        common = dict(count=a.count, method=a.method, headers=a.header, body=a.body,
                      body_size=a.body_size, timeout=a.timeout, deadline=a.deadline,
                      count_headers=a.count_header, count_fields=a.count_field, keep=a.keep)
    if a.cmd == "http1-keepalive":
        out = http1_keepalive(a.url, chunked=a.chunked, allow_reconnect=a.allow_reconnect, **common)
    elif a.cmd == "h2-concurrent":
        out = h2_concurrent(a.url, streams=a.streams, authority=a.authority, **common)
    elif a.cmd == "http-stream":
        out = http_stream(a.url, use_h2=a.h2, headers=a.header, timeout=a.timeout)
    elif a.cmd == "grpc-unary":
        out = grpc_unary(a.target, method=a.method, message=a.message, count=a.count,
                         metadata=a.metadata, timeout=a.timeout, authority=a.authority,
                         expect_code=a.expect_code)
    elif a.cmd == "grpc-stream":
        out = grpc_stream(a.target, k=a.k, interval_ms=a.interval_ms, metadata=a.metadata,
                          timeout=a.timeout, authority=a.authority)
    elif a.cmd == "grpc-fail":
        out = grpc_fail(a.target, code=a.code, count=a.count, metadata=a.metadata,
                        timeout=a.timeout, authority=a.authority)
    elif a.cmd == "ws-echo":
        out = ws_echo(a.url, count=a.count, size=a.size, headers=a.header, timeout=a.timeout)
    elif a.cmd == "tcp-line":
        out = tcp_line(a.addr, count=a.count, timeout=a.timeout)
    else:
        out = {"kind": "stats", "ok": True, **backend_stats(a.url, reset=a.reset)}
    print(json.dumps(out), flush=True)
    return 0 if out.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
