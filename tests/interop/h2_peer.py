#!/usr/bin/python3
"""Minimal HBONE peer on python3-h2 (Debian package), for wire interop.

Speaks HTTP/2 (h2c; run it over an already-TLS'd fd for HBONE proper):
  server: accepts CONNECT streams, answers 200 (400 for other methods or a
          malformed :authority; --status N to refuse) and echoes every byte
          back; END_STREAM from the client is echoed as END_STREAM. Prints
          one JSON line per request with the headers it saw.
  client: opens one CONNECT stream (plus --header NAME:VALUE), sends N
          pattern bytes, half-closes and reads the echo; prints one JSON
          line with the outcome.

Transports (pick one): --fd N (inherited socket), --stdio (stdin/stdout),
--connect HOST:PORT, --listen HOST:PORT (serves connections until killed).
With --connect, --tls-certs DIR makes it HBONE proper: Python's ssl (OpenSSL),
TLS 1.3 only, ALPN h2, the client certificate DIR/cert-chain.pem + key.pem,
the server verified against DIR/root-cert.pem and, with --tls-expect-id, its
SPIFFE URI SAN checked (the certificates carry no DNS name to match).
Exit code 0 on success, 1 on protocol failure, 2 on usage errors.
"""
import argparse
import hashlib
import json
import os
import re
import select
import socket
import ssl
import sys

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

AUTHORITY_RE = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$")
STREAM_WINDOW = 4 << 20
CONN_WINDOW = 16 << 20


class Transport:
    """A readable fd and a writable fd (the same one for sockets)."""

    def __init__(self, rfd, wfd):
        self.rfd, self.wfd = rfd, wfd

    def send(self, data):
        view = memoryview(data)
        while view:
            n = os.write(self.wfd, view)
            view = view[n:]

    def recv(self, timeout):
        ready, _, _ = select.select([self.rfd], [], [], timeout)
        if not ready:
            raise TimeoutError("no data from peer within %.1fs" % timeout)
        return os.read(self.rfd, 65536)


class TlsTransport:
    """A client TLS socket (blocking; select() only when OpenSSL has nothing buffered)."""

    def __init__(self, tls):
        self.tls = tls
        uris = [v for k, v in tls.getpeercert().get("subjectAltName", ()) if k == "URI"]
        self.info = {"tls_version": tls.version(), "alpn": tls.selected_alpn_protocol(),
                     "peer_uris": uris}

    def send(self, data):
        self.tls.sendall(data)

    def recv(self, timeout):
        if not self.tls.pending():
            ready, _, _ = select.select([self.tls], [], [], timeout)
            if not ready:
                raise TimeoutError("no data from peer within %.1fs" % timeout)
        try:
            return self.tls.recv(65536)
        except ssl.SSLZeroReturnError:
            return b""


def tls_connect(host, port, certs, expect_id, timeout):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False  # SPIFFE certificates: checked by URI SAN below
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(os.path.join(certs, "root-cert.pem"))
    ctx.load_cert_chain(os.path.join(certs, "cert-chain.pem"), os.path.join(certs, "key.pem"))
    ctx.set_alpn_protocols(["h2"])
    sock = socket.create_connection((host, port), timeout=timeout)
    tls = ctx.wrap_socket(sock)
    transport = TlsTransport(tls)
    if transport.info["alpn"] != "h2":
        raise ssl.SSLError("server did not negotiate ALPN h2: %r" % transport.info["alpn"])
    if expect_id and expect_id not in transport.info["peer_uris"]:
        raise ssl.SSLError("server identity %r is not %s" % (transport.info["peer_uris"], expect_id))
    return transport


def pattern(n):
    out = bytearray(n)
    x = 0x12345678
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out[i] = (x >> 16) & 0xFF
    return bytes(out)


def make_conn(client_side):
    # python-h2 4.1 insists on :scheme/:path in every request, but an HBONE
    # CONNECT (RFC 9113 §8.5) carries only :method and :authority: skip its
    # request-header validation in the direction that carries the CONNECT.
    cfg = h2.config.H2Configuration(client_side=client_side, header_encoding="utf-8",
                                    validate_outbound_headers=not client_side,
                                    validate_inbound_headers=client_side)
    conn = h2.connection.H2Connection(config=cfg)
    settings = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                h2.settings.SettingCodes.MAX_FRAME_SIZE: 1 << 20}
    if client_side:
        settings[h2.settings.SettingCodes.ENABLE_PUSH] = 0
    else:
        settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = 200
    conn.local_settings = h2.settings.Settings(client=client_side, initial_values=settings)
    # Settings given as initial values are never "acknowledged" inside h2,
    # so its inbound frame limit has to be raised by hand.
    conn.max_inbound_frame_size = 1 << 20
    conn.initiate_connection()
    conn.increment_flow_control_window(CONN_WINDOW - 65535)
    return conn


def send_all_possible(conn, stream_id, pending):
    """Sends as much of pending[stream_id] as the peer's windows allow."""
    buf = pending.get(stream_id)
    if not buf:
        return
    window = min(conn.local_flow_control_window(stream_id), len(buf["data"]))
    chunk = conn.max_outbound_frame_size
    sent = 0
    while sent < window:
        n = min(chunk, window - sent)
        conn.send_data(stream_id, bytes(buf["data"][sent:sent + n]))
        sent += n
    del buf["data"][:sent]
    if not buf["data"] and buf["end"]:
        conn.end_stream(stream_id)
        del pending[stream_id]


