"""The bench topology: four node namespaces, real ambit-agent processes and peer tunnels.

    node 1 ── agent (io_uring) ── pod cu (client)      plain pod cp (client for direct and peers)
    node 2 ── agent (io_uring) ── pod su (server)      plain pod sp (server for direct and peers)
    node 3 ── agent (epoll)    ── pod ce (client)      stunnel A, HAProxy A live in node 1
    node 4 ── agent (epoll)    ── pod se (server)      stunnel B, HAProxy B live in node 2
    node 5 ── base agent (io_uring) ── pod cb (client)  only in A/B runs (--ab BUILD)
    node 6 ── base agent (io_uring) ── pod sb (server)

Every server pod runs the same servers: iperf3, sockperf, an HAProxy HTTP responder and a
connection holder. A Variant says from which pod to connect to which address:port and which
processes are "the proxies" whose CPU and memory we charge.
"""
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "netns"))
from harness import Topology, run, wait_tcp  # noqa: E402
from ambit_env import AmbitEnv  # noqa: E402

from . import peers  # noqa: E402
from .measure import rss_kb  # noqa: E402

# A/B runs: with a baseline agent (tools/bench --ab BUILD, or AMBIT_BENCH_BASE_AGENT=/path/to/
# old/ambit-agent), nodes 5 and 6 run that binary on io_uring beside this build's io_uring and
# epoll agents: every scenario measures variant "base" interleaved with the others in the same
# run and prints an A/B line (this build ÷ baseline). Set before BenchEnv is entered.
BASE_AGENT = os.environ.get("AMBIT_BENCH_BASE_AGENT", "")


def order(env, names):
    """names with "base" inserted after "uring" when this run has a baseline agent."""
    if "base" not in env.variants or "uring" not in names:
        return list(names)
    i = names.index("uring") + 1
    return list(names[:i]) + ["base"] + list(names[i:])

PORTS = {"iperf": 5201, "sockperf": 11111, "http": 8080, "hold": 9000}
STUNNEL_BASE, HAPROXY_BASE = 20000, 22000

# Accepts connections, sends one byte ("k") so the client knows the tunnel is up, then holds.
HOLD_SERVER = r"""
import selectors, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(4096); s.setblocking(False)
sel = selectors.DefaultSelector(); sel.register(s, selectors.EVENT_READ)
held = {}
print("ready", flush=True)
while True:
    for key, _ in sel.select(1.0):
        if key.fileobj is s:
            while True:
                try:
                    c, _ = s.accept()
                except BlockingIOError:
                    break
                c.setblocking(False)
                try:
                    c.send(b"k")
                except OSError:
                    pass
                held[c.fileno()] = c
                sel.register(c, selectors.EVENT_READ)
        else:
            c = key.fileobj
            try:
                d = c.recv(4096)
            except OSError:
                d = b""
            if not d:
                sel.unregister(c); held.pop(c.fileno(), None); c.close()
"""


class Variant:
    def __init__(self, name, client_ns, ip, port_of, pids, label, server_pod):
        self.name, self.client_ns, self.ip = name, client_ns, ip
        self.server_pod = server_pod  # pod whose servers answer this variant
        self.port_of = port_of  # app name -> port the client connects to
        self.pids = pids        # the two proxies (CPU, RSS)
        self.label = label


