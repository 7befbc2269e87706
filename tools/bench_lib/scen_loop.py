"""loop: runs build/tools/bench_loop/ambit-bench-loop (io_uring vs epoll vs blocking) if built."""
import os


def run(env, build, exe=None):
    exe = exe or os.path.join(build, "tools", "bench_loop", "ambit-bench-loop")
    if not os.access(exe, os.X_OK):
        return (f"## loop\n\nskipped: {exe} is not built "
                "(`ninja -C build tools/bench_loop/ambit-bench-loop`).\n")
    # Loopback only, inside the bench's own namespace so it never touches the host's interfaces.
    r = env.exec_in(env.pods["cp"].ns, [exe], timeout=120)
    body = r.stdout.strip() or r.stderr.strip()
    status = "" if r.returncode == 0 else f"\n\nexit status {r.returncode}: {r.stderr[-500:]}"
    return "## loop\n\n`ambit-bench-loop` (Loop on io_uring vs epoll vs blocking sockets, loopback):\n\n" + body + status + "\n"

