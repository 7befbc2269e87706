#!/usr/bin/python3
"""Smoke test of ambit-fake-istio's driver protocol without an agent (no root,
loopback only, stdlib only): the hello line and root file, TLS on the xDS and
CA ports (verified by IP and by the istiod DNS name, ALPN h2), error replies
for malformed commands (the process stays up), xDS resource commands, and ZDS
against a Python SOCK_SEQPACKET client playing the agent (hello, Add with 1/0/2
fds, NACK, Keep/Del/SnapshotSent, the client closing → "closed").

    fake_istio_smoke.py --fake build/tests/support/ambit-fake-istio
"""
import argparse
import array
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading

FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


class Driver:
    def __init__(self, binary, tmp):
        self.stderr = open(os.path.join(tmp, "fake.stderr"), "w")
        self.p = subprocess.Popen(
            [binary, "--listen", "127.0.0.1", "--dir", tmp, "--xds-port", "0", "--ca-port", "0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.hello = self._read()

    def _read(self, timeout=10.0):
        box = {}
        t = threading.Thread(target=lambda: box.update(line=self.p.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        line = box.get("line")
        if not line:
            raise RuntimeError(f"ambit-fake-istio: no reply within {timeout}s (rc={self.p.poll()})")
        return json.loads(line)

    def raw(self, line, timeout=10.0):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return self._read(timeout)

    def cmd(self, cmd, **kw):
        return self.raw(json.dumps(dict(cmd=cmd, **kw)))

    def close(self):
        if self.p.poll() is None:
            try:
                self.cmd("quit")
                self.p.wait(timeout=5)
            except (RuntimeError, OSError, subprocess.TimeoutExpired):
                self.p.kill()
                self.p.wait(timeout=5)
        self.stderr.close()


def tls_check(addr, root, name):
    host, port = addr.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=root)
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection((host, int(port)), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=name) as t:
            return t.selected_alpn_protocol(), t.version()


# ---- a minimal protobuf reader/writer for the ZDS messages ------------------
def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def field_bytes(num, data):
    return varint((num << 3) | 2) + varint(len(data)) + data


def parse(data):
    """{field: [value...]} for varint and length-delimited fields."""
    out, i = {}, 0
    while i < len(data):
        key, shift = 0, 0
        while True:
            b = data[i]
            i += 1
            key |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        num, wt = key >> 3, key & 7
        val, shift = 0, 0
        while True:
            b = data[i]
            i += 1
            val |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if wt == 2:
            val, i = data[i:i + val], i + val
        out.setdefault(num, []).append(val)
    return out


def ack(error=""):
    return field_bytes(1, field_bytes(1, error.encode()) if error else b"")


class FakeAgent:
    """The agent's side of ZDS: answers each request as scripted."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.settimeout(5)
        self.s.connect(path)
        self.s.send(bytes([0x08, 0x01]))  # ZdsHello{version: V1}

    def serve_one(self, reply):
        data, anc, _, _ = self.s.recvmsg(1024, socket.CMSG_SPACE(8 * 4))
        fds = array.array("i")
        for level, typ, cdata in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds.frombytes(cdata[:len(cdata) - len(cdata) % fds.itemsize])
        stats = [os.fstat(fd) for fd in fds]
        for fd in fds:
            os.close(fd)
        if reply is None:
            self.s.close()
        else:
            self.s.send(reply)
        return parse(data), stats

    def exchange(self, drv, reply, cmd, **kw):
        box = {}
        t = threading.Thread(target=lambda: box.update(got=self.serve_one(reply)), daemon=True)
        t.start()
        resp = drv.cmd(cmd, **kw)
        t.join(5)
        return resp, box.get("got")


def zds_checks(drv, tmp):
    path = os.path.join(tmp, "zds.sock")
    r = drv.cmd("zds_listen", node="node-1", path=path)
    check(r.get("ok") and os.path.exists(path), f"zds_listen {r}")
    r = drv.cmd("zds_accept", node="node-1", timeout_ms=100)
    check(not r["ok"] and "error" in r, f"zds_accept with no client times out with an error: {r}")
    agent = FakeAgent(path)
    r = drv.cmd("zds_accept", node="node-1", timeout_ms=2000)
    check(r.get("ok") and r["hello_version"] == 1, f"zds_accept reads the V1 hello: {r}")
    ns = os.stat("/proc/self/ns/net")
    r, (msg, stats) = agent.exchange(drv, ack(), "zds_add", node="node-1", uid="uid-1",
                                     name="client", namespace="demo", service_account="sleep",
                                     netns="/proc/self/ns/net", fds=1)
    add = parse(msg[1][0])
    info = parse(add[2][0])
    check(r == {"ok": True, "result": "ack"} and add[1] == [b"uid-1"] and
          info == {1: [b"client"], 2: [b"demo"], 3: [b"sleep"]} and len(stats) == 1 and
          (stats[0].st_dev, stats[0].st_ino) == (ns.st_dev, ns.st_ino),
          f"zds_add: AddWorkload with uid, WorkloadInfo and the netns fd; ack ({r})")
    r, (msg, stats) = agent.exchange(drv, ack("no such netns"), "zds_add", node="node-1",
                                     uid="uid-2", name="x", netns="/proc/self/ns/net", fds=2)
    check(r == {"ok": True, "result": "nack", "ack_error": "no such netns"} and len(stats) == 2,
          f"zds_add fds=2 sends two fds; NACK text reported ({r})")
    r, (msg, stats) = agent.exchange(drv, ack(), "zds_add", node="node-1", uid="uid-3",
                                     name="y", fds=0)
    check(r.get("result") == "ack" and stats == [] and 1 in msg, f"zds_add fds=0 sends none ({r})")
    r, (msg, _) = agent.exchange(drv, ack(), "zds_keep", node="node-1", uid="uid-1")
    check(r.get("result") == "ack" and parse(msg[5][0]) == {1: [b"uid-1"]}, f"zds_keep ({r})")
    r, (msg, _) = agent.exchange(drv, ack(), "zds_del", node="node-1", uid="uid-1")
    check(r.get("result") == "ack" and parse(msg[2][0]) == {2: [b"uid-1"]}, f"zds_del ({r})")
    r, (msg, _) = agent.exchange(drv, None, "zds_snapshot", node="node-1")
    check(r.get("result") == "closed" and 3 in msg,
          f"zds_snapshot: the agent closing instead of acking is 'closed' ({r})")
    r = drv.cmd("zds_expect_closed", node="node-1", timeout_ms=1000)
    check(r.get("ok") and r["closed"], f"zds_expect_closed ({r})")
    agent2 = FakeAgent(path)
    r = drv.cmd("zds_accept", node="node-1", timeout_ms=2000)
    check(r.get("ok") and r["accepted"] == 2, f"second connection accepted ({r})")
    agent2.s.close()
    r = drv.cmd("zds_close", node="node-1")
    check(r.get("ok") and not os.path.exists(path), f"zds_close removes the socket ({r})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fake", required=True)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ambit-fake-istio-")
    drv = Driver(args.fake, tmp)
    try:
        h = drv.hello
        root = os.path.join(tmp, "root-cert.pem")
        check(h.get("ok") and h["root"] == root and os.path.exists(root), f"hello {h}")
        for key in ("xds", "ca"):
            for name in ("127.0.0.1", "istiod.istio-system.svc"):
                alpn, version = tls_check(h[key], root, name)
                check(alpn == "h2" and version == "TLSv1.3",
                      f"{key} TLS verified as {name} ({version}, ALPN {alpn})")
        for line, want in (("not json", "not a JSON object"), ("[1]", "not a JSON object"),
                           ('{"cmd":"nope"}', "unknown cmd nope"), ('{"cmd":7}', "cmd"),
                           ('{"cmd":"set_workload"}', "workload: missing"),
                           ('{"cmd":"set_workload","workload":{"uid":1}}', "uid"),
                           ('{"cmd":"zds_add","node":1}', "node"),
                           ('{"cmd":"zds_keep","node":"nowhere","uid":"u"}', "zds_listen first"),
                           ('{"cmd":"remove","type":"cluster","name":"x"}', 'want "address"'),
                           ('{"cmd":"push_raw","type":"address","resources":[{"name":"a",'
                            '"raw_bytes_b64":"!!"}]}', "not valid base64"),
                           ('{"cmd":"ca_fail","n":"x"}', "not an integer")):
            r = drv.raw(line)
            check(r.get("ok") is False and want in r.get("error", ""),
                  f"bad request {line[:40]!r} → error ({r.get('error')})")
        r = drv.cmd("set_workload", workload={"uid": "c//Pod/demo/a", "name": "a",
                                              "addresses": ["CiwBAg=="], "tunnelProtocol": "HBONE"})
        check(r == {"ok": True, "name": "c//Pod/demo/a", "nonce": ""},
              f"set_workload with no subscriber: stored, no nonce ({r})")
        r = drv.cmd("set_service", service={"name": "echo", "namespace": "demo",
                                            "hostname": "echo.demo.svc.cluster.local"})
        check(r.get("name") == "demo/echo.demo.svc.cluster.local", f"set_service ({r})")
        r = drv.cmd("xds_status")
        check(r.get("ok") and r["active_streams"] == 0 and r["stopped"] is False, f"xds_status {r}")
        r = drv.cmd("ca_wait", count=1, timeout_ms=50)
        check(r.get("ok") is False and "0 of 1" in r["error"], f"ca_wait times out ({r})")
        zds_checks(drv, tmp)
        r = drv.cmd("xds_stop")
        r2 = drv.cmd("xds_restart")
        check(r.get("ok") and r2.get("xds") == h["xds"], f"xds_stop/xds_restart keep the port ({r2})")
        r = drv.cmd("quit")
        check(r == {"ok": True} and drv.p.wait(timeout=5) == 0, "quit exits 0")
    finally:
        drv.close()
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
