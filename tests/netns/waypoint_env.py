"""A waypoint on top of AmbitEnv: the waypoint pod (a workload the agents
never capture, labelled with its gateway name), its Service on 15008, and
ambit-waypoint running inside the pod's netns.

    env = AmbitEnv(topo, build)
    wp = WaypointPod(env, node=2, name="waypoint")     # before env.start()
    env.service("echo", vip=..., ports=..., extra=wp.use())
    env.start(); wp.start()
"""
import json
import os
import signal
import subprocess
import time
import urllib.request

from harness import in_netns  # noqa: F401

CLIENTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support",
                       "waypoint_clients.py")


def metric_sum(text, name, **labels):
    """Sum of the Prometheus samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def echo_stats(pod, port=8080):
    """echo_backend.py's /__stats of the backend in `pod` (per path, uuid: tries)."""
    def body():
        with urllib.request.urlopen(f"http://{pod.ip}:{port}/__stats", timeout=5) as r:
            return json.loads(r.read())
    return in_netns(pod.ns, body)


def run_client(topo, pod, *args, timeout=120):
    """waypoint_clients.py ARGS inside `pod`; its JSON summary (ok False on no output)."""
    r = topo.ns_exec(pod.ns, ["/usr/bin/python3", CLIENTS, *args], check=False, timeout=timeout)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"ok": False, "raw": r.stdout[-2000:], "stderr": r.stderr[-2000:]}


class WaypointPod:
    def __init__(self, env, node, name="waypoint", ns="demo", vip="10.96.0.99", sandwich=False):
        self.env, self.node, self.name, self.ns = env, node, name, ns
        self.bin = os.path.join(env.build, "waypoint", "app", "ambit-waypoint")
        self.uid = f"cluster1//Pod/{ns}/{name}"
        self.sandwich = sandwich
        extra = {"labels": {"gateway.networking.k8s.io/gateway-name": name}}
        if sandwich:
            # Captured by its node's agent, which hands HBONE streams over on
            # 127.0.0.1:15088 behind a PROXY v2 header (ISTIO-COMPAT §2.7).
            extra["applicationTunnel"] = {"protocol": "PROXY", "port": 15088}
        else:
            extra["netns"] = ""  # never captured: it terminates HBONE itself
        host = f"{name}.{ns}.svc.cluster.local"
        self.pod = env.pod(node, name, sa=name, ns=ns,
                           services={f"{ns}/{host}": {15008: 15008}}, extra=extra)
        env.service(name, vip=vip, ports={15008: 15008}, ns=ns)
        self.hostname = host
        self.proc = None
        self.log_path = os.path.join(env.dir, f"waypoint-{name}.log")

    def use(self):
        """Service fields that send its traffic through this waypoint."""
        return {"waypoint": {"destination": {"namespace": self.ns, "hostname": self.hostname},
                             "hboneMtlsPort": 15008}}

    def start(self, extra_args=(), log_level="info,access=info"):
        logf = open(self.log_path, "a")
        cmd = ["ip", "netns", "exec", self.pod.ns, self.bin, "--config", self.env.config_path,
               "--ca-dir", self.env.ca_dir, "--workload", self.uid, "--workers", "2",
               "--log-level", log_level, *extra_args]
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
        self.env.topo.procs.append(self.proc)
        self.wait_log("serving HBONE", timeout=15)
        return self.proc

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_log(self, needle, timeout=10.0, after=0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log()
            if needle in text[after:]:
                return text
            if self.proc.poll() is not None:
                raise RuntimeError(f"waypoint exited ({self.proc.returncode}):\n{text}")
            time.sleep(0.05)  # poll interval of a wait-with-timeout
        raise TimeoutError(f"no {needle!r} in the waypoint log within {timeout}s:\n{self.log()}")

    def http(self, path, port):
        """GET on the waypoint pod's own admin/stats servers (inside its netns)."""
        host = "127.0.0.1"
        def body():
            with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        return in_netns(self.pod.ns, body)

    def metrics(self):
        return self.http("/metrics", 15020)[1]

    def config_dump(self):
        return json.loads(self.http("/config_dump", 15000)[1])

    def stop(self, timeout=15.0):
        """SIGTERM; returns the exit code (None if it had to be killed)."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None
