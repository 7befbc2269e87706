"""A fake Kubernetes API server for netns tests of the waypoint's cluster
mode. It speaks the real list/watch wire format over HTTPS (a self-signed
certificate, the client's "in-cluster CA"):

  GET /apis/G/V/PLURAL[?limit=N&continue=T]     a JSON list, metadata.resourceVersion
  GET /apis/G/V/PLURAL?watch=1&resourceVersion=RV&allowWatchBookmarks=true
      a chunked stream, one {"type","object"} JSON line per event; an RV older
      than the compacted history gets an ERROR event with a 410 Status;
      BOOKMARK events while idle; timeoutSeconds ends the stream
  GET /apis/G/V/namespaces/NS/PLURAL/NAME        one object
  PATCH .../NAME/status  (application/merge-patch+json)   recorded, applied
  403 (a Status) for every request on a plural listed in `forbidden`;
  401 without the bearer token.

Control, in-process (tests) or over HTTP on the same port:
  apply(obj) / delete(kind, ns, name) / compact() / restart(down_s) / patches
  POST /__control/apply (object)  POST /__control/delete {kind, namespace, name}
  POST /__control/compact         GET /__control/patches

    kube = FakeKube(topo.fabric, "10.44.0.101", 6443, workdir, token="t")
    kube.start(); kube.apply({...}); kube.stop()
"""
import json
import os
import socket
import ssl
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from harness import in_netns

# plural -> (group, version, kind)
KINDS = {
    "gateways": ("gateway.networking.k8s.io", "v1", "Gateway"),
    "httproutes": ("gateway.networking.k8s.io", "v1", "HTTPRoute"),
    "grpcroutes": ("gateway.networking.k8s.io", "v1", "GRPCRoute"),
    "referencegrants": ("gateway.networking.k8s.io", "v1beta1", "ReferenceGrant"),
    "virtualservices": ("networking.istio.io", "v1", "VirtualService"),
    "destinationrules": ("networking.istio.io", "v1", "DestinationRule"),
    "serviceentries": ("networking.istio.io", "v1", "ServiceEntry"),
    "envoyfilters": ("networking.istio.io", "v1alpha3", "EnvoyFilter"),
    "authorizationpolicies": ("security.istio.io", "v1", "AuthorizationPolicy"),
    "telemetries": ("telemetry.istio.io", "v1", "Telemetry"),
}
PLURAL = {v[2]: k for k, v in KINDS.items()}
BOOKMARK_S = 1.0


