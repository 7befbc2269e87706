#!/usr/bin/python3
"""echo_backend.py: the test backend ("pod") for waypoint netns tests.

One process, one asyncio loop (plus grpcio's own threads), serving every kind
of listener given on the command line (each flag may repeat; port 0 =
ephemeral):

    echo_backend.py --name reviews-v1 --namespace bookinfo --bind 0.0.0.0 \\
        --http 8080 --h2c 8081 --ws 8082 --grpc 9090 --tcp 9000 [--verbose]

  --http  HTTP/1.1, and on the same port h2c with prior knowledge (the client
          preface `PRI * HTTP/2.0`) and WebSocket (`Upgrade: websocket`).
  --ws    the same as --http (a separate port for route tests).
  --h2c   h2c prior knowledge only.
  --grpc  gRPC (grpcio, plaintext), service echo.Echo.
  --tcp   raw TCP echo: sends `hello from NAME\\n`, then echoes every byte.

Once every listener is bound it prints `listening {"http": [8080], ...}` (the
real ports) and then `ready` on stdout. SIGTERM/SIGINT exit 0.

HTTP answers (HTTP/1.1 and h2 alike) are JSON:
    {"pod", "namespace", "method", "path" (with query), "host" (Host or
     :authority), "proto" ("HTTP/1.1" | "HTTP/1.0" | "HTTP/2"), "headers":
     {lower-name: [values]}, "trailers": {...}, "remote": "ip:port", "local":
     "ip:port", "body_bytes", "body_sha256"} (+ "attempt" with ?uuid=, "error"
     on a 400 from the backend itself)
and carry the response header `x-echo-pod: NAME`. Behaviours:
    X-Echo-Set-Header: A:1,B:2   response headers A and B (repeatable)
    /status/NNN                  answers NNN (200..599), JSON body (none for 204/304)
    ?delay=250ms|1s|1.5s|100us   waits before answering (max 30 s, else 400)
    ?onewrite=1                  h2: HEADERS, DATA and END_STREAM in one write
    /retry?uuid=U&succeedAfter=N[&responseCode=C][&resetCode=NAME]
                                 the first N tries of uuid U fail: TCP RST
                                 (HTTP/1.1) / RST_STREAM NAME (h2, default
                                 INTERNAL_ERROR), or status C when given; then 200
    /bytes/N                     N bytes (<= 1 GiB) of the pattern byte[i] = i % 251
    /stream?n=K&interval=10ms    K JSON lines as K chunks / DATA frames, spaced
    /trailers                    JSON body then trailer `x-trailer: yes`
                                 (h2; HTTP/1.1 chunked too)
    /__stats[?reset=1]           counters per path, uuid, proto, status, host (not counted)
    --delay 2s                   every HTTP answer waits at least that long (a slow pod)

gRPC (generic handlers, raw bytes in and out; every call gets trailing
metadata `x-pod: NAME`):
    /echo.Echo/Unary         echoes the request bytes
    /echo.Echo/ServerStream  request b"K" or b"K INTERVAL_MS" -> K messages b"msg-0".. b"msg-<K-1>"
    /echo.Echo/Fail          request b"NOT_FOUND" (a grpc.StatusCode name) -> that status,
                             details "echo.Echo/Fail: NOT_FOUND requested"
    /echo.Echo/Slow          request b"250" -> sleeps 250 ms (max 30 s), echoes
    /echo.Echo/Headers       answers JSON {"pod", "metadata": {k: [v]}, "peer"}
A client calls them without generated code:
    ch = grpc.insecure_channel("10.96.0.30:9090")
    unary = ch.unary_unary("/echo.Echo/Unary", request_serializer=lambda b: b,
                           response_deserializer=lambda b: b)
    reply, call = unary.with_call(b"hi", timeout=5)
    dict(call.trailing_metadata())["x-pod"]
    stream = ch.unary_stream("/echo.Echo/ServerStream", lambda b: b, lambda b: b)
    list(stream(b"3", timeout=5))  # [b"msg-0", b"msg-1", b"msg-2"]
(tests/support/waypoint_clients.py wraps all of this.)

Debian packages: python3-h11, python3-h2, python3-wsproto, python3-grpcio.
"""
import argparse
import asyncio
import collections
import functools
import hashlib
import http
import json
import os
import re
import resource
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse

