"""Netns test harness for Ambit (Python 3 stdlib only; run with /usr/bin/python3).

Topology (all inside namespaces this run creates; the host's interfaces are
never touched):

    fabric ns:  bridge br0  <-veth->  node ns eth0  10.44.0.<i+1>/24
    node i:     bridge cbr0 10.44.<i>.1/24, ip_forward, routes to other nodes' pod CIDRs
    pod:        eth0 10.44.<i>.<k>/24 (veth to the node's cbr0), default via 10.44.<i>.1

With Topology(ipv6=True) the same links also carry IPv6 (DAD off, so the
addresses are usable at once): node eth0 fd44::<i>/64, cbr0 fd44:<i>::1/64
(forwarding on, routes to the other nodes' fd44:<j>::/64), and add_pod(...,
family="v6"|"dual") gives the pod fd44:<i>::<k>/64 (v6 only: no IPv4 address
at all), default via fd44:<i>::1. Pod.ips lists every address, Pod.ip is the
primary one (IPv4 unless the pod is IPv6-only), Pod.ip4 / Pod.ip6 or None.

Names carry a per-run prefix (ambit-t<pid>-...). Topology is a context
manager: processes are killed and namespaces deleted even when a test fails.
Not root or no `ip netns`: exit 77 (meson SKIP; CI counts skips as failures).
"""
import contextlib
import ctypes
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

SKIP = 77
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def require_root():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        print("SKIP: netns tests need root and iproute2 (`ip netns`)", file=sys.stderr)
        sys.exit(SKIP)
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True)
    if probe.returncode != 0:
        print("SKIP: `ip netns` unavailable", file=sys.stderr)
        sys.exit(SKIP)


def run(args, check=True, timeout=20, input=None):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def in_netns(ns, fn, *args):
    """Runs fn(*args) on a helper thread that entered netns `ns` (setns)."""
    result = {}

    def body():
        fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {ns}")
            result["value"] = fn(*args)
        except BaseException as e:  # re-raised on the caller's thread
            result["error"] = e
        finally:
            os.close(fd)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def _connect(ip, port, timeout, source=None):
    s = socket.create_connection((ip, port), timeout=timeout, source_address=source)
    return s


def hostport(ip, port):
    """"10.0.0.1:80" or "[fd44::1]:80"."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def tcp_exchange(ns, ip, port, payload=b"hello\n", timeout=3.0):
    """Connects from inside `ns`, sends payload, returns the first reply line."""
    def body():
        with _connect(ip, port, timeout) as s:
            s.settimeout(timeout)
            s.sendall(payload)
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data.decode()
    return in_netns(ns, body)


def open_stream(ns, ip, port, timeout=5.0):
    """Connects from inside `ns` to an echo server, reads its greeting line,
    and returns the open socket (for tests that keep a connection alive)."""
    def body():
        s = _connect(ip, port, timeout)
        s.settimeout(timeout)
        hello = b""
        while not hello.endswith(b"\n"):
            d = s.recv(1)
            if not d:
                break
            hello += d
        return s
    return in_netns(ns, body)


def still_flows(s, probe=b"x"):
    """True if an echo connection still echoes `probe`."""
    try:
        s.sendall(probe)
        return s.recv(len(probe)) == probe
    except OSError:
        return False


def wait_tcp(ns, ip, port, timeout=5.0):
    """Waits until ip:port accepts a TCP connection from inside `ns`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            in_netns(ns, lambda: _connect(ip, port, 0.5).close())
            return
        except OSError as e:
            last = e
            time.sleep(0.05)  # poll interval of a wait-with-timeout, not a bare sleep
    raise TimeoutError(f"{ip}:{port} in {ns} not reachable within {timeout}s: {last}")


# Serves one line "peer=<ip>:<port>\n" per connection, then echoes.
ECHO_SERVER = r"""
import socket, sys, threading
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if fam == socket.AF_INET6 and sys.argv[1] == "::":
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # dual stack
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64)
print("ready", flush=True)
def serve(c, a):
    with c:
        c.sendall(("peer=%s:%d tag=%s\n" % (a[0], a[1], sys.argv[3])).encode())
        while True:
            d = c.recv(4096)
            if not d: break
            c.sendall(d)
while True:
    c, a = s.accept()
    threading.Thread(target=serve, args=(c, a), daemon=True).start()
"""


class Pod:
    def __init__(self, ns, ip, node, ip6=None):
        self.ns, self.node = ns, node
        self.ip4, self.ip6 = ip, ip6
        self.ip = ip if ip is not None else ip6
        self.ips = [a for a in (ip, ip6) if a is not None]

    @property
    def path(self):
        return f"/var/run/netns/{self.ns}"


