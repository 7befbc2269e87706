#!/usr/bin/python3
"""A third-party HBONE server: Python's ssl (OpenSSL) + python3-h2.

TLS 1.3 with a client certificate required (verified against root-cert.pem),
ALPN h2; answers 200 to each CONNECT and echoes its bytes, END_STREAM for
END_STREAM. Prints "port N" once listening and one JSON line per request.
Usage: hbone_py_server.py --certs DIR [--port 0]
"""
import argparse
import json
import os
import socket
import ssl
import sys
import threading

import h2.config
import h2.connection
import h2.events


def serve(tls):
    cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8",
                                    validate_inbound_headers=False)
    conn = h2.connection.H2Connection(config=cfg)
    conn.initiate_connection()
    tls.sendall(conn.data_to_send())
    pending = {}
    while True:
        data = tls.recv(65536)
        if not data:
            return
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.RequestReceived):
                headers = dict(ev.headers)
                print(json.dumps({"headers": headers,
                                  "peer_cert": tls.getpeercert() is not None}), flush=True)
                status = "200" if headers.get(":method") == "CONNECT" else "400"
                conn.send_headers(ev.stream_id, [(":status", status)], end_stream=status != "200")
            elif isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                pending.setdefault(ev.stream_id, bytearray()).extend(ev.data)
            elif isinstance(ev, h2.events.StreamEnded):
                pending.setdefault(ev.stream_id, bytearray())
                pending[ev.stream_id] += b""  # mark
                pending[(ev.stream_id, "end")] = True
        for sid in [k for k in pending if isinstance(k, int)]:
            buf = pending[sid]
            while buf:
                window = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if window <= 0:
                    break
                chunk = bytes(buf[:window])
                conn.send_data(sid, chunk)
                del buf[:len(chunk)]
            if not buf and pending.get((sid, "end")):
                conn.end_stream(sid)
                del pending[sid]
                del pending[(sid, "end")]
        out = conn.data_to_send()
        if out:
            tls.sendall(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--certs", required=True)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(os.path.join(args.certs, "root-cert.pem"))
    ctx.load_cert_chain(os.path.join(args.certs, "cert-chain.pem"), os.path.join(args.certs, "key.pem"))
    ctx.set_alpn_protocols(["h2"])
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.1", args.port))
    lst.listen(16)
    print("port %d" % lst.getsockname()[1], flush=True)
    while True:
        raw, _ = lst.accept()
        try:
            tls = ctx.wrap_socket(raw, server_side=True)
        except ssl.SSLError as e:
            print(json.dumps({"tls_error": str(e)}), flush=True)
            raw.close()
            continue
        threading.Thread(target=serve, args=(tls,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
