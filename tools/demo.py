#!/usr/bin/env python3
"""Ambit two-node demo (standalone mode, run as root by `tools/dev demo`).

Builds two "nodes" and three "pods" as network namespaces, exactly as
tools/examples/demo.yaml describes them, starts one ambit-agent per node from
that file (the agents install the in-pod redirection themselves), sends HTTP
traffic from the client pod to the httpbin service, and shows what happened:
the identities each side saw, that only TLS crossed between the nodes, the
agents' access logs, metrics and `ambitctl` views. Then L7: the `reviews`
service uses a waypoint (ambit-waypoint in its own pod), which balances each
request of one keep-alive connection and reports HTTP metrics; then a canary
(VirtualService + DestinationRule) is applied live and split per request.
Cleans up after itself.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "tools", "examples", "demo.yaml")
CANARY = os.path.join(ROOT, "tools", "examples", "reviews-canary.yaml")
P = "ambit-demo"
NODES = {"node-a": ("10.44.0.1", "10.44.1.1"), "node-b": ("10.44.0.2", "10.44.2.1")}
PODS = {  # name -> (node, ip); must match tools/examples/demo.yaml
    "client": ("node-a", "10.44.1.10"),
    "server-v1": ("node-b", "10.44.2.10"),
    "server-v2": ("node-b", "10.44.2.11"),
    "waypoint": ("node-b", "10.44.2.20"),
}
VIP = "10.96.0.10"
REVIEWS_VIP = "10.96.0.20"  # the service that uses the waypoint
WAYPOINT_UID = "cluster1//Pod/demo/waypoint"

HTTP_SERVER = r"""
import http.server, sys
name = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello from {name}: you are {self.client_address[0]}\n".encode()
        self.send_response(200); self.send_header("content-length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), H).serve_forever()
"""


def sh(*args, check=True, capture=True, timeout=30):
    r = subprocess.run(list(args), capture_output=capture, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


def nsx(ns, *args, **kw):
    return sh("ip", "netns", "exec", ns, *args, **kw)


def title(text):
    print(f"\n\033[1m== {text}\033[0m", flush=True)


class Demo:
    def __init__(self, build):
        self.build = build
        self.agent = os.path.join(build, "agent", "app", "ambit-agent")
        self.waypoint = os.path.join(build, "waypoint", "app", "ambit-waypoint")
        self.ctl = os.path.join(build, "tools", "ambitctl", "ambitctl")
        self.tmp = tempfile.mkdtemp(prefix="ambit-demo-")
        self.procs = []
        self.failures = []

    # ---- topology --------------------------------------------------------------
    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
        self.procs = []
        existing = sh("ip", "netns", "list", check=False).stdout.split()
        for ns in existing:
            if ns.startswith(P + "-"):
                sh("ip", "netns", "del", ns, check=False)

    def add_ns(self, name):
        sh("ip", "netns", "add", name)
        nsx(name, "ip", "link", "set", "lo", "up")
        for key in ("all", "default"):
            nsx(name, "sysctl", "-qw", f"net.ipv4.conf.{key}.rp_filter=0")

    def veth(self, ns_a, name_a, ns_b, name_b):
        tmp = f"vd{len(self.procs)}{name_b[:3]}{name_a[-4:]}"[:15]
        nsx(ns_a, "ip", "link", "add", name_a, "type", "veth", "peer", "name", tmp)
        nsx(ns_a, "ip", "link", "set", tmp, "netns", ns_b)
        nsx(ns_b, "ip", "link", "set", tmp, "name", name_b)
        nsx(ns_a, "ip", "link", "set", name_a, "up")
        nsx(ns_b, "ip", "link", "set", name_b, "up")

    def build_topology(self):
        fabric = f"{P}-fabric"
        self.add_ns(fabric)
        nsx(fabric, "ip", "link", "add", "br0", "type", "bridge")
        nsx(fabric, "ip", "link", "set", "br0", "up")
        for i, (node, (node_ip, pod_gw)) in enumerate(NODES.items()):
            ns = f"{P}-{node}"
            self.add_ns(ns)
            nsx(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            self.veth(fabric, f"n{i}", ns, "eth0")
            nsx(fabric, "ip", "link", "set", f"n{i}", "master", "br0")
            nsx(ns, "ip", "addr", "add", f"{node_ip}/24", "dev", "eth0")
            nsx(ns, "ip", "link", "add", "cbr0", "type", "bridge")
            nsx(ns, "ip", "addr", "add", f"{pod_gw}/24", "dev", "cbr0")
            nsx(ns, "ip", "link", "set", "cbr0", "up")
        nsx(f"{P}-node-a", "ip", "route", "add", "10.44.2.0/24", "via", "10.44.0.2")
        nsx(f"{P}-node-b", "ip", "route", "add", "10.44.1.0/24", "via", "10.44.0.1")
        for k, (pod, (node, ip)) in enumerate(PODS.items()):
            ns = f"{P}-{pod}"
            self.add_ns(ns)
            self.veth(f"{P}-{node}", f"p{k}", ns, "eth0")
            nsx(f"{P}-{node}", "ip", "link", "set", f"p{k}", "master", "cbr0")
            nsx(ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
            nsx(ns, "ip", "route", "add", "default", "via", NODES[node][1])

    # ---- processes -------------------------------------------------------------
    def spawn(self, ns, args, log):
        f = open(log, "w")
        p = subprocess.Popen(["ip", "netns", "exec", ns, *args], stdout=f, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def wait_for(self, path, needle, timeout=20, after=0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(path) as f:
                if needle in f.read()[after:]:
                    return
            time.sleep(0.1)  # poll interval of a bounded wait
        raise RuntimeError(f"timed out waiting for {needle!r} in {path}:\n{open(path).read()}")

    def check(self, cond, what):
        print(("  \u2713 " if cond else "  \u2717 ") + what, flush=True)
        if not cond:
            self.failures.append(what)

    # ---- the demo --------------------------------------------------------------
    def run(self):
        title("1. Topology: two nodes, four pods (network namespaces)")
        self.cleanup()
        self.build_topology()
        for pod, (node, ip) in PODS.items():
            print(f"  pod {pod:<10} {ip:<12} on {node}   netns {P}-{pod}")

        title("2. Built-in CA and one ambit-agent per node (config: tools/examples/demo.yaml)")
        ca = os.path.join(self.tmp, "ca")
        sh(self.ctl, "ca", "init", ca)
        # Everyone watches a copy of the example, so step 8 can change it live.
        self.config = os.path.join(self.tmp, "demo.yaml")
        shutil.copyfile(CONFIG, self.config)
        print(f"  CA root: {ca}/ca.crt")
        self.logs = {}
        for node in NODES:
            log = os.path.join(self.tmp, f"{node}.log")
            self.logs[node] = log
            self.spawn(f"{P}-{node}", [self.agent, "--config", self.config, "--node", node, "--ca-dir", ca,
                                       "--redirect", "auto", "--log-level", "info,access=info"], log)
        for pod, (node, _) in PODS.items():
            if pod != "waypoint":  # the waypoint pod is never captured
                self.wait_for(self.logs[node], f"capturing pod demo/{pod}")
        for node in NODES:
            self.wait_for(self.logs[node], "ready")
            print(f"  {node}: agent ready (in-pod rules installed by the agent)")
        self.logs["waypoint"] = os.path.join(self.tmp, "waypoint.log")
        self.spawn(f"{P}-waypoint", [self.waypoint, "--config", self.config, "--ca-dir", ca,
                                     "--workload", WAYPOINT_UID, "--log-level", "info,access=info"],
                   self.logs["waypoint"])
        self.wait_for(self.logs["waypoint"], "serving HBONE")
        print(f"  waypoint pod: ambit-waypoint serving HBONE on {PODS['waypoint'][1]}:15008")

        title("3. Servers in the server pods, traffic from the client pod to the service VIP")
        for pod in ("server-v1", "server-v2"):
            self.spawn(f"{P}-{pod}", [sys.executable, "-c", HTTP_SERVER, pod],
                       os.path.join(self.tmp, f"{pod}.log"))
        for pod in ("server-v1", "server-v2"):
            self.wait_tcp(f"{P}-{pod}", PODS[pod][1], 8080)
        cap_file = os.path.join(self.tmp, "fabric.pcap")
        tcpdump = shutil.which("tcpdump")
        cap = None
        if tcpdump:
            cap = self.spawn(f"{P}-fabric", [tcpdump, "-i", "br0", "-U", "-s", "0", "-w", cap_file, "tcp"],
                             os.path.join(self.tmp, "tcpdump.log"))
            time.sleep(0.5)  # let tcpdump attach before traffic starts
        replies = []
        for _ in range(12):
            r = nsx(f"{P}-client", "curl", "-s", "--max-time", "5", f"http://{VIP}/", check=False)
            replies.append(r.stdout.strip())
            print(f"  client$ curl http://{VIP}/  ->  {r.stdout.strip() or '(error ' + str(r.returncode) + ')'}")
        if cap:
            time.sleep(0.5)
            cap.send_signal(signal.SIGINT)
            cap.wait(timeout=5)
        self.check(all(r.startswith("hello from server-") for r in replies), "every request answered")
        self.check(any("server-v1" in r for r in replies) and any("server-v2" in r for r in replies),
                   "the service VIP balanced over both versions")
        self.check(all(r.endswith(PODS["client"][1]) for r in replies),
                   f"the servers saw the client pod's own IP {PODS['client'][1]} (original source kept)")

        title("4. Identities: what each agent saw (access logs)")
        # Agents write logs asynchronously: wait for both sides' lines.
        self.wait_for(self.logs["node-a"], "dst.identity=spiffe://cluster.local/ns/demo/sa/httpbin", timeout=10)
        self.wait_for(self.logs["node-b"], "src.identity=spiffe://cluster.local/ns/demo/sa/sleep", timeout=10)
        out = [l for l in open(self.logs["node-a"]).read().splitlines() if "connection complete" in l]
        inb = [l for l in open(self.logs["node-b"]).read().splitlines() if "connection complete" in l]
        for l in out[:2]:
            print("  node-a  " + l.split("\t", 3)[-1][:260])
        for l in inb[:2]:
            print("  node-b  " + l.split("\t", 3)[-1][:260])
        self.check(any("src.identity=spiffe://cluster.local/ns/demo/sa/sleep" in l for l in inb),
                   "node-b verified the client's identity spiffe://cluster.local/ns/demo/sa/sleep")
        self.check(any("dst.identity=spiffe://cluster.local/ns/demo/sa/httpbin" in l for l in out),
                   "node-a tunnelled to spiffe://cluster.local/ns/demo/sa/httpbin")

        title("5. On the wire between the nodes: HBONE (mTLS on port 15008), no plaintext")
        if cap and os.path.exists(cap_file):
            raw = open(cap_file, "rb").read()
            ports = nsx(f"{P}-fabric", tcpdump, "-nn", "-r", cap_file, check=False).stdout
            hbone = sum(1 for l in ports.splitlines() if ".15008" in l)
            other = sum(1 for l in ports.splitlines() if ".15008" not in l)
            print(f"  captured {len(ports.splitlines())} TCP packets on the fabric bridge: "
                  f"{hbone} to/from port 15008, {other} elsewhere")
            self.check(hbone > 0 and other == 0, "all node-to-node packets were HBONE on 15008")
            self.check(b"GET / HTTP/1.1" not in raw and b"hello from server" not in raw,
                       "no HTTP plaintext visible in the capture")
            self.check(b"\x17\x03\x03" in raw, "TLS application-data records present")
        else:
            self.check(False, "tcpdump available for the capture (tools/dev deps installs it)")

        title("6. What operators see: ambitctl and metrics")
        r = nsx(f"{P}-node-a", self.ctl, "workloads", check=False)
        print("  node-a$ ambitctl workloads\n" + "\n".join("    " + l for l in r.stdout.splitlines()))
        self.check(r.returncode == 0 and "server-v1" in r.stdout, "ambitctl workloads lists the pods")
        metrics = nsx(f"{P}-node-b", "curl", "-s", "http://127.0.0.1:15020/metrics", check=False).stdout
        opened = [l for l in metrics.splitlines()
                  if l.startswith("istio_tcp_connections_opened_total{") and 'reporter="destination"' in l]
        for l in opened[:2]:
            print("  node-b  " + (l if len(l) < 200 else l[:100] + " ... " + l[-80:]))
        self.check(len(opened) > 0, "node-b counts istio_tcp_connections_opened_total (reporter=destination)")

        title("7. L7: the reviews service uses a waypoint (ambit-waypoint)")
        urls = [f"http://{REVIEWS_VIP}/"] * 6
        r = nsx(f"{P}-client", "curl", "-s", "--max-time", "10", "-w", "%{num_connects}\\n", *urls,
                check=False)
        lines = [l for l in r.stdout.splitlines() if l.strip()]
        replies = [l for l in lines if l.startswith("hello from")]
        connects = sum(int(l) for l in lines if l.strip().isdigit())
        print(f"  client$ curl {' '.join(['http://' + REVIEWS_VIP + '/'] * 2)} ... (6 requests, one connection)")
        for l in replies:
            print(f"    {l}")
        self.check(len(replies) == 6, "every request through the waypoint answered")
        self.check(connects == 1, f"one keep-alive connection from the client ({connects} connect)")
        self.check(any("server-v1" in l for l in replies) and any("server-v2" in l for l in replies),
                   "the waypoint balanced the requests of that one connection over both versions")
        self.check(all(l.endswith(PODS["waypoint"][1]) for l in replies),
                   f"the servers saw the waypoint ({PODS['waypoint'][1]}) as the client")
        self.wait_for(self.logs["waypoint"], "request complete", timeout=10)
        acc = [l for l in open(self.logs["waypoint"]).read().splitlines() if "request complete" in l]
        for l in acc[:2]:
            print("  waypoint  " + l.split("\t", 3)[-1][:260])
        self.check(any("src.identity=spiffe://cluster.local/ns/demo/sa/sleep" in l for l in acc),
                   "the waypoint saw the client's identity as the request's source principal")
        metrics = nsx(f"{P}-waypoint", "curl", "-s", "http://127.0.0.1:15020/metrics", check=False).stdout
        reqs = [l for l in metrics.splitlines()
                if l.startswith("istio_requests_total{") and 'reporter="waypoint"' in l]
        for l in reqs[:2]:
            print("  waypoint  " + (l if len(l) < 200 else l[:100] + " ... " + l[-90:]))
        self.check(len(reqs) > 0, "the waypoint counts istio_requests_total (reporter=waypoint)")
        self.canary()

    def canary(self):
        title("8. L7 routing: a canary for reviews (VirtualService + DestinationRule, applied live)")
        text = open(CANARY).read()
        shown = [l for l in text.splitlines() if l and not l.startswith("#")]
        print("  tools/examples/reviews-canary.yaml (appended to the watched config):")
        for l in shown:
            print("    " + l)
        mark = len(open(self.logs["waypoint"]).read())
        with open(self.config) as f:
            merged = f.read().rstrip("\n") + "\n---\n" + text
        tmp = self.config + ".tmp"
        with open(tmp, "w") as f:
            f.write(merged)
        os.rename(tmp, self.config)  # atomic, like a ConfigMap update
        self.wait_for(self.logs["waypoint"], "1 route tables", timeout=10, after=mark)
        print("  waypoint: config applied, 1 route table (reviews:80), no restart")
        counts = self.count_versions(300, {})
        print(f"  client$ 300 requests on one keep-alive connection  ->  {counts}")
        v1 = counts.get("server-v1", 0)
        self.check(sum(counts.values()) == 300 and 240 <= v1 <= 300 and counts.get("server-v2", 0) > 0,
                   f"everyone else is split about 90/10 per request (v1 {v1 / 3:.0f}%)")
        counts = self.count_versions(50, {"x-canary-user": "true"})
        print(f"  client$ 50 requests with x-canary-user: true   ->  {counts}")
        self.check(counts == {"server-v2": 50}, "every canary user gets v2")
        dump = json.loads(nsx(f"{P}-waypoint", "curl", "-s", "http://127.0.0.1:15000/config_dump",
                              check=False).stdout or "{}")
        for t in dump.get("routes", []):
            for r in t["routes"]:
                action = r.get("route", {}).get("weightedClusters", [])
                print(f"  config_dump  {t['name']}  {r['name']}  ->  " +
                      ", ".join(f"{c['name']} ({c['weight']})" for c in action))
        self.check(len(dump.get("routes", [])) == 1, "/config_dump shows the route table")

    def count_versions(self, n, headers):
        """n requests from the client pod on one keep-alive connection; replies per version."""
        code = (
            "import http.client, json, collections\n"
            f"c = http.client.HTTPConnection('{REVIEWS_VIP}', 80, timeout=10)\n"
            "n = collections.Counter()\n"
            f"for _ in range({n}):\n"
            f"    c.request('GET', '/', headers={headers!r})\n"
            "    body = c.getresponse().read().decode()\n"
            "    n[body.split()[2].rstrip(':') if body.startswith('hello from') else 'error'] += 1\n"
            "print(json.dumps(dict(n)))\n")
        r = nsx(f"{P}-client", sys.executable, "-c", code, check=False, timeout=60)
        try:
            return json.loads(r.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            return {"error": r.stderr[-300:]}

    def wait_tcp(self, ns, ip, port, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = nsx(ns, "python3", "-c",
                    f"import socket; socket.create_connection(('{ip}', {port}), 1).close()", check=False)
            if r.returncode == 0:
                return
            time.sleep(0.1)  # poll interval of a bounded wait
        raise RuntimeError(f"{ip}:{port} did not come up")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--keep", action="store_true", help="leave the topology running (Ctrl-C to stop)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("the demo needs root (network namespaces, iptables)", file=sys.stderr)
        return 1
    demo = Demo(args.build)
    try:
        demo.run()
        if args.keep:
            print(f"\nTopology left running (namespaces {P}-*). Ctrl-C to clean up.")
            signal.pause()
    except KeyboardInterrupt:
        pass
    except Exception as e:  # report, then clean up
        print(f"\ndemo failed: {e}", file=sys.stderr)
        for node, log in getattr(demo, "logs", {}).items():
            print(f"---- {node} agent log ----\n" + open(log).read()[-4000:], file=sys.stderr)
        demo.failures.append(str(e))
    finally:
        demo.cleanup()
        shutil.rmtree(demo.tmp, ignore_errors=True)
    if demo.failures:
        print(f"\n\033[1mdemo: {len(demo.failures)} check(s) failed\033[0m")
        return 1
    print("\n\033[1mdemo: all checks passed; topology removed.\033[0m")
    return 0


if __name__ == "__main__":
    sys.exit(main())