import h11
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import wsproto.connection
import wsproto.events
import wsproto.utilities

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_DELAY_S = 30.0
MAX_BYTES = 1 << 30
MAX_STREAM_CHUNKS = 10000
MAX_STREAM_TOTAL_S = 300.0
MAX_SUCCEED_AFTER = 10000
READ_SIZE = 65536
# /bytes/N content: byte i is i % 251. One chunk is a whole number of periods,
# so the body is PATTERN repeated and cut at N.
PATTERN = bytes(i % 251 for i in range(251 * 256))
# Headers X-Echo-Set-Header may not set: they would break the framing.
FRAMING_HEADERS = {"content-length", "transfer-encoding", "connection", "keep-alive",
                   "upgrade", "proxy-connection", "te"}
TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
DURATION = re.compile(r"^(\d+(?:\.\d+)?)(us|ms|s|m)$")
UNIT_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def pattern_chunks(n):
    """Yields the /bytes/N body as memoryview chunks of at most len(PATTERN)."""
    view = memoryview(PATTERN)
    while n > 0:
        k = min(n, len(PATTERN))
        yield view[:k]
        n -= k


@functools.lru_cache(maxsize=64)
def pattern_sha256(n):
    """Hex sha256 of the N-byte /bytes/N body."""
    h = hashlib.sha256()
    for chunk in pattern_chunks(n):
        h.update(chunk)
    return h.hexdigest()


def parse_duration(text):
    """'250ms' | '1s' | '1.5s' | '100us' | '1m' -> seconds; ValueError otherwise."""
    m = DURATION.match(text.strip())
    if not m:
        raise ValueError(f"bad duration {text!r} (want e.g. 250ms, 1s)")
    return float(m.group(1)) * UNIT_S[m.group(2)]


def hostport(addr):
    if not addr:
        return ""
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class BadRequest(Exception):
    pass


MIN_DELAY_S = 0.0  # --delay