def serve(transport, timeout, status=200, response_headers=()):
    conn = make_conn(client_side=False)
    transport.send(conn.data_to_send())
    pending = {}
    while True:
        try:
            data = transport.recv(timeout)
        except TimeoutError:
            return 0
        if not data:
            return 0
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.RequestReceived):
                headers = dict(ev.headers)
                method = headers.get(":method")
                auth = headers.get(":authority", "")
                print(json.dumps({"event": "request", "stream": ev.stream_id,
                                  "headers": [list(h) for h in ev.headers]}), flush=True)
                if method != "CONNECT" or not AUTHORITY_RE.match(auth):
                    conn.send_headers(ev.stream_id, [(":status", "400")], end_stream=True)
                    continue
                if status != 200:
                    conn.send_headers(ev.stream_id, [(":status", str(status))],
                                      end_stream=True)
                    continue
                conn.send_headers(ev.stream_id, [(":status", "200"),
                                                 ("x-peer", "python-h2"),
                                                 ("x-seen-authority", auth)] +
                                  list(response_headers))
                pending[ev.stream_id] = {"data": bytearray(), "end": False}
            elif isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                if ev.stream_id in pending:
                    pending[ev.stream_id]["data"] += ev.data
            elif isinstance(ev, h2.events.StreamEnded):
                if ev.stream_id in pending:
                    pending[ev.stream_id]["end"] = True
            elif isinstance(ev, h2.events.StreamReset):
                pending.pop(ev.stream_id, None)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                transport.send(conn.data_to_send())
                return 0
        for sid in list(pending):
            send_all_possible(conn, sid, pending)
        out = conn.data_to_send()
        if out:
            transport.send(out)


def run_client(transport, authority, nbytes, timeout, extra_headers=()):
    conn = make_conn(client_side=True)
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "CONNECT"), (":authority", authority)] +
                      list(extra_headers))
    payload = pattern(nbytes)
    pending = {sid: {"data": bytearray(payload), "end": True}}
    transport.send(conn.data_to_send())
    result = {"status": None, "received": 0, "ended": False, "reset": None}
    digest = hashlib.sha256()
    while not result["ended"] and result["reset"] is None:
        data = transport.recv(timeout)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                result["status"] = dict(ev.headers).get(":status")
            elif isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                result["received"] += len(ev.data)
                digest.update(ev.data)
            elif isinstance(ev, h2.events.StreamEnded):
                result["ended"] = True
            elif isinstance(ev, h2.events.StreamReset):
                result["reset"] = int(ev.error_code)
        if result["status"] == "200":
            send_all_possible(conn, sid, pending)
        transport.send(conn.data_to_send())
    result["echo_ok"] = digest.hexdigest() == hashlib.sha256(payload).hexdigest()
    result["sent_sha256"] = hashlib.sha256(payload).hexdigest()
    result.update(getattr(transport, "info", {}))
    print(json.dumps(result), flush=True)
    conn.close_connection()
    try:
        transport.send(conn.data_to_send())  # best effort: the peer may be gone
    except OSError:
        pass
    return 0 if result["status"] == "200" and result["echo_ok"] else 1


def open_transports(args):
    if args.fd is not None:
        yield Transport(args.fd, args.fd)
    elif args.stdio:
        yield Transport(sys.stdin.fileno(), sys.stdout.fileno())
    elif args.connect and args.tls_certs:
        host, port = args.connect.rsplit(":", 1)
        yield tls_connect(host.strip("[]"), int(port), args.tls_certs, args.tls_expect_id,
                          args.timeout)
    elif args.connect:
        host, port = args.connect.rsplit(":", 1)
        sock = socket.create_connection((host.strip("[]"), int(port)), timeout=args.timeout)
        yield Transport(sock.fileno(), sock.fileno())
    else:
        host, port = args.listen.rsplit(":", 1)
        lsock = socket.create_server((host.strip("[]"), int(port)))
        print("listening %s:%d" % lsock.getsockname()[:2], flush=True)
        while True:
            sock, _ = lsock.accept()
            with sock:
                yield Transport(sock.fileno(), sock.fileno())


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["server", "client"])
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--fd", type=int)
    where.add_argument("--stdio", action="store_true")
    where.add_argument("--connect")
    where.add_argument("--listen")
    ap.add_argument("--authority", default="127.0.0.1:8080")
    ap.add_argument("--bytes", type=int, default=65536)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--header", action="append", default=[], metavar="NAME:VALUE",
                    help="client: extra CONNECT header; server: extra 200 header")
    ap.add_argument("--tls-certs", metavar="DIR",
                    help="--connect over TLS 1.3 with DIR/{cert-chain,key,root-cert}.pem")
    ap.add_argument("--tls-expect-id", metavar="SPIFFE_ID",
                    help="with --tls-certs: the server's URI SAN must be this")
    ap.add_argument("--status", type=int, default=200,
                    help="server: answer every CONNECT with this status")
    args = ap.parse_args()
    headers = []
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep or not name or name != name.lower():
            ap.error("--header wants lower-case NAME:VALUE, got %r" % h)
        headers.append((name, value))
    if args.mode == "client" and args.listen:
        ap.error("client mode needs --fd, --stdio or --connect")
    if args.tls_certs and not args.connect:
        ap.error("--tls-certs needs --connect")
    rc = 0
    try:
        for transport in open_transports(args):
            if args.mode == "server":
                try:
                    rc = serve(transport, args.timeout, args.status, headers)
                except (h2.exceptions.ProtocolError, OSError) as err:
                    print("h2_peer server: %s: %s" % (type(err).__name__, err),
                          file=sys.stderr, flush=True)
                    rc = 1
                if not args.listen:
                    break
            else:
                return run_client(transport, args.authority, args.bytes, args.timeout,
                                  headers)
    except (h2.exceptions.ProtocolError, OSError, TimeoutError) as err:  # ssl.SSLError is an OSError
        print("h2_peer %s: %s: %s" % (args.mode, type(err).__name__, err),
              file=sys.stderr, flush=True)
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