class BenchEnv:
    def __init__(self, build, log=print, workers=2, base_agent=None):
        self.build, self.log, self.workers = build, log, workers
        self.base_agent = BASE_AGENT if base_agent is None else base_agent
        self.topo = Topology(nodes=6 if self.base_agent else 4, tag="b")
        self.variants = {}
        self.servers = []  # long-running app server pids (pinned in pinned runs)
        self.sockperf = {}  # pod name -> sockperf server process

    def __enter__(self):
        # Raise the soft fd limit to the hard one (children inherit); this container has no
        # CAP_SYS_RESOURCE, so the hard limit caps how many idle connections `memory` can hold.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.fd_limit = hard
        self.topo.__enter__()
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        self.topo.close()
        if hasattr(self, "amb"):
            self.amb.cleanup()

    # ---- setup -------------------------------------------------------------
    def _setup(self):
        amb = self.amb = AmbitEnv(self.topo, self.build, workers=self.workers)
        self.dir = amb.dir
        cu, su = amb.pod(1, "cu", sa="client"), amb.pod(2, "su", sa="server")
        ce, se = amb.pod(3, "ce", sa="client"), amb.pod(4, "se", sa="server")
        cp, sp = amb.pod(1, "cp", captured=False), amb.pod(2, "sp", captured=False)
        self.pods = dict(cu=cu, su=su, ce=ce, se=se, cp=cp, sp=sp)
        if self.base_agent:
            self.pods.update(cb=amb.pod(5, "cb", sa="client"), sb=amb.pod(6, "sb", sa="server"))
        run([amb.ctl_bin, "ca", "init", amb.ca_dir])
        amb.write_config()
        self.agent_pids = {}
        pairs = ((1, "uring"), (2, "uring"), (3, "epoll"), (4, "epoll"))
        if self.base_agent:
            pairs += ((5, "uring"), (6, "uring"))
        for node, io in pairs:
            binary = self.base_agent if node >= 5 else None
            self.agent_pids[node] = self._start_agent(node, io, binary).pid
        captured = ((1, "cu"), (2, "su"), (3, "ce"), (4, "se"))
        if self.base_agent:
            captured += ((5, "cb"), (6, "sb"))
        for node, pod in captured:
            amb.wait_log(node, f"capturing pod demo/{pod}", timeout=20)
        for name in ("su", "se", "sp") + (("sb",) if self.base_agent else ()):
            self._start_servers(self.pods[name])
        self._start_peers(sp)
        same = dict(PORTS)
        self.variants = {
            "direct": Variant("direct", cp.ns, sp.ip, dict(same), [], "direct (no agents)", "sp"),
            "uring": Variant("uring", cu.ns, su.ip, dict(same), [self.agent_pids[1], self.agent_pids[2]],
                             "Ambit io_uring", "su"),
            "epoll": Variant("epoll", ce.ns, se.ip, dict(same), [self.agent_pids[3], self.agent_pids[4]],
                             "Ambit epoll", "se"),
            "stunnel": Variant("stunnel", cp.ns, "10.44.1.1", self.stunnel_ports,
                               self.stunnel_pids, "stunnel pair", "sp"),
            "haproxy": Variant("haproxy", cp.ns, "10.44.1.1", self.haproxy_ports,
                               self.haproxy_pids, "HAProxy pair", "sp"),
        }
        if self.base_agent:
            cb, sb = self.pods["cb"], self.pods["sb"]
            self.variants["base"] = Variant("base", cb.ns, sb.ip, dict(same),
                                            [self.agent_pids[5], self.agent_pids[6]],
                                            "baseline io_uring (A/B)", "sb")
        for pod in self.pods.values():  # many short connections per run: reuse TIME_WAIT ports
            self.topo.ns_exec(pod.ns, ["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"])
            self.topo.ns_exec(pod.ns, ["sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65000"])
        self.rss_at_start = {p: rss_kb(p) for p in self.all_pids()}
        for v in self.variants.values():  # every path works before we time anything
            wait_tcp(v.client_ns, v.ip, v.port_of["http"], timeout=10)
        self.log(f"[bench] topology up: {len(self.agent_pids)} agents"
                 + (f" (nodes 5-6: baseline {self.base_agent})" if self.base_agent else "")
                 + ", stunnel and HAProxy pairs, servers in the server pods")

    def _start_agent(self, node, io, binary=None):
        amb = self.amb
        log_path = os.path.join(self.dir, f"agent-{node}.log")
        amb.logs[node] = log_path
        cmd = ["ip", "netns", "exec", self.topo.node_ns(node), binary or amb.agent_bin,
               "--config", amb.config_path, "--node", f"node-{node}", "--ca-dir", amb.ca_dir,
               "--workers", str(self.workers), "--redirect", "auto", "--io", io,
               "--log-level", "info"]
        p = subprocess.Popen(cmd, stdout=open(log_path, "a"), stderr=subprocess.STDOUT)
        self.topo.procs.append(p)
        amb.agents[node] = p
        return p

    def spawn(self, ns, args, name):
        """Long-running process in ns; output to a log file (a full pipe would block it)."""
        path = os.path.join(self.dir, f"{name}.log")
        p = subprocess.Popen(["ip", "netns", "exec", ns] + list(args), stdout=open(path, "w"),
                             stderr=subprocess.STDOUT, text=True)
        self.topo.procs.append(p)
        return p, path

    def _spawn_ready(self, ns, args, want=None, port=None, ip="127.0.0.1"):
        name = f"{ns.rsplit('-', 1)[-1]}-{os.path.basename(args[0])}-{len(self.topo.procs)}"
        p, path = self.spawn(ns, args, name)
        try:
            if want:
                _wait_file(path, want, p, timeout=10)
            if port:
                wait_tcp(ns, ip, port, timeout=10)
        except (TimeoutError, RuntimeError) as e:
            with open(path) as f:
                raise RuntimeError(f"{' '.join(args)} in {ns} did not come up: {e}\n{f.read()[-2000:]}")
        return p

    def _sockperf_server(self, ns, port=PORTS["sockperf"]):
        return self._spawn_ready(ns, ["sockperf", "server", "--tcp", "-i", "0.0.0.0", "-p",
                                      str(port)], port=port)

    def restart_sockperf(self, v):
        """sockperf's server is single-threaded: a connection a proxy never closes wedges it.
        Starts a fresh one on the next port (the old port stays busy while the proxy holds the
        connection) and points v there. Only for variants that connect to the pod itself (the
        peers' routes are fixed); returns False when it cannot."""
        if v.ip != self.pods[v.server_pod].ip:
            return False
        old = self.sockperf[v.server_pod]
        old.kill()
        old.wait(timeout=5)
        self.servers.remove(old.pid)
        port = v.port_of["sockperf"] + 1
        new = self._sockperf_server(self.pods[v.server_pod].ns, port)
        self.sockperf[v.server_pod] = new
        self.servers.append(new.pid)
        v.port_of["sockperf"] = port
        return True

    def _start_servers(self, pod):
        ns = pod.ns
        self.sockperf[pod.name] = self._sockperf_server(ns)
        procs = [
            self.sockperf[pod.name],
            self._spawn_ready(ns, ["iperf3", "-s", "-p", str(PORTS["iperf"])], port=PORTS["iperf"]),
            self._spawn_ready(ns, ["haproxy", "-db", "-f",
                                   peers.http_responder_config(self.dir, PORTS["http"])],
                              port=PORTS["http"]),
            self._spawn_ready(ns, [sys.executable, "-c", HOLD_SERVER, str(PORTS["hold"])], "ready"),
        ]
        self.servers += [p.pid for p in procs]

    def issue(self, name):
        out = os.path.join(self.dir, "certs", name)
        run([self.amb.ctl_bin, "ca", "issue", "--ca", self.amb.ca_dir,
             "--identity", f"spiffe://cluster.local/ns/bench/sa/{name}", "--out", out])
        return out

    def _start_peers(self, sp):
        ca = os.path.join(self.issue("peer-a"), "root-cert.pem")
        cert_a, cert_b = os.path.join(self.dir, "certs", "peer-a"), self.issue("peer-b")
        self.client_cert = self.issue("bench-client")
        n1, n2 = self.topo.node_ns(1), self.topo.node_ns(2)
        apps = list(PORTS)
        self.stunnel_ports = {a: STUNNEL_BASE + i for i, a in enumerate(apps)}
        self.haproxy_ports = {a: HAPROXY_BASE + i for i, a in enumerate(apps)}
        st = [(f"10.44.1.1:{STUNNEL_BASE + i}", f"10.44.0.2:{STUNNEL_BASE + 1000 + i}",
               f"{sp.ip}:{PORTS[a]}") for i, a in enumerate(apps)]
        hp = [(f"10.44.1.1:{HAPROXY_BASE + i}", f"10.44.0.2:{HAPROXY_BASE + 1000 + i}",
               f"{sp.ip}:{PORTS[a]}") for i, a in enumerate(apps)]
        self.stunnel_b_port = STUNNEL_BASE + 1000 + apps.index("http")
        self.haproxy_b_port = HAPROXY_BASE + 1000 + apps.index("http")
        sa, sb = peers.stunnel_configs(self.dir, cert_a, cert_b, ca, st)
        ha, hb = peers.haproxy_configs(self.dir, cert_a, cert_b, ca, hp, threads=self.workers)
        pb = self._spawn_ready(n2, ["stunnel4", sb], port=STUNNEL_BASE + 1000, ip="10.44.0.2")
        pa = self._spawn_ready(n1, ["stunnel4", sa], port=STUNNEL_BASE, ip="10.44.1.1")
        self.stunnel_pids = [pa.pid, pb.pid]
        hb_p = self._spawn_ready(n2, ["haproxy", "-db", "-f", hb], port=HAPROXY_BASE + 1000,
                                 ip="10.44.0.2")
        ha_p = self._spawn_ready(n1, ["haproxy", "-db", "-f", ha], port=HAPROXY_BASE,
                                 ip="10.44.1.1")
        self.haproxy_pids = [ha_p.pid, hb_p.pid]

    # ---- helpers -------------------------------------------------------------
    def all_pids(self):
        pids = list(self.agent_pids.values()) + self.stunnel_pids + self.haproxy_pids
        return pids + self.servers

    def exec_in(self, ns, args, timeout):
        """Runs a client command inside ns; returns CompletedProcess (never raises on rc)."""
        try:
            return subprocess.run(["ip", "netns", "exec", ns] + list(args), capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            out = e.stdout or b""
            out = out.decode(errors="replace") if isinstance(out, bytes) else out
            return subprocess.CompletedProcess(args, 124, out, f"timed out after {timeout} s")

    def agents_alive(self):
        return {n: p.poll() is None for n, p in self.amb.agents.items()}

    def settle(self, seconds=0.3):
        time.sleep(seconds)  # let the previous variant's sockets drain before the next one


def _wait_file(path, want, proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path) as f:
            if want in f.read():
                return
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}")
        time.sleep(0.05)  # poll interval of a wait-with-timeout
    raise TimeoutError(f"no {want!r} within {timeout}s")


def tempdir():
    return tempfile.mkdtemp(prefix="ambit-bench-")