def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def status_obj(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class FakeKube:
    def __init__(self, netns, ip, port, workdir, token=None, forbidden=()):
        self.netns, self.ip, self.port, self.token = netns, ip, port, token
        self.forbidden = set(forbidden)
        self.cond = threading.Condition()
        self.rv = 100
        self.compacted = 0          # watches from an RV below this get 410
        self.objects = {}           # plural -> {(ns, name): obj}
        self.history = []           # (rv, plural, type, obj)
        self.patches = []           # (path, body)
        self.requests = []          # (method, path) of every request
        self.generation = 0         # bumps on restart: old streams end
        self.srv = None
        self.conns = set()
        self.dir = os.path.join(workdir, "kube")
        os.makedirs(self.dir, exist_ok=True)
        self.cert = os.path.join(self.dir, "ca.crt")
        self.key = os.path.join(self.dir, "tls.key")
        self.token_path = os.path.join(self.dir, "token")
        with open(self.token_path, "w") as f:
            f.write((token or "") + "\n")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", self.key, "-out",
                        self.cert, "-days", "1", "-subj", "/CN=kubernetes",
                        "-addext", f"subjectAltName=IP:{ip}"],
                       check=True, capture_output=True, timeout=20)
        self.url = f"https://{ip}:{port}"

    # ---- lifecycle -------------------------------------------------------
    def start(self):
        fake = self

        class Handler(KubeHandler):
            kube = fake

        def make():
            ThreadingHTTPServer.allow_reuse_address = True
            srv = ThreadingHTTPServer((self.ip, self.port), Handler)
            srv.daemon_threads = True
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.cert, self.key)
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True,
                                         do_handshake_on_connect=False)
            return srv
        self.srv = in_netns(self.netns, make)
        threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()

    def stop(self):
        """Closes the listener and every open connection (watch streams)."""
        if self.srv is None:
            return
        srv, self.srv = self.srv, None
        srv.shutdown()
        srv.server_close()
        with self.cond:
            self.generation += 1
            for c in list(self.conns):
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.cond.notify_all()

    def restart(self, down_s=0.5, while_down=None, compact=True):
        """API server restart: down for `down_s` (while_down() runs then),
        back with its history compacted (etcd compaction), so a watch from
        an older resourceVersion gets 410 Gone."""
        self.stop()
        if while_down:
            while_down()
        time.sleep(down_s)
        if compact:
            self.compact()
        self.start()

    def compact(self):
        with self.cond:
            self.compacted = self.rv
            self.history = []
            self.cond.notify_all()

    # ---- objects ---------------------------------------------------------
    def _event(self, plural, type_, obj):
        self.history.append((self.rv, plural, type_, json.loads(json.dumps(obj))))
        self.cond.notify_all()

    def apply(self, obj):
        kind = obj["kind"]
        plural = PLURAL[kind]
        md = obj.setdefault("metadata", {})
        md.setdefault("namespace", "default")
        key = (md["namespace"], md["name"])
        with self.cond:
            store = self.objects.setdefault(plural, {})
            old = store.get(key)
            self.rv += 1
            md["resourceVersion"] = str(self.rv)
            if old is None:
                md["uid"] = str(uuid.uuid4())
                md["generation"] = 1
                md["creationTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            else:
                md["uid"] = old["metadata"]["uid"]
                md["creationTimestamp"] = old["metadata"]["creationTimestamp"]
                md["generation"] = old["metadata"]["generation"] + (
                    1 if old.get("spec") != obj.get("spec") else 0)
                if "status" in old and "status" not in obj:
                    obj["status"] = old["status"]
            store[key] = json.loads(json.dumps(obj))
            self._event(plural, "MODIFIED" if old else "ADDED", store[key])
            return store[key]

    def delete(self, kind, ns, name):
        plural = PLURAL[kind]
        with self.cond:
            obj = self.objects.get(plural, {}).pop((ns, name), None)
            if obj is None:
                return False
            self.rv += 1
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self._event(plural, "DELETED", obj)
            return True

    def inject(self, kind, line):
        """A raw watch line (malformed events for the client's error path)."""
        with self.cond:
            self.rv += 1
            self.history.append((self.rv, PLURAL[kind], None, line))
            self.cond.notify_all()

    def get(self, kind, ns, name):
        with self.cond:
            o = self.objects.get(PLURAL[kind], {}).get((ns, name))
            return json.loads(json.dumps(o)) if o else None

    def patch_status(self, plural, ns, name, body):
        with self.cond:
            obj = self.objects.get(plural, {}).get((ns, name))
            if obj is None:
                return None
            self.patches.append((f"{plural}/{ns}/{name}", body))
            obj["status"] = merge_patch(obj.get("status"), body.get("status", {}))
            self.rv += 1
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self._event(plural, "MODIFIED", obj)
            return obj

    def list(self, plural):
        with self.cond:
            items = [json.loads(json.dumps(o)) for _, o in sorted(self.objects.get(plural, {}).items())]
            return items, str(self.rv)


class KubeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    kube = None

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        with self.kube.cond:
            self.kube.conns.add(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            with self.kube.cond:
                self.kube.conns.discard(self.connection)

    def handle(self):
        try:
            self.connection.do_handshake()
        except (ssl.SSLError, OSError):
            return
        super().handle()

    def _send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self):
        """(plural, ns, name, sub, query) or None."""
        u = urlparse(self.path)
        parts = [p for p in u.path.split("/") if p]
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        if len(parts) < 4 or parts[0] != "apis":
            return None
        group, version, rest = parts[1], parts[2], parts[3:]
        ns = name = sub = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        plural = rest[0]
        if len(rest) > 1:
            name = rest[1]
        if len(rest) > 2:
            sub = rest[2]
        k = KINDS.get(plural)
        if k is None or k[0] != group or k[1] != version:
            return None
        return plural, ns, name, sub, q

    def _auth(self):
        if self.kube.token and self.headers.get("Authorization") != f"Bearer {self.kube.token}":
            self._send_json(401, status_obj(401, "Unauthorized", "Unauthorized"))
            return False
        return True

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def do_POST(self):
        path = urlparse(self.path).path
        if path == "/__control/apply":
            return self._send_json(200, self.kube.apply(self._body()))
        if path == "/__control/delete":
            b = self._body()
            return self._send_json(200, {"deleted": self.kube.delete(b["kind"], b["namespace"],
                                                                     b["name"])})
        if path == "/__control/compact":
            self.kube.compact()
            return self._send_json(200, {})
        self._send_json(404, status_obj(404, "NotFound", "not found"))

    def do_PATCH(self):
        self.kube.requests.append(("PATCH", self.path))
        if not self._auth():
            return
        r = self._route()
        if r is None or r[2] is None or r[3] != "status":
            return self._send_json(404, status_obj(404, "NotFound", "not found"))
        plural, ns, name, _, _ = r
        if plural in self.kube.forbidden:
            return self._send_json(403, status_obj(403, "Forbidden", f"{plural} is forbidden"))
        if "merge-patch" not in (self.headers.get("Content-Type") or ""):
            return self._send_json(415, status_obj(
                415, "UnsupportedMediaType",
                f"want a merge patch, got {self.headers.get('Content-Type')!r}"))
        obj = self.kube.patch_status(plural, ns, name, self._body())
        if obj is None:
            return self._send_json(404, status_obj(404, "NotFound", f"{name} not found"))
        self._send_json(200, obj)

    def do_GET(self):
        self.kube.requests.append(("GET", self.path))
        if urlparse(self.path).path == "/__control/patches":
            return self._send_json(200, [{"path": p, "body": b} for p, b in self.kube.patches])
        if not self._auth():
            return
        r = self._route()
        if r is None:
            return self._send_json(404, status_obj(404, "NotFound", "the server could not find "
                                                   "the requested resource"))
        plural, ns, name, sub, q = r
        group, version, kind = KINDS[plural]
        if plural in self.kube.forbidden:
            return self._send_json(403, status_obj(
                403, "Forbidden", f'{plural}.{group} is forbidden: User "system:serviceaccount:'
                f'demo:waypoint" cannot list resource "{plural}" in API group "{group}" at the '
                "cluster scope"))
        if name is not None:
            with self.kube.cond:
                o = self.kube.objects.get(plural, {}).get((ns, name))
            if o is None:
                return self._send_json(404, status_obj(404, "NotFound", f"{name} not found"))
            return self._send_json(200, o)
        if q.get("watch") in ("1", "true"):
            return self._watch(plural, ns, q)
        items, rv = self.kube.list(plural)
        if ns:
            items = [o for o in items if o["metadata"]["namespace"] == ns]
        start = int(q.get("continue") or 0)
        limit = int(q.get("limit") or 0)
        cont = ""
        if limit and len(items) - start > limit:
            cont = str(start + limit)
            items = items[start:start + limit]
        else:
            items = items[start:]
        self._send_json(200, {"kind": kind + "List", "apiVersion": f"{group}/{version}",
                              "metadata": {"resourceVersion": rv, "continue": cont},
                              "items": items})

    def _chunk(self, obj):
        data = (json.dumps(obj) + "\n").encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _pending(self, plural, ns, rv):
        return [(r, t, o) for (r, p, t, o) in self.kube.history
                if p == plural and r > rv
                and (t is None or not ns or o["metadata"].get("namespace") == ns)]

    def _watch(self, plural, ns, q):
        kube = self.kube
        group, version, kind = KINDS[plural]
        rv = int(q.get("resourceVersion") or 0)
        bookmarks = q.get("allowWatchBookmarks") == "true"
        timeout = min(float(q.get("timeoutSeconds") or 1800), 1800)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        end = time.monotonic() + timeout
        with kube.cond:
            gen = kube.generation
            if rv and rv < kube.compacted:
                self._chunk({"type": "ERROR", "object": status_obj(
                    410, "Expired", f"too old resource version: {rv} ({kube.compacted})")})
                self.wfile.write(b"0\r\n\r\n")
                self.close_connection = True
                return
        last_bookmark = time.monotonic()
        try:
            while time.monotonic() < end:
                with kube.cond:
                    if kube.generation != gen:
                        return
                    pending = self._pending(plural, ns, rv)
                    if not pending:
                        kube.cond.wait(0.2)
                        if kube.generation != gen:
                            return
                        pending = self._pending(plural, ns, rv)
                    if not pending and bookmarks and time.monotonic() - last_bookmark > BOOKMARK_S:
                        last_bookmark = time.monotonic()
                        bm_rv = kube.rv
                        pending = [(None, "BOOKMARK", {"kind": kind, "apiVersion": f"{group}/{version}",
                                                       "metadata": {"resourceVersion": str(bm_rv)}})]
                        rv = max(rv, bm_rv)
                for r, t, o in pending:
                    if r is not None:
                        rv = r
                    if t is None:  # injected raw line
                        data = (o + "\n").encode()
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                        self.wfile.flush()
                        continue
                    self._chunk({"type": t, "object": o})
            self.wfile.write(b"0\r\n\r\n")
        except (OSError, ssl.SSLError):
            pass
        self.close_connection = True
