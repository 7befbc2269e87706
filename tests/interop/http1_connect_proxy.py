#!/usr/bin/python3
"""A minimal HTTP/1.1 CONNECT proxy: the backend nghttpx --http2-proxy needs.

nghttpx in HTTP/2 proxy mode does not open tunnels itself: it forwards each
CONNECT to its backend as an HTTP/1.1 CONNECT (the documented setup puts
Squid there). This stands in for Squid: it connects to the requested
host:port, answers "200 Connection established" and copies bytes both ways,
passing a half-close (FIN) on in each direction.

Prints "port N" once listening, then one JSON line per CONNECT it served.
Usage: http1_connect_proxy.py [--port 0]
"""
import argparse
import json
import socket
import sys
import threading


def pump(src, dst, stats, key):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            stats[key] += len(data)
        dst.shutdown(socket.SHUT_WR)  # FIN for FIN
    except OSError:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def handle(client):
    head = b""
    while b"\r\n\r\n" not in head:
        data = client.recv(4096)
        if not data:
            client.close()
            return
        head += data
    head, rest = head.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    if method != "CONNECT":
        client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
        client.close()
        return
    host, port = target.rsplit(":", 1)
    try:
        upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
        upstream.settimeout(None)
    except OSError as err:
        print(json.dumps({"target": target, "error": str(err)}), flush=True)
        client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        client.close()
        return
    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    if rest:
        upstream.sendall(rest)
    stats = {"up": len(rest), "down": 0}
    threads = [threading.Thread(target=pump, args=(client, upstream, stats, "up")),
               threading.Thread(target=pump, args=(upstream, client, stats, "down"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"target": target, "headers": lines[1:], "up": stats["up"],
                      "down": stats["down"]}), flush=True)
    client.close()
    upstream.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.1", args.port))
    lst.listen(16)
    print("port %d" % lst.getsockname()[1], flush=True)
    while True:
        client, _ = lst.accept()
        threading.Thread(target=handle, args=(client,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
