#!/usr/bin/env python3
"""L4 authorization on real namespaces (ISSUE: L4 security policy).

frontend -> api allowed and other -> api denied by principal (a third-party
HBONE client gets 401); namespace allow; port deny; deny logs name the reason
and the policy; STRICT refuses a plaintext client while PERMISSIVE accepts it;
a policy change closes an open, now-denied connection within 1 s while allowed
ones keep flowing; an L7-only DENY (as an AuthorizationPolicy, and in the
exact wire form istiod sends: one clause of one empty match) denies nothing
while a port DENY beside it still denies; the documentation-style AuthorizationPolicy (L7 methods and
paths) + PeerAuthentication STRICT pair is accepted, its L7 part reported as
dropped (log, /config_dump, metrics) and enforced fail-closed at L4.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Topology, in_netns, open_stream, require_root, still_flows, tcp_exchange  # noqa: E402
from ambit_env import AmbitEnv  # noqa: E402
from hbone_client import hbone_connect  # noqa: E402

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


def allow_frontend_doc(ns="production"):
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": "api-allow-frontend", "namespace": ns},
            "spec": {"selector": {"matchLabels": {"app": "api"}}, "action": "ALLOW",
                     "rules": [{"from": [{"source": {"principals": [
                         "cluster.local/ns/production/sa/frontend"]}}]}]}}


# Written as a user would: the api admits the frontend for GET/POST on
# /api/v1/*, and the namespace requires mTLS.
L7_DOC = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: frontend-to-api
  namespace: production
spec:
  selector:
    matchLabels:
      app: api
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/production/sa/frontend"]
    to:
    - operation:
        methods: ["GET", "POST"]
        paths: ["/api/v1/*"]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: production
spec:
  mtls:
    mode: STRICT
"""
L7_FINDING = ("AuthorizationPolicy production/frontend-to-api: rule 0 of ALLOW policy dropped: "
              "uses L7 fields methods, paths; the agent enforces L4 only (L7 rules need a "
              "waypoint: attach the policy to it with targetRefs) (fail closed)")
NONE_ALLOWED = "allow policies exist, but none allowed"


def metric(topo, node, name):
    """Value of an unlabelled series on the node agent's :15020/metrics."""
    text = in_netns(topo.node_ns(node), lambda: urllib.request.urlopen(
        "http://127.0.0.1:15020/metrics", timeout=3).read().decode())
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def config_dump(topo, node):
    return json.loads(in_netns(topo.node_ns(node), lambda: urllib.request.urlopen(
        "http://127.0.0.1:15000/config_dump", timeout=3).read()))


def issue_cert(env, identity, name):
    out = os.path.join(env.dir, name)
    subprocess.run([env.ctl_bin, "ca", "issue", "--ca", env.ca_dir, "--identity", identity,
                    "--out", out], check=True, capture_output=True)
    return out


