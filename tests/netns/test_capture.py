"""Netns test: in-pod redirection installed by `ambitctl redirect` really
captures traffic (ISTIO-COMPAT §4.1), original destinations are recovered,
source spoofing returns through connmark/table 100, and remove cleans up.

usage: test_capture.py --ambitctl PATH --probe PATH --backend iptables|nft --mode redirect|tproxy
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def field(line, key):
    m = re.search(rf"{key}=(\S+)", line)
    return m.group(1) if m else None


def ruleset(topo, pod):
    out = topo.ns_exec(pod.ns, ["iptables-save"]).stdout
    out += topo.ns_exec(pod.ns, ["ip6tables-save"], check=False).stdout
    out += topo.ns_exec(pod.ns, ["nft", "list", "ruleset"]).stdout
    rules = topo.ns_exec(pod.ns, ["ip", "rule"]).stdout
    table100 = topo.ns_exec(pod.ns, ["ip", "route", "show", "table", "100"], check=False).stdout
    return out, rules, table100


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ambitctl", required=True)
    ap.add_argument("--probe", required=True)
    ap.add_argument("--backend", default="iptables")
    ap.add_argument("--mode", default="redirect")
    a = ap.parse_args()
    harness.require_root()

    with harness.Topology(nodes=2, tag=f"{a.backend[0]}{a.mode[0]}") as topo:
        pod_a = topo.add_pod(1, "a")   # captured pod, 10.44.1.2
        pod_b = topo.add_pod(2, "b")   # peer on the other node, 10.44.2.2
        # Apps: pod B serves 8080 (outbound target), pod A serves 8080 and
        # 127.0.0.1:9090 (loopback must not be captured).
        topo.echo_server(pod_b.ns, "0.0.0.0", 8080, tag="b-app")
        topo.echo_server(pod_a.ns, "0.0.0.0", 8080, tag="a-app")
        topo.echo_server(pod_a.ns, "127.0.0.1", 9090, tag="a-loop")
        harness.wait_tcp(pod_a.ns, pod_b.ip, 8080)
        pre = topo.ns_exec(pod_a.ns, ["true"])  # namespace sanity
        check(pre.returncode == 0, "pod netns usable")

        # Before install: nothing is captured.
        line = harness.tcp_exchange(pod_a.ns, pod_b.ip, 8080)
        check("tag=b-app" in line, f"before install, A->B:8080 reaches B's app ({line.strip()})")

        cmd = [a.ambitctl, "redirect", "install", "--netns", pod_a.path,
               "--backend", a.backend, "--mode", a.mode]
        r = harness.run(cmd, check=False)
        check(r.returncode == 0, f"ambitctl redirect install ({r.stderr.strip()})")
        # Idempotent: a second install replaces, it does not duplicate.
        r = harness.run(cmd, check=False)
        check(r.returncode == 0, "second install succeeds")
        rules, iprules, table100 = ruleset(topo, pod_a)
        v4 = topo.ns_exec(pod_a.ns, ["iptables-save"]).stdout
        jumps = v4.count("-A PREROUTING -j ISTIO_PRERT") + rules.count("jump istio-prert")
        check(jumps == 2, f"re-install keeps exactly one PREROUTING jump per table (got {jumps})")
        check("fwmark 0x111/0xfff lookup 100" in iprules and iprules.count("0x111") == 1,
              "ip rule fwmark 0x111/0xfff lookup 100 present once")
        check("local default dev lo" in table100, "table 100 has local default dev lo")

        probe_args = ["listen", "--netns", pod_a.path, "--seconds", "30"]
        if a.mode == "tproxy":
            probe_args.append("--transparent")
        probe = topo.spawn(None, [a.probe] + probe_args + ["15001", "15006", "15008"])
        topo.wait_line(probe, "ready")

        # (1) outbound from the pod lands on 15001 with the original dst.
        line = harness.tcp_exchange(pod_a.ns, pod_b.ip, 8080)
        check(field(line, "port") == "15001", f"outbound A->B:8080 lands on 15001 ({line.strip()})")
        check(field(line, "orig") == f"{pod_b.ip}:8080", "outbound original dst is B:8080")
        check(field(line, "conntrack") == "1", "outbound original dst came from SO_ORIGINAL_DST")

        # (2) inbound to the pod's IP:8080 lands on 15006 with the right dst.
        line = harness.tcp_exchange(pod_b.ns, pod_a.ip, 8080)
        check(field(line, "port") == "15006", f"inbound B->A:8080 lands on 15006 ({line.strip()})")
        check(field(line, "orig") == f"{pod_a.ip}:8080", "inbound original dst is A:8080")
        check((field(line, "peer") or "").startswith(pod_b.ip + ":"), "inbound peer is B")
        if a.mode == "tproxy":
            check(field(line, "orig") == f"{pod_a.ip}:8080", "tproxy: dst = local address")

        # (3) HBONE port 15008 is not redirected.
        line = harness.tcp_exchange(pod_b.ns, pod_a.ip, 15008)
        check(field(line, "port") == "15008", f"inbound to 15008 not redirected ({line.strip()})")

        # (4) loopback is not captured.
        line = harness.tcp_exchange(pod_a.ns, "127.0.0.1", 9090)
        check("tag=a-loop" in line, f"loopback not captured ({line.strip()})")

        # (5) source spoofing: transparent socket bound to a foreign client IP
        # connects to the app in the pod; the app sees the foreign IP and its
        # replies come back via connmark 0x111 / table 100.
        spoofed = "10.44.2.77"
        r = harness.run([a.probe, "spoof", "--netns", pod_a.path, "--source", spoofed,
                         "--connect", f"{pod_a.ip}:8080"], check=False)
        out = r.stdout.strip()
        check(r.returncode == 0 and "tag=a-app" in out,
              f"spoofed connect reaches A's app and gets a reply ({out} {r.stderr.strip()})")
        check((field(out, "peer") or "").startswith(spoofed + ":"),
              f"app sees the spoofed client IP {spoofed}")

        # (6) remove leaves nothing of ours behind.
        r = harness.run([a.ambitctl, "redirect", "remove", "--netns", pod_a.path,
                         "--backend", a.backend], check=False)
        check(r.returncode == 0, f"ambitctl redirect remove ({r.stderr.strip()})")
        rules, iprules, table100 = ruleset(topo, pod_a)
        check("ISTIO" not in rules and "istio-ambient" not in rules,
              "no ISTIO chains / istio-ambient tables left")
        check("0x111" not in iprules, "ip rule removed")
        check("local" not in table100, "table 100 route removed")
        line = harness.tcp_exchange(pod_a.ns, pod_b.ip, 8080)
        check("tag=b-app" in line, "after remove, A->B:8080 reaches B's app again")

        # Clear errors.
        r = harness.run([a.ambitctl, "redirect", "install", "--netns", "ambit-no-such-ns"],
                        check=False)
        check(r.returncode != 0 and "no such netns" in r.stderr, "missing netns: clear error")
        r = harness.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                         a.ambitctl, "redirect", "install", "--netns", pod_a.path], check=False)
        check(r.returncode != 0 and "must run as root" in r.stderr,
              f"not root: clear error ({r.stderr.strip()})")

    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
