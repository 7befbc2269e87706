"""A third-party HBONE client for tests: Python's ssl (OpenSSL) + python3-h2.

hbone_connect(ns, server_ip, authority, cert_dir) opens mTLS to server_ip:15008
from inside netns `ns` with the certificate in cert_dir (ambitctl ca issue
layout), sends CONNECT :authority, and returns (status, first_line_of_echo).
"""
import os
import socket
import ssl

import h2.config
import h2.connection
import h2.events

from harness import in_netns


def hbone_connect(ns, server_ip, authority, cert_dir, payload=b"hello\n", timeout=5.0, headers=()):
    def body():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.check_hostname = False  # SPIFFE identities are URI SANs, not hostnames
        ctx.load_verify_locations(os.path.join(cert_dir, "root-cert.pem"))
        ctx.load_cert_chain(os.path.join(cert_dir, "cert-chain.pem"), os.path.join(cert_dir, "key.pem"))
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection((server_ip, 15008), timeout=timeout)
        s = ctx.wrap_socket(raw)
        assert s.selected_alpn_protocol() == "h2", s.selected_alpn_protocol()
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                        validate_outbound_headers=False)
        conn = h2.connection.H2Connection(config=cfg)
        conn.initiate_connection()
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "CONNECT"), (":authority", authority), *headers])
        s.sendall(conn.data_to_send())
        status, data, sent = None, b"", False
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            for ev in conn.receive_data(chunk):
                if os.environ.get("HBONE_DEBUG"): print("h2 event:", ev, flush=True)
                if isinstance(ev, h2.events.ResponseReceived):
                    status = int(dict(ev.headers)[":status"])
                    if status == 200 and not sent:
                        conn.send_data(sid, payload)
                        sent = True
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                    data += ev.data
                elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                    s.close()
                    return status, data
            s.sendall(conn.data_to_send())
            if status is not None and status != 200:
                break
            if data.count(b"\n") >= 2 or (status == 200 and data.endswith(payload)):
                break
        s.close()
        return status, data
    return in_netns(ns, body)
