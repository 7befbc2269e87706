#!/usr/bin/env python3
"""L4 authorization on real namespaces (ISSUE: L4 security policy).

frontend -> api allowed and other -> api denied by principal; namespace allow;
port deny; STRICT refuses a plaintext client while PERMISSIVE accepts it; a
policy change closes an open, now-denied connection within 1 s while allowed
ones keep flowing; Istio's documented L7 example is reported as dropped.
"""
import argparse
import json
import os
import socket
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, in_netns, open_stream, require_root, still_flows, tcp_exchange  # noqa: E402
from ambit_env import AmbitEnv  # noqa: E402

FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def reachable(ns, ip, port):
    try:
        line = tcp_exchange(ns, ip, port, b"ping\n", timeout=3)
        return "peer=" in line
    except OSError:
        return False


def allow_frontend_doc(ns="prod"):
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": "api-allow-frontend", "namespace": ns},
            "spec": {"selector": {"matchLabels": {"app": "api"}}, "action": "ALLOW",
                     "rules": [{"from": [{"source": {"principals": [
                         "cluster.local/ns/prod/sa/frontend"]}}]}]}}


L7_DOC = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: frontend-api-l7
  namespace: prod
spec:
  selector:
    matchLabels:
      app: api
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/prod/sa/frontend"]
    to:
    - operation:
        methods: ["GET", "POST"]
        paths: ["/api/v1/*"]
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    require_root()
    with Topology(nodes=2, tag="p") as topo:
        env = AmbitEnv(topo, args.build)
        frontend = env.pod(1, "frontend", sa="frontend", ns="prod")
        other = env.pod(1, "other", sa="other", ns="prod")
        tester = env.pod(1, "tester", sa="tester", ns="qa")
        api = env.pod(2, "api", sa="api", ns="prod", labels={"app": "api"})
        plain = env.pod(1, "plain", captured=False)
        env.extra_docs = [allow_frontend_doc()]
        env.start()
        try:
            topo.echo_server(api.ns, "0.0.0.0", 8080, "api")
            topo.echo_server(api.ns, "0.0.0.0", 9090, "api9090")
            check(reachable(frontend.ns, api.ip, 8080), "principal ALLOW: frontend -> api allowed")
            check(not reachable(other.ns, api.ip, 8080), "principal ALLOW: other -> api denied")
            env.wait_log(2, "denied")
            check(any("explicitly denied" in l or "none allowed" in l or "denied" in l
                      for l in env.log(2).splitlines() if "authz" in l),
                  "the deny is logged with its reason")
            dump = json.loads(in_netns(topo.node_ns(2), lambda: urllib.request.urlopen(
                "http://127.0.0.1:15000/config_dump", timeout=3).read()))
            check(any(p["name"] == "api-allow-frontend" for p in dump["policies"]),
                  "translated policy visible in /config_dump")

            # Namespace-based allow + port-based deny.
            env.extra_docs = [
                {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                 "metadata": {"name": "allow-prod-ns", "namespace": "prod"},
                 "spec": {"action": "ALLOW", "rules": [{"from": [{"source": {"namespaces": ["prod"]}}]}]}},
                {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                 "metadata": {"name": "deny-9090", "namespace": "prod"},
                 "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"ports": ["9090"]}}]}]}},
            ]
            mark = len(env.log(2))
            env.write_config()
            env.wait_log(2, "config applied", after=mark)
            check(reachable(other.ns, api.ip, 8080), "namespace ALLOW: prod/other -> api allowed")
            check(not reachable(tester.ns, api.ip, 8080), "namespace ALLOW: qa/tester -> api denied")
            check(not reachable(frontend.ns, api.ip, 9090), "port DENY: :9090 denied for everyone")

            # PeerAuthentication: PERMISSIVE lets plaintext in, STRICT refuses it.
            def peer_auth(mode):
                return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                        "metadata": {"name": "default", "namespace": "prod"},
                        "spec": {"mtls": {"mode": mode}}}
            env.extra_docs = [peer_auth("PERMISSIVE")]
            mark = len(env.log(2))
            env.write_config()
            env.wait_log(2, "config applied", after=mark)
            check(reachable(plain.ns, api.ip, 8080), "PERMISSIVE: plaintext client accepted (15006)")
            env.extra_docs = [peer_auth("STRICT")]
            mark = len(env.log(2))
            env.write_config()
            env.wait_log(2, "config applied", after=mark)
            check(not reachable(plain.ns, api.ip, 8080), "STRICT: plaintext client refused")
            check(reachable(frontend.ns, api.ip, 8080), "STRICT: mTLS client still accepted")

            # Live enforcement: an open connection becomes denied -> closed within 1 s.
            env.extra_docs = []
            mark = len(env.log(2))
            env.write_config()
            env.wait_log(2, "config applied", after=mark)
            keep = open_stream(frontend.ns, api.ip, 8080)
            doomed = open_stream(other.ns, api.ip, 8080)
            check(still_flows(keep) and still_flows(doomed), "live: both connections flow before")
            env.extra_docs = [allow_frontend_doc()]
            t0 = time.monotonic()
            env.write_config()
            closed_at = None
            while time.monotonic() - t0 < 3:
                if not still_flows(doomed):
                    closed_at = time.monotonic() - t0
                    break
                time.sleep(0.05)  # poll interval of a bounded wait
            check(closed_at is not None and closed_at < 1.5,
                  f"live: denied connection closed after a policy change ({closed_at})")
            check(still_flows(keep), "live: allowed connection keeps flowing")
            env.wait_log(2, "late rejection")
            keep.close()
            doomed.close()

            # Istio's documented L7 example: fail closed and say why.
            env.extra_docs = [L7_DOC]
            mark = len(env.log(2))
            env.write_config()
            env.wait_log(2, "config applied", after=mark)
            text = env.log(2)[mark:]
            check("frontend-api-l7" in text and ("L7" in text or "methods" in text),
                  "L7 ALLOW rule reported as dropped in the agent log")
            check(not reachable(frontend.ns, api.ip, 8080),
                  "L7 ALLOW rule dropped: fail closed (frontend denied at L4)")
            dump = json.loads(in_netns(topo.node_ns(2), lambda: urllib.request.urlopen(
                "http://127.0.0.1:15000/config_dump", timeout=3).read()))
            check(any("frontend-api-l7" in f["resource"] for f in dump["ambit"]["policyFindings"]),
                  "finding visible in /config_dump")
        finally:
            if FAILURES:
                print("---- agent 2 log ----\n" + env.log(2)[-8000:])
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
