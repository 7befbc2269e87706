#!/usr/bin/python3
"""A small authoritative DNS server for the DNS proxy tests: the "upstream
resolver" named in the agent's resolv.conf. Standard library only; written
from RFC 1035 / RFC 6891.

    dns_upstream.py IP PORT LOGFILE [OVERRIDES]

Serves fixed records over UDP and TCP (see RECORDS): ext.example.com (A,
AAAA), big.example.com (300 A records, > 4 KiB: over UDP it answers with TC
set and no records when the answer exceeds the client's size, 512 or its EDNS
size), slow.example.com (answered after 1.5 s), and NXDOMAIN for anything
else. Appends one line per query to LOGFILE: "<udp|tcp> <name> <type>".
Prints "ready" when both sockets listen.

OVERRIDES (optional): a JSON file re-read on every query, so a test can
change answers while the server runs: {"name": {"a": ["192.0.2.1"],
"aaaa": [], "ttl": 2, "rcode": 0}}; a listed name wins over RECORDS.
"""
import json
import os
import socket
import struct
import sys
import threading
import time

A, AAAA = 1, 28
RECORDS = {
    ("ext.example.com", A): [bytes([192, 0, 2, 10])],
    ("ext.example.com", AAAA): [bytes.fromhex("20010db8000000000000000000000010")],
    ("big.example.com", A): [bytes([198, 18, i // 250, i % 250 + 1]) for i in range(300)],
    ("slow.example.com", A): [bytes([192, 0, 2, 20])],
}
NAMES = {name for name, _ in RECORDS}
SLOW = {"slow.example.com": 1.5}
log_lock = threading.Lock()


def parse(msg):
    """(id, flags, name, qtype, question bytes, udp limit) or None."""
    if len(msg) < 12:
        return None
    qid, flags, qd, an, ns, ar = struct.unpack("!6H", msg[:12])
    if qd != 1:
        return None
    pos, labels = 12, []
    while True:
        n = msg[pos]
        pos += 1
        if n == 0:
            break
        labels.append(msg[pos:pos + n].decode("ascii", "replace").lower())
        pos += n
    qtype, qclass = struct.unpack("!HH", msg[pos:pos + 4])
    question = msg[12:pos + 4]
    pos += 4
    limit = 512
    for _ in range(an + ns + ar):  # find OPT (root owner, type 41)
        if msg[pos] == 0:
            rtype, rclass, _ttl, rdlen = struct.unpack("!HHIH", msg[pos + 1:pos + 11])
            if rtype == 41:
                limit = max(512, rclass)
            pos += 11 + rdlen
        else:
            break  # names with labels in a query's other sections: not from our clients
    return qid, flags, ".".join(labels), qtype, question, limit


OVERRIDES = None


def override(name, qtype):
    """(rdatas, rcode, ttl) from the overrides file, or None."""
    if not OVERRIDES or not os.path.exists(OVERRIDES):
        return None
    with open(OVERRIDES) as f:
        entry = json.load(f).get(name)
    if entry is None:
        return None
    fam = socket.AF_INET if qtype == A else socket.AF_INET6
    key = "a" if qtype == A else "aaaa"
    rdatas = [socket.inet_pton(fam, ip) for ip in entry.get(key, [])] if qtype in (A, AAAA) else []
    return rdatas, entry.get("rcode", 0), entry.get("ttl", 60)


def answer(q, tcp):
    qid, flags, name, qtype, question, limit = q
    rdatas = RECORDS.get((name, qtype), [])
    rcode = 0 if name in NAMES else 3
    ttl = 60
    o = override(name, qtype)
    if o is not None:
        rdatas, rcode, ttl = o
    rd = flags & 0x0100
    body = b""
    for rdata in rdatas:
        body += b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, ttl, len(rdata)) + rdata
    head = struct.pack("!6H", qid, 0x8000 | 0x0400 | rd | 0x0080 | rcode, 1, len(rdatas), 0, 0)
    msg = head + question + body
    if not tcp and len(msg) > limit:  # truncated: header + question, TC
        msg = struct.pack("!6H", qid, 0x8000 | 0x0400 | 0x0200 | rd | 0x0080 | rcode, 1, 0, 0, 0)
        msg += question
    return msg


def note(logfile, proto, q):
    with log_lock, open(logfile, "a") as f:
        f.write(f"{proto} {q[2]} {q[3]}\n")


def serve_udp(sock, logfile):
    while True:
        msg, peer = sock.recvfrom(65535)
        q = parse(msg)
        if q is None:
            continue
        note(logfile, "udp", q)

        def reply(q=q, peer=peer):
            time.sleep(SLOW.get(q[2], 0))
            sock.sendto(answer(q, False), peer)
        threading.Thread(target=reply, daemon=True).start()


def serve_tcp_conn(conn, logfile):
    with conn:
        conn.settimeout(10)
        while True:
            head = conn.recv(2, socket.MSG_WAITALL)
            if len(head) < 2:
                return
            (n,) = struct.unpack("!H", head)
            msg = conn.recv(n, socket.MSG_WAITALL)
            q = parse(msg)
            if q is None:
                return
            note(logfile, "tcp", q)
            time.sleep(SLOW.get(q[2], 0))
            out = answer(q, True)
            conn.sendall(struct.pack("!H", len(out)) + out)


def main():
    global OVERRIDES
    ip, port, logfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    OVERRIDES = sys.argv[4] if len(sys.argv) > 4 else None
    fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
    udp = socket.socket(fam, socket.SOCK_DGRAM)
    udp.bind((ip, port))
    tcp = socket.socket(fam, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((ip, port))
    tcp.listen(64)
    threading.Thread(target=serve_udp, args=(udp, logfile), daemon=True).start()
    print("ready", flush=True)
    while True:
        conn, _ = tcp.accept()
        threading.Thread(target=serve_tcp_conn, args=(conn, logfile), daemon=True).start()


if __name__ == "__main__":
    main()
