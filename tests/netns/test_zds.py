#!/usr/bin/python3
"""ZDS with real pod netns (root): a fake node agent hands netns fds made by
`ip netns add` to a ZdsClient (zds_netns_probe); the handler's NetnsHandle id
must equal (st_dev, st_ino) of /var/run/netns/<name>, and re-adding the pod in
another netns must replace it (removed, then added with the new id).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--probe", required=True)
    args = ap.parse_args()
    harness.require_root()
    names = [f"ambit-t{os.getpid()}-zds-a", f"ambit-t{os.getpid()}-zds-b"]
    try:
        for n in names:
            harness.run(["ip", "netns", "add", n])
        ids = []
        for n in names:
            st = os.stat(f"/var/run/netns/{n}")
            ids.append((st.st_dev, st.st_ino))
        assert ids[0] != ids[1], f"two netns with one identity: {ids}"
        r = harness.run([args.probe, names[0], names[1]], check=False, timeout=30)
        if r.returncode != 0:
            raise AssertionError(f"probe failed ({r.returncode}): {r.stderr[-2000:]}")
        events = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
        kinds = [e["event"] for e in events]
        assert kinds == ["added", "removed", "added", "ready"], f"events: {events}"
        got_a = (events[0]["dev"], events[0]["ino"])
        got_b = (events[2]["dev"], events[2]["ino"])
        assert got_a == ids[0], f"netns A: handler got {got_a}, stat says {ids[0]}"
        assert events[1]["uid"] == "uid-1", events[1]
        assert got_b == ids[1], f"netns B: handler got {got_b}, stat says {ids[1]}"
        assert events[3]["ready"] is True, events[3]
        print(f"PASS zds netns handoff: {names[0]}={got_a} then {names[1]}={got_b}")
    finally:
        for n in names:
            harness.run(["ip", "netns", "del", n], check=False)


if __name__ == "__main__":
    main()