class Topology:
    def __init__(self, nodes=2, tag=None, ipv6=False):
        self.ipv6 = ipv6
        self.prefix = f"ambit-t{os.getpid()}{tag or ''}"
        self.fabric = f"{self.prefix}-fab"
        self.namespaces = []
        self.procs = []
        self.node_count = nodes
        self.pods = {i: [] for i in range(1, nodes + 1)}

    # ---- lifecycle ---------------------------------------------------------
    def __enter__(self):
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            with contextlib.suppress(Exception):
                p.wait(timeout=5)
        for ns in reversed(self.namespaces):
            run(["ip", "netns", "del", ns], check=False)
        self.namespaces = []

    # ---- building ----------------------------------------------------------
    def _add_ns(self, name):
        run(["ip", "netns", "add", name])
        self.namespaces.append(name)
        self.ns_exec(name, ["ip", "link", "set", "lo", "up"])
        for key in ("all", "default"):
            self.ns_exec(name, ["sysctl", "-qw", f"net.ipv4.conf.{key}.rp_filter=0"])
            if self.ipv6:  # addresses usable at once, before any veth exists
                self.ns_exec(name, ["sysctl", "-qw", f"net.ipv6.conf.{key}.accept_dad=0"])
        return name

    def _addr6(self, ns, cidr, dev):
        self.ns_exec(ns, ["ip", "-6", "addr", "add", cidr, "dev", dev, "nodad"])

    def node_ns(self, i):
        return f"{self.prefix}-n{i}"

    def _build(self):
        self._add_ns(self.fabric)
        self.ns_exec(self.fabric, ["ip", "link", "add", "br0", "type", "bridge"])
        self.ns_exec(self.fabric, ["ip", "link", "set", "br0", "up"])
        for i in range(1, self.node_count + 1):
            node = self._add_ns(self.node_ns(i))
            self.ns_exec(node, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
            self._veth(self.fabric, f"n{i}", node, "eth0")
            self.ns_exec(self.fabric, ["ip", "link", "set", f"n{i}", "master", "br0"])
            self.ns_exec(node, ["ip", "addr", "add", f"10.44.0.{i}/24", "dev", "eth0"])
            self.ns_exec(node, ["ip", "link", "add", "cbr0", "type", "bridge"])
            self.ns_exec(node, ["ip", "addr", "add", f"10.44.{i}.1/24", "dev", "cbr0"])
            self.ns_exec(node, ["ip", "link", "set", "cbr0", "up"])
            if self.ipv6:
                self.ns_exec(node, ["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
                self._addr6(node, f"fd44::{i}/64", "eth0")
                self._addr6(node, f"fd44:{i}::1/64", "cbr0")
        for i in range(1, self.node_count + 1):
            for j in range(1, self.node_count + 1):
                if i != j:
                    self.ns_exec(self.node_ns(i), ["ip", "route", "add", f"10.44.{j}.0/24",
                                                   "via", f"10.44.0.{j}"])
                    if self.ipv6:
                        self.ns_exec(self.node_ns(i), ["ip", "-6", "route", "add",
                                                       f"fd44:{j}::/64", "via", f"fd44::{j}"])

    def _veth(self, ns_a, name_a, ns_b, name_b):
        tmp = f"vt{os.getpid() % 100000}{len(self.namespaces)}"
        self.ns_exec(ns_a, ["ip", "link", "add", name_a, "type", "veth", "peer", "name", tmp])
        self.ns_exec(ns_a, ["ip", "link", "set", tmp, "netns", ns_b])
        self.ns_exec(ns_b, ["ip", "link", "set", tmp, "name", name_b])
        self.ns_exec(ns_a, ["ip", "link", "set", name_a, "up"])
        self.ns_exec(ns_b, ["ip", "link", "set", name_b, "up"])

    def add_pod(self, node, name, family="v4"):
        """family: "v4", or (Topology(ipv6=True) only) "v6" (IPv6 only) or "dual"."""
        if family not in ("v4", "v6", "dual") or (family != "v4" and not self.ipv6):
            raise ValueError(f"pod family {family!r} needs Topology(ipv6=True)")
        k = len(self.pods[node]) + 2
        ns = self._add_ns(f"{self.prefix}-{name}")
        node_ns = self.node_ns(node)
        host_if = f"p{k}"
        self._veth(node_ns, host_if, ns, "eth0")
        self.ns_exec(node_ns, ["ip", "link", "set", host_if, "master", "cbr0"])
        ip = ip6 = None
        if family != "v6":
            ip = f"10.44.{node}.{k}"
            self.ns_exec(ns, ["ip", "addr", "add", f"{ip}/24", "dev", "eth0"])
            self.ns_exec(ns, ["ip", "route", "add", "default", "via", f"10.44.{node}.1"])
        if family != "v4":
            ip6 = f"fd44:{node}::{k}"
            self._addr6(ns, f"{ip6}/64", "eth0")
            self.ns_exec(ns, ["ip", "-6", "route", "add", "default", "via", f"fd44:{node}::1"])
        pod = Pod(ns, ip, node, ip6)
        self.pods[node].append(pod)
        return pod

    # ---- processes ---------------------------------------------------------
    def ns_exec(self, ns, args, check=True, timeout=20, input=None):
        return run(["ip", "netns", "exec", ns] + list(args), check, timeout, input)

    def spawn(self, ns, args):
        """Starts a long-running process (inside ns if given); killed on close."""
        cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        return p

    def wait_line(self, proc, want, timeout=5.0):
        """Reads proc's stdout until a line containing `want`; returns that line."""
        box = {}

        def reader():
            for line in proc.stdout:
                if want in line:
                    box["line"] = line.strip()
                    return
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        t.join(timeout)
        if "line" not in box:
            err = ""
            if proc.poll() is not None:
                err = proc.stderr.read()
            raise TimeoutError(f"no line with {want!r} within {timeout}s; stderr: {err}")
        return box["line"]

    def echo_server(self, ns, ip, port, tag="app"):
        p = self.spawn(ns, [sys.executable, "-c", ECHO_SERVER, ip, str(port), tag])
        self.wait_line(p, "ready")
        return p