class Stats:
    """Per-process counters; grpc threads and the loop both record."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.requests = 0
        self.paths = collections.Counter()
        self.uuids = collections.Counter()
        self.protos = collections.Counter()
        self.statuses = collections.Counter()
        self.connections = collections.Counter()
        self.hosts = collections.Counter()
        self.bodies = collections.Counter()

    def request(self, path, proto, uuid=None, host=None):
        """Counts one request; returns the try number of uuid (1 = first)."""
        with self.lock:
            self.requests += 1
            self.paths[path] += 1
            if host is not None:
                self.hosts[host] += 1
            self.protos[proto] += 1
            if uuid is None:
                return 0
            self.uuids[uuid] += 1
            return self.uuids[uuid]

    def status(self, code):
        with self.lock:
            self.statuses[str(code)] += 1

    def connection(self, kind):
        with self.lock:
            self.connections[kind] += 1

    def snapshot(self, reset=False):
        with self.lock:
            out = {"requests": self.requests, "paths": dict(self.paths),
                   "uuids": dict(self.uuids), "protos": dict(self.protos),
                   "statuses": dict(self.statuses), "connections": dict(self.connections),
                   "hosts": dict(self.hosts)}
            if reset:
                self.reset()
            return out


class Request:
    """One HTTP request as both protocols see it (strings decoded latin-1)."""

    def __init__(self, method, target, host, proto, headers, remote, local):
        self.method, self.target, self.host, self.proto = method, target, host, proto
        self.headers = headers  # [(lower-name, value)]
        self.trailers = []
        self.remote, self.local = remote, local
        self.body_bytes = 0
        self.sha = hashlib.sha256()

    def feed(self, data):
        self.body_bytes += len(data)
        self.sha.update(data)

    def header_values(self, name):
        return [v for k, v in self.headers if k == name]


class Plan:
    """What to answer: built once per request, then written by h1 or h2."""

    def __init__(self):
        self.status = 200
        self.headers = []  # [(name, value)] beyond the defaults
        self.kind = "json"  # json | bytes | stream | reset
        self.body = b""
        self.delay = 0.0
        self.trailers = []
        self.n = 0
        self.interval = 0.0
        self.reset_code = h2.errors.ErrorCodes.INTERNAL_ERROR
        self.content_type = "application/json"
        self.one_write = False  # h2: the whole answer in one socket write

    def has_body(self):
        return self.status not in (204, 304)


def _multi(pairs):
    out = {}
    for k, v in pairs:
        out.setdefault(k, []).append(v)
    return out


class Backend:
    def __init__(self, args):
        self.name = args.name
        self.namespace = args.namespace
        self.verbose = args.verbose
        self.stats = Stats()

    def log(self, msg):
        if self.verbose:
            print(f"{time.strftime('%H:%M:%S')} {self.name} {msg}", file=sys.stderr, flush=True)

    # ---- shared request semantics -------------------------------------------
    def echo(self, req, extra=None):
        d = {"pod": self.name, "namespace": self.namespace, "method": req.method,
             "path": req.target, "host": req.host, "proto": req.proto,
             "headers": _multi(req.headers), "trailers": _multi(req.trailers),
             "remote": req.remote, "local": req.local, "body_bytes": req.body_bytes,
             "body_sha256": req.sha.hexdigest()}
        if extra:
            d.update(extra)
        return d

    def plan(self, req):
        p = Plan()
        url = urllib.parse.urlsplit(req.target)
        path = url.path or "/"
        q = {k: v[0] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        if path == "/__stats":
            p.body = json.dumps(self.stats.snapshot(reset=q.get("reset") == "1")).encode()
            return p
        attempt = self.stats.request(path, req.proto, q.get("uuid"), req.host)
        extra = {"attempt": attempt} if "uuid" in q else {}
        try:
            self._plan_behaviour(p, req, path, q, attempt)
        except BadRequest as e:
            p = Plan()
            p.status = 400
            extra["error"] = str(e)
        if p.kind == "json":
            p.body = json.dumps(self.echo(req, extra)).encode()
        return p

    def _plan_behaviour(self, p, req, path, q, attempt):
        p.one_write = q.get("onewrite") == "1"
        if "delay" in q:
            try:
                p.delay = parse_duration(q["delay"])
            except ValueError as e:
                raise BadRequest(str(e))
            if p.delay > MAX_DELAY_S:
                raise BadRequest(f"delay {q['delay']} above {MAX_DELAY_S:g}s")
        for spec in req.header_values("x-echo-set-header"):
            for item in spec.split(","):
                if not item.strip():
                    continue
                name, sep, value = item.partition(":")
                name, value = name.strip(), value.strip()
                if not sep or not TOKEN.match(name) or any(ord(c) < 32 for c in value):
                    raise BadRequest(f"bad X-Echo-Set-Header item {item!r}")
                if name.lower() not in FRAMING_HEADERS:
                    p.headers.append((name, value))
        if path.startswith("/status/"):
            p.status = _int(path[len("/status/"):], "status", 200, 599)
        elif path == "/retry":
            if "uuid" not in q:
                raise BadRequest("/retry needs uuid=")
            succeed_after = _int(q.get("succeedAfter", "0"), "succeedAfter", 0, MAX_SUCCEED_AFTER)
            if attempt <= succeed_after:
                if "responseCode" in q:
                    p.status = _int(q["responseCode"], "responseCode", 200, 599)
                else:
                    p.kind = "reset"
                    name = q.get("resetCode", "INTERNAL_ERROR")
                    try:
                        p.reset_code = h2.errors.ErrorCodes[name]
                    except KeyError:
                        raise BadRequest(f"bad resetCode {name!r}")
        elif path.startswith("/bytes/"):
            p.kind = "bytes"
            p.n = _int(path[len("/bytes/"):], "bytes", 0, MAX_BYTES)
            p.content_type = "application/octet-stream"
        elif path == "/stream":
            p.kind = "stream"
            p.n = _int(q.get("n", "5"), "n", 1, MAX_STREAM_CHUNKS)
            try:
                p.interval = parse_duration(q.get("interval", "100ms"))
            except ValueError as e:
                raise BadRequest(str(e))
            if p.interval * p.n > MAX_STREAM_TOTAL_S:
                raise BadRequest(f"stream longer than {MAX_STREAM_TOTAL_S:g}s")
            p.content_type = "application/x-ndjson"
        elif path == "/trailers":
            p.trailers = [("x-trailer", "yes")]

    async def prepare(self, req):
        """plan() and its delay; a reset is counted and logged here."""
        p = self.plan(req)
        if MIN_DELAY_S and not req.target.startswith("/__stats"):
            p.delay = max(p.delay, MIN_DELAY_S)
        if p.delay:
            await asyncio.sleep(p.delay)
        if p.kind == "reset":
            self.stats.status("reset")
            how = "RST_STREAM " + p.reset_code.name if req.proto == "HTTP/2" else "TCP RST"
            self.log(f"{req.proto} {req.remote} {req.method} {req.target} -> {how}")
        return p

    def response_headers(self, p):
        """Defaults, replaced by X-Echo-Set-Header names, then the set headers."""
        base = [("content-type", p.content_type), ("x-echo-pod", self.name)]
        names = {k.lower() for k, _ in p.headers}
        return [(k, v) for k, v in base if k not in names] + p.headers

    def stream_line(self, i, n):
        return (json.dumps({"chunk": i, "of": n, "pod": self.name}) + "\n").encode()

    # ---- listeners -----------------------------------------------------------
    async def on_http(self, reader, writer):
        """--http / --ws: sniffs the h2 preface, else HTTP/1.1 (+ WebSocket)."""
        try:
            buf = b""
            while len(buf) < len(H2_PREFACE) and H2_PREFACE.startswith(buf):
                data = await reader.read(READ_SIZE)
                if not data:
                    break
                buf += data
            if buf.startswith(H2_PREFACE):
                await H2Server(self, reader, writer).run(buf)
            else:
                await self.serve_h1(reader, writer, buf)
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def on_h2c(self, reader, writer):
        try:
            await H2Server(self, reader, writer).run(b"")
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def on_tcp(self, reader, writer):
        self.stats.connection("tcp")
        try:
            writer.write(f"hello from {self.name}\n".encode())
            await writer.drain()
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    # ---- HTTP/1.1 ------------------------------------------------------------
    async def serve_h1(self, reader, writer, initial):
        self.stats.connection("http1")
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=READ_SIZE)
        conn.receive_data(initial)
        remote = hostport(writer.get_extra_info("peername"))
        local = hostport(writer.get_extra_info("sockname"))
        req = None
        while True:
            try:
                ev = conn.next_event()
            except h11.RemoteProtocolError as e:
                await self._h1_error(conn, writer, e)
                return
            if ev is h11.NEED_DATA:
                if conn.they_are_waiting_for_100_continue:
                    writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
                data = await reader.read(READ_SIZE)
                conn.receive_data(data)
                continue
            if isinstance(ev, h11.Request):
                headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in ev.headers]
                hosts = [v for k, v in headers if k == "host"]
                req = Request(ev.method.decode("latin-1"), ev.target.decode("latin-1"),
                              hosts[0] if hosts else "", "HTTP/" + ev.http_version.decode(),
                              headers, remote, local)
            elif isinstance(ev, h11.Data):
                req.feed(ev.data)
            elif isinstance(ev, h11.EndOfMessage):
                req.trailers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in ev.headers]
                if _wants_websocket(req):
                    await self.serve_ws(conn, reader, writer, req)
                    return
                if not await self.respond_h1(conn, writer, req):
                    return
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    await writer.drain()
                    return
                conn.start_next_cycle()
                req = None
            elif isinstance(ev, h11.ConnectionClosed) or ev is h11.PAUSED:
                return

    async def _h1_error(self, conn, writer, err):
        if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            try:
                await self._h1_final(conn, writer, 400, f"bad request: {err}")
            except h11.LocalProtocolError:
                pass

    async def _h1_final(self, conn, writer, status, error, headers=()):
        """A JSON {"pod", "error"} answer that closes the connection."""
        body = json.dumps({"pod": self.name, "error": error}).encode()
        writer.write(conn.send(h11.Response(status_code=status, headers=[
            ("content-type", "application/json"), ("content-length", str(len(body))),
            ("connection", "close"), *headers])))
        writer.write(conn.send(h11.Data(data=body)))
        writer.write(conn.send(h11.EndOfMessage()))
        self.stats.status(status)
        await writer.drain()

    async def respond_h1(self, conn, writer, req):
        """Writes one response; False when the connection was reset."""
        p = await self.prepare(req)
        if p.kind == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        headers = self.response_headers(p)
        head = req.method == "HEAD"
        chunked_ok = req.proto == "HTTP/1.1"
        trailers = p.trailers if chunked_ok else []
        if p.kind == "json" and p.has_body():
            if trailers:
                headers.append(("trailer", ", ".join(k for k, _ in trailers)))
            else:
                headers.append(("content-length", str(len(p.body))))
        elif p.kind == "bytes":
            headers.append(("content-length", str(p.n)))
        reason = _reason(p.status)
        writer.write(conn.send(h11.Response(status_code=p.status, headers=headers, reason=reason)))
        self.stats.status(p.status)
        self.log(f"{req.proto} {req.remote} {req.method} {req.target} -> {p.status}")
        if not head and p.has_body():
            if p.kind == "json":
                writer.write(conn.send(h11.Data(data=p.body)))
            elif p.kind == "bytes":
                for chunk in pattern_chunks(p.n):
                    writer.write(conn.send(h11.Data(data=chunk)))
                    await writer.drain()
            elif p.kind == "stream":
                for i in range(p.n):
                    writer.write(conn.send(h11.Data(data=self.stream_line(i, p.n))))
                    await writer.drain()
                    if i + 1 < p.n:
                        await asyncio.sleep(p.interval)
        writer.write(conn.send(h11.EndOfMessage(headers=trailers if not head else [])))
        await writer.drain()
        return True

    # ---- WebSocket (after an HTTP/1.1 upgrade) -------------------------------
    async def serve_ws(self, conn, reader, writer, req):
        self.stats.request(urllib.parse.urlsplit(req.target).path, "websocket")
        version = req.header_values("sec-websocket-version")
        if version != ["13"]:
            await self._h1_final(conn, writer, 426, "Sec-WebSocket-Version must be 13",
                                 [("sec-websocket-version", "13")])
            return
        self.stats.connection("ws")
        key = req.header_values("sec-websocket-key")[0].encode("latin-1")
        headers = [("upgrade", "websocket"), ("connection", "Upgrade"),
                   ("sec-websocket-accept", wsproto.utilities.generate_accept_token(key).decode()),
                   ("x-echo-pod", self.name)]
        offered = [s.strip() for v in req.header_values("sec-websocket-protocol") for s in v.split(",")]
        if offered and offered[0]:
            headers.append(("sec-websocket-protocol", offered[0]))
        writer.write(conn.send(h11.InformationalResponse(status_code=101, headers=headers)))
        self.stats.status(101)
        self.log(f"{req.proto} {req.remote} GET {req.target} -> 101 websocket")
        await writer.drain()
        trailing, _closed = conn.trailing_data
        ws = wsproto.connection.Connection(wsproto.connection.ConnectionType.SERVER,
                                           trailing_data=trailing)
        E = wsproto.events
        while True:
            for ev in ws.events():
                if isinstance(ev, (E.TextMessage, E.BytesMessage)):
                    kind = type(ev)
                    writer.write(ws.send(kind(data=ev.data, message_finished=ev.message_finished)))
                elif isinstance(ev, E.Ping):
                    writer.write(ws.send(ev.response()))
                elif isinstance(ev, E.CloseConnection):
                    if ws.state is wsproto.connection.ConnectionState.REMOTE_CLOSING:
                        writer.write(ws.send(ev.response()))
                    await writer.drain()
                    return
            await writer.drain()
            data = await reader.read(READ_SIZE)
            if not data:
                return
            ws.receive_data(data)


def _int(text, what, lo, hi):
    try:
        v = int(text)
    except ValueError:
        raise BadRequest(f"bad {what} {text!r}")
    if not lo <= v <= hi:
        raise BadRequest(f"{what} {v} outside {lo}..{hi}")
    return v


def _reason(code):
    try:
        return http.HTTPStatus(code).phrase.encode()
    except ValueError:
        return b""


def _wants_websocket(req):
    up = [t.strip().lower() for v in req.header_values("upgrade") for t in v.split(",")]
    return "websocket" in up and req.method == "GET" and bool(req.header_values("sec-websocket-key"))


class H2Server:
    """One h2c connection: a reader loop and one task per request stream."""

    def __init__(self, backend, reader, writer):
        self.b = backend
        self.reader, self.writer = reader, writer
        self.remote = hostport(writer.get_extra_info("peername"))
        self.local = hostport(writer.get_extra_info("sockname"))
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="latin-1")
        self.conn = h2.connection.H2Connection(cfg)
        self.conn.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1000,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 1 << 16})
        self.requests = {}  # stream id -> Request (until answered)
        self.tasks = {}  # stream id -> asyncio.Task
        self.window = {}  # stream id -> asyncio.Event (flow-control window opened)
        self.closed = False

    async def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def run(self, initial):
        self.b.stats.connection("h2")
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(16 << 20)
        try:
            data = initial
            while True:
                if data:
                    try:
                        events = self.conn.receive_data(data)
                    except h2.exceptions.ProtocolError:
                        await self.flush()  # the GOAWAY h2 queued
                        return
                    for ev in events:
                        self.on_event(ev)
                    await self.flush()
                    if self.closed:
                        return
                data = await self.reader.read(READ_SIZE)
                if not data:
                    return
        finally:
            self.closed = True
            for t in list(self.tasks.values()):
                t.cancel()
            self._wake_all()

    def on_event(self, ev):
        E = h2.events
        if isinstance(ev, E.RequestReceived):
            hd = ev.headers
            pseudo = {k: v for k, v in hd if k.startswith(":")}
            regular = [(k, v) for k, v in hd if not k.startswith(":")]
            hosts = [v for k, v in regular if k == "host"]
            host = pseudo.get(":authority") or (hosts[0] if hosts else "")
            self.requests[ev.stream_id] = Request(pseudo.get(":method", ""), pseudo.get(":path", "/"),
                                                  host, "HTTP/2", regular, self.remote, self.local)
        elif isinstance(ev, E.DataReceived):
            req = self.requests.get(ev.stream_id)
            if req is not None:
                req.feed(ev.data)
            if ev.flow_controlled_length:
                try:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                except h2.exceptions.StreamClosedError:
                    pass
        elif isinstance(ev, E.TrailersReceived):
            req = self.requests.get(ev.stream_id)
            if req is not None:
                req.trailers = [(k, v) for k, v in ev.headers]
        elif isinstance(ev, E.StreamEnded):
            req = self.requests.pop(ev.stream_id, None)
            if req is not None:
                self.window[ev.stream_id] = asyncio.Event()
                self.tasks[ev.stream_id] = asyncio.ensure_future(self.answer(ev.stream_id, req))
        elif isinstance(ev, E.StreamReset):
            self.requests.pop(ev.stream_id, None)
            task = self.tasks.pop(ev.stream_id, None)
            if task is not None:
                task.cancel()
        elif isinstance(ev, E.WindowUpdated):
            if ev.stream_id == 0:
                self._wake_all()
            elif ev.stream_id in self.window:
                self.window[ev.stream_id].set()
        elif isinstance(ev, E.RemoteSettingsChanged):
            self._wake_all()
        elif isinstance(ev, E.ConnectionTerminated):
            self.closed = True

    def _wake_all(self):
        for e in self.window.values():
            e.set()

    async def send_data(self, sid, data):
        view = memoryview(data)
        while view:
            if self.closed:
                raise ConnectionError("h2 connection closed")
            window = self.conn.local_flow_control_window(sid)
            if window <= 0:
                event = self.window[sid]
                event.clear()
                await event.wait()
                continue
            n = min(window, self.conn.max_outbound_frame_size, len(view))
            self.conn.send_data(sid, view[:n].tobytes())
            view = view[n:]
            await self.flush()

    async def answer(self, sid, req):
        try:
            await self._answer(sid, req)
        except (h2.exceptions.StreamClosedError, ConnectionError, OSError, asyncio.CancelledError):
            pass
        except h2.exceptions.ProtocolError as e:
            self.b.log(f"h2 stream {sid}: {e!r}")
        finally:
            self.tasks.pop(sid, None)
            self.window.pop(sid, None)

    async def _answer(self, sid, req):
        b = self.b
        p = await b.prepare(req)
        if p.kind == "reset":
            self.conn.reset_stream(sid, error_code=p.reset_code)
            await self.flush()
            return
        headers = [(":status", str(p.status))]
        headers += [(k.lower(), v) for k, v in b.response_headers(p)]
        if p.kind == "json" and p.has_body():
            headers.append(("content-length", str(len(p.body))))
        elif p.kind == "bytes":
            headers.append(("content-length", str(p.n)))
        no_body = req.method == "HEAD" or not p.has_body()
        self.conn.send_headers(sid, headers, end_stream=no_body and not p.trailers)
        b.stats.status(p.status)
        b.log(f"HTTP/2 {req.remote} {req.method} {req.target} -> {p.status}")
        if p.one_write and p.kind == "json" and not no_body and not p.trailers:
            # A fast server: the whole answer arrives at the proxy at once.
            self.conn.send_data(sid, p.body, end_stream=True)
            await self.flush()
            return
        await self.flush()
        if not no_body:
            if p.kind == "json":
                await self.send_data(sid, p.body)
            elif p.kind == "bytes":
                for chunk in pattern_chunks(p.n):
                    await self.send_data(sid, chunk)
            elif p.kind == "stream":
                for i in range(p.n):
                    await self.send_data(sid, b.stream_line(i, p.n))
                    if i + 1 < p.n:
                        await asyncio.sleep(p.interval)
        if p.trailers:
            self.conn.send_headers(sid, p.trailers, end_stream=True)
        elif not no_body:
            self.conn.end_stream(sid)
        await self.flush()


# ---- gRPC -------------------------------------------------------------------
def start_grpc(backend, bind, ports):
    """Starts a grpcio server on every port; returns (server, [bound ports])."""
    import concurrent.futures
    import grpc

    name = backend.name
    trailing = (("x-pod", name),)

    def counted(method):
        backend.stats.request(f"/echo.Echo/{method}", "grpc")

    def unary(request, ctx):
        counted("Unary")
        ctx.set_trailing_metadata(trailing)
        return request

    def server_stream(request, ctx):
        counted("ServerStream")
        ctx.set_trailing_metadata(trailing)
        parts = request.decode("latin-1").split()
        try:
            k = int(parts[0])
            interval = int(parts[1]) / 1000.0 if len(parts) > 1 else 0.0
        except (ValueError, IndexError):
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, f"want b'K [INTERVAL_MS]', got {request!r}")
        if not (0 <= k <= 100000 and 0 <= interval * k <= MAX_STREAM_TOTAL_S):
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "K or interval out of range")
        cancelled = threading.Event()
        ctx.add_callback(cancelled.set)
        for i in range(k):
            if cancelled.is_set():
                return
            yield f"msg-{i}".encode()
            if interval and i + 1 < k:
                cancelled.wait(interval)

    def fail(request, ctx):
        counted("Fail")
        ctx.set_trailing_metadata(trailing)
        code_name = request.decode("latin-1").strip()
        code = grpc.StatusCode.__members__.get(code_name)
        if code is None:
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown status code {code_name!r}")
        if code is grpc.StatusCode.OK:
            return b""
        ctx.abort(code, f"echo.Echo/Fail: {code_name} requested")

    def slow(request, ctx):
        counted("Slow")
        ctx.set_trailing_metadata(trailing)
        try:
            ms = int(request.decode("latin-1").strip())
        except ValueError:
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, f"want milliseconds, got {request!r}")
        if not 0 <= ms <= MAX_DELAY_S * 1000:
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{ms} ms outside 0..{MAX_DELAY_S * 1000:g}")
        cancelled = threading.Event()
        ctx.add_callback(cancelled.set)
        cancelled.wait(ms / 1000.0)
        return request

    def headers(request, ctx):
        counted("Headers")
        ctx.set_trailing_metadata(trailing)
        md = {}
        for k, v in ctx.invocation_metadata():
            md.setdefault(k, []).append(v if isinstance(v, str) else v.hex())
        return json.dumps({"pod": name, "metadata": md, "peer": ctx.peer()}).encode()

    h = grpc.method_handlers_generic_handler("echo.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
        "Headers": grpc.unary_unary_rpc_method_handler(headers),
    })
    # so_reuseport 0: a port held by another process must fail here, not be shared.
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=64),
                         handlers=(h,), options=[("grpc.so_reuseport", 0)])
    bound = []
    for port in ports:
        addr = f"[{bind}]:{port}" if ":" in bind else f"{bind}:{port}"
        try:
            got = server.add_insecure_port(addr)
        except RuntimeError as e:
            raise OSError(f"grpc: cannot bind {addr}: {e}")
        if not got:
            raise OSError(f"grpc: cannot bind {addr}")
        bound.append(got)
    server.start()
    return server, bound


# ---- main -------------------------------------------------------------------
async def amain(args):
    b = Backend(args)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    servers, ports = [], {}
    kinds = [("http", args.http, b.on_http), ("ws", args.ws, b.on_http),
             ("h2c", args.h2c, b.on_h2c), ("tcp", args.tcp, b.on_tcp)]
    for kind, plist, cb in kinds:
        for port in plist or []:
            srv = await asyncio.start_server(cb, args.bind, port, backlog=1024)
            servers.append(srv)
            ports.setdefault(kind, []).append(srv.sockets[0].getsockname()[1])
    grpc_server = None
    if args.grpc:
        grpc_server, ports["grpc"] = start_grpc(b, args.bind, args.grpc)
    print("listening " + json.dumps(ports), flush=True)
    print("ready", flush=True)
    await stop.wait()
    for srv in servers:
        srv.close()
    if grpc_server is not None:
        grpc_server.stop(0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for kind in ("http", "h2c", "ws", "grpc", "tcp"):
        ap.add_argument("--" + kind, type=int, action="append", metavar="PORT",
                        help=f"serve {kind} on PORT (repeatable; 0 = ephemeral)")
    ap.add_argument("--name", default=os.environ.get("POD_NAME") or socket.gethostname())
    ap.add_argument("--namespace", default=os.environ.get("POD_NAMESPACE", "default"))
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--verbose", action="store_true", help="one line per request on stderr")
    ap.add_argument("--delay", default="0s",
                    help="answer every HTTP request after at least this long (a slow pod)")
    args = ap.parse_args(argv)
    global MIN_DELAY_S
    MIN_DELAY_S = parse_duration(args.delay)
    if not any((args.http, args.h2c, args.ws, args.grpc, args.tcp)):
        ap.error("give at least one of --http --h2c --ws --grpc --tcp")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    try:
        asyncio.run(amain(args))
    except OSError as e:
        print(f"echo_backend: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