def denied_line(text, identity, reason):
    """The authz deny line for `identity` with `reason`, or None."""
    for l in text.splitlines():
        if "authz" in l and "denied " in l and f"({identity}): {reason}" in l:
            return l
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    require_root()
    with Topology(nodes=2, tag="p") as topo:
        env = AmbitEnv(topo, args.build)
        frontend = env.pod(1, "frontend", sa="frontend", ns="production")
        other = env.pod(1, "other", sa="other", ns="production")
        tester = env.pod(1, "tester", sa="tester", ns="qa")
        api = env.pod(2, "api", sa="api", ns="production", labels={"app": "api"})
        plain = env.pod(1, "plain", captured=False)
        env.extra_docs = [allow_frontend_doc()]
        env.start()
        try:
            topo.echo_server(api.ns, "0.0.0.0", 8080, "api")
            topo.echo_server(api.ns, "0.0.0.0", 9090, "api9090")
            frontend_id = "spiffe://cluster.local/ns/production/sa/frontend"
            other_id = "spiffe://cluster.local/ns/production/sa/other"
            check(reachable(frontend.ns, api.ip, 8080), "principal ALLOW: frontend -> api allowed")
            check(not reachable(other.ns, api.ip, 8080), "principal ALLOW: other -> api denied")
            try:  # logs are written asynchronously: wait for the line
                env.wait_log(2, f"({other_id}): {NONE_ALLOWED}", timeout=5)
            except TimeoutError:
                pass
            line = denied_line(env.log(2), other_id, NONE_ALLOWED)
            check(line is not None, f"the ALLOW miss is logged with its reason ({line})")
            check(any(p["name"] == "api-allow-frontend" for p in config_dump(topo, 2)["policies"]),
                  "translated policy visible in /config_dump")

            # Denied HBONE CONNECT from a third-party client: 401; the allowed
            # principal with the same client gets 200 and the echo.
            other_certs = issue_cert(env, other_id, "other-cert")
            frontend_certs = issue_cert(env, frontend_id, "frontend-cert")
            status, data = hbone_connect(plain.ns, api.ip, f"{api.ip}:8080", frontend_certs)
            check(status == 200 and b"tag=api" in data,
                  f"python-h2 HBONE client as production/frontend: CONNECT -> {status}, echo {data[:30]!r}")
            status, data = hbone_connect(plain.ns, api.ip, f"{api.ip}:8080", other_certs)
            check(status == 401 and b"tag=api" not in data,
                  f"python-h2 HBONE client as production/other: CONNECT -> {status} (want 401)")

            # Namespace-based allow + port-based deny.
            env.extra_docs = [
                {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                 "metadata": {"name": "allow-production-ns", "namespace": "production"},
                 "spec": {"action": "ALLOW", "rules": [{"from": [{"source": {"namespaces": ["production"]}}]}]}},
                {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                 "metadata": {"name": "deny-9090", "namespace": "production"},
                 "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"ports": ["9090"]}}]}]}},
                {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                 "metadata": {"name": "deny-admin-path", "namespace": "production"},
                 "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]}]}},
            ]
            # istiod's xDS form of that L7-only DENY, verbatim.
            env.policies = [{"name": "deny-l7-wire", "namespace": "production",
                             "scope": "Namespace", "action": "Deny", "rules": [[[{}]]]}]
            mark = len(env.log(2))
            env.write_config()
            env.wait_log(2, "config applied", after=mark)
            rules = {p["name"]: p["rules"] for p in config_dump(topo, 2)["policies"]}
            check(rules.get("deny-admin-path") == [[[{}]]] and rules.get("deny-l7-wire") == [[[{}]]],
                  f"L7-only DENY encoded as istiod does: {rules.get('deny-admin-path')}")
            check(reachable(other.ns, api.ip, 8080),
                  "namespace ALLOW: production/other -> api allowed (L7-only DENYs deny nothing)")
            check(not reachable(tester.ns, api.ip, 8080), "namespace ALLOW: qa/tester -> api denied")
            check(not reachable(frontend.ns, api.ip, 9090), "port DENY: :9090 denied for everyone")
            deny_9090 = "explicitly denied by production/deny-9090 [production/deny-9090]"
            for needle in ("(spiffe://cluster.local/ns/qa/sa/tester): " + NONE_ALLOWED,
                           f"({frontend_id}): {deny_9090}"):
                try:
                    env.wait_log(2, needle, timeout=5, after=mark)
                except TimeoutError:
                    pass
            text = env.log(2)[mark:]
            line = denied_line(text, "spiffe://cluster.local/ns/qa/sa/tester", NONE_ALLOWED)
            check(line is not None, f"namespace miss logged with its reason ({line})")
            line = denied_line(text, frontend_id, deny_9090)
            check(line is not None and ":9090" in line,
                  f"port DENY logged with reason and policy ({line})")

            env.policies = []

            # PeerAuthentication: PERMISSIVE lets plaintext in, STRICT refuses it.
            def peer_auth(mode):
                return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                        "metadata": {"name": "default", "namespace": "production"},
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
            doomed_plain = open_stream(plain.ns, api.ip, 8080)  # 15006, no identity
            check(still_flows(keep) and still_flows(doomed) and still_flows(doomed_plain),
                  "live: all three connections (two HBONE, one plaintext) flow before")
            env.extra_docs = [allow_frontend_doc()]
            t0 = time.monotonic()
            env.write_config()
            closed_at = {"HBONE production/other": None, "plaintext (15006)": None}
            while time.monotonic() - t0 < 3 and None in closed_at.values():
                for what, s in (("HBONE production/other", doomed),
                                ("plaintext (15006)", doomed_plain)):
                    if closed_at[what] is None and not still_flows(s):
                        closed_at[what] = time.monotonic() - t0
                time.sleep(0.05)  # poll interval of a bounded wait
            for what, at in closed_at.items():
                check(at is not None and at < 1.0,
                      f"live: denied {what} connection closed after a policy change "
                      f"({'never' if at is None else f'{at:.4f} s'}, limit 1.0 s)")
            check(still_flows(keep), "live: allowed connection keeps flowing")
            env.wait_log(2, "late rejection")
            keep.close()
            doomed.close()
            doomed_plain.close()

            # The documentation-style pair: accepted; the L7 part is reported as
            # dropped (log, /config_dump, metrics); fail closed at L4; STRICT.
            reported0 = metric(topo, 2, "ambit_policy_findings_reported_total")
            check(metric(topo, 2, "ambit_policy_findings") == 0 and reported0 is not None,
                  f"before the L7 document: ambit_policy_findings 0, "
                  f"ambit_policy_findings_reported_total {reported0}")
            env.extra_docs = [L7_DOC]
            mark = len(env.log(2))
            env.write_config()
            env.wait_log(2, "config applied", after=mark)
            text = env.log(2)[mark:]
            check("config reload failed" not in text and "config rejected" not in text,
                  "AuthorizationPolicy + PeerAuthentication pair accepted")
            finding = next((l for l in text.splitlines() if L7_FINDING in l), None)
            check(finding is not None, f"L7 ALLOW rule reported as dropped in the agent log ({finding})")
            dump = config_dump(topo, 2)
            check(any(p["name"] == "frontend-to-api" and p["namespace"] == "production"
                      for p in dump["policies"]), "the AuthorizationPolicy is in /config_dump")
            check(any(f["resource"] == "production/frontend-to-api" and
                      L7_FINDING.endswith(f["message"]) for f in dump["ambit"]["policyFindings"]),
                  "the finding is in /config_dump (ambit.policyFindings)")
            gauge = metric(topo, 2, "ambit_policy_findings")
            reported = metric(topo, 2, "ambit_policy_findings_reported_total")
            check(gauge == 2 and None not in (reported0, reported) and reported == reported0 + 2,
                  f"metrics: ambit_policy_findings {gauge} (want 2), "
                  f"ambit_policy_findings_reported_total {reported0} -> {reported} (want +2)")
            check(not reachable(frontend.ns, api.ip, 8080),
                  "fail closed: frontend -> api denied at L4 (the L7 rule was its only allow)")
            status, _ = hbone_connect(plain.ns, api.ip, f"{api.ip}:8080", frontend_certs)
            check(status == 401, f"fail closed: python-h2 HBONE client as production/frontend -> {status} "
                                 "(want 401)")
            check(not reachable(plain.ns, api.ip, 8080), "STRICT: plaintext client refused")
            strict = "explicitly denied by istio-system/istio_converted_static_strict"
            for needle in (f"({frontend_id}): {NONE_ALLOWED}", strict):
                try:
                    env.wait_log(2, needle, timeout=5, after=mark)
                except TimeoutError:
                    pass
            text = env.log(2)[mark:]
            line = denied_line(text, frontend_id, NONE_ALLOWED)
            check(line is not None, f"fail closed logged with its reason ({line})")
            line = next((l for l in text.splitlines()
                         if "denied plaintext" in l and plain.ip in l and strict in l), None)
            check(line is not None, f"STRICT refusal logged with its reason ({line})")

            # The counter counts a finding once: a reload that still carries it
            # (another document added after it) adds nothing; the gauge follows.
            env.extra_docs = [L7_DOC, {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                                       "metadata": {"name": "default", "namespace": "qa"},
                                       "spec": {"mtls": {"mode": "PERMISSIVE"}}}]
            mark = len(env.log(2))
            env.write_config()
            env.wait_log(2, "config applied", after=mark)
            gauge = metric(topo, 2, "ambit_policy_findings")
            reported = metric(topo, 2, "ambit_policy_findings_reported_total")
            check(gauge == 2 and None not in (reported0, reported) and reported == reported0 + 2,
                  f"reload keeping the finding: gauge {gauge}, counter {reported} (unchanged)")
            env.extra_docs = []
            mark = len(env.log(2))
            env.write_config()
            env.wait_log(2, "config applied", after=mark)
            gauge = metric(topo, 2, "ambit_policy_findings")
            reported = metric(topo, 2, "ambit_policy_findings_reported_total")
            check(gauge == 0 and None not in (reported0, reported) and reported == reported0 + 2,
                  f"document removed: gauge {gauge}, counter {reported} (a counter never goes down)")
        finally:
            if FAILURES:
                print("---- agent 2 log ----\n" + env.log(2)[-8000:])
            env.cleanup()
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
