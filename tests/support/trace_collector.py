#!/usr/bin/env python3
"""A test trace collector: records every POSTed JSON body (OTLP/HTTP JSON on
/v1/traces, Zipkin v2 on /api/v2/spans, any path really) and serves them back.

    trace_collector.py --port 4318 --port 9411

GET /__posts → [{"port", "path", "content_type", "body": <parsed JSON or null>}]
GET /__posts?reset=1 also forgets them. Prints `ready` once listening;
SIGTERM/SIGINT exit 0. Answers 200 `{}` to every POST (or --status).
"""
import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

POSTS, LOCK = [], threading.Lock()


def handler(status):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def _reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            n = int(self.headers.get("content-length", "0"))
            raw = self.rfile.read(n)
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            with LOCK:
                POSTS.append({"port": self.server.server_address[1], "path": self.path,
                              "content_type": self.headers.get("content-type"), "body": body})
            self._reply(status, {})

        def do_GET(self):
            with LOCK:
                out = list(POSTS)
                if "reset=1" in self.path:
                    POSTS.clear()
            self._reply(200, out)
    return H


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, action="append", required=True)
    ap.add_argument("--status", type=int, default=200)
    args = ap.parse_args()
    servers = [ThreadingHTTPServer(("0.0.0.0", p), handler(args.status)) for p in args.port]
    for s in servers:
        s.daemon_threads = True
        threading.Thread(target=s.serve_forever, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    for s in servers:
        s.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
