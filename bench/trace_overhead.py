"""What a trace session costs a syscall-heavy app (issue 7).

Runs bench/c/getppid_loop.c (raw getppid calls, per-call median from the
program itself) under `kvmsandbox do` three ways:

- no session:   no --pod-init-config (the dispatcher's table checks only);
- null sink:    a session with every `syscall/*` point, enter and exit, on the null sink;
- remote sink:  the same points sent to a monitor in this script that drains its socket.

Prints the median ns/call over --runs runs for each, the ratio to the no-session
run, and how many messages the monitor received (with the sink's drop count).
The sandbox is pinned to one CPU (--cpu) and the monitor to the others:
unpinned, systrap's per-call time flips between ~14 and ~60 us from run to run
depending on whether the app and its Sentry thread share a core.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sentry.seccheck.points import POINTS  # noqa: E402

LOOP_SOURCE = ROOT / "bench" / "c" / "getppid_loop.c"
LOOP_BINARY = ROOT / "bench" / "build" / "getppid_loop"
TIMEOUT = 300


def loop_binary() -> str:
    """The static loop program, rebuilt when its source is newer."""
    if not LOOP_BINARY.exists() or LOOP_BINARY.stat().st_mtime < LOOP_SOURCE.stat().st_mtime:
        LOOP_BINARY.parent.mkdir(exist_ok=True)
        subprocess.run(["gcc", "-static", "-O2", "-o", str(LOOP_BINARY), str(LOOP_SOURCE)], check=True)
    return str(LOOP_BINARY)


def session_file(directory: str, sink: dict) -> str:
    """A pod-init config enabling every syscall point (schematized and raw) on `sink`."""
    names = sorted(name for name in POINTS if name.startswith("syscall/"))
    config = {"trace_session": {"name": "Default", "points": [{"name": n} for n in names], "sinks": [sink]}}
    path = f"{directory}/{sink['name']}.json"
    with open(path, "w") as f:
        json.dump(config, f)
    return path


class DrainingMonitor:
    """A remote-sink monitor that answers the handshake and reads as fast as it can."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.messages = 0
        self.dropped = 0
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._listener.bind(path)
        self._listener.listen(4)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(64)
            conn.send(b"\x08\x01")  # Handshake{version: 1}
            while data := conn.recv(1 << 16):
                self.messages += 1
                self.dropped = max(self.dropped, struct.unpack_from("<I", data, 4)[0])

    def close(self) -> None:
        self._listener.close()


def per_call_ns(argv: list[str]) -> float:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=True).stdout
    match = re.search(r"median_ns=([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"no timing in {out!r}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--platform", default=None, help="kvm or systrap (default: kvmsandbox's choice)")
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cpu", type=int, default=max(os.sched_getaffinity(0)), help="CPU for the sandbox")
    args = parser.parse_args()
    others = os.sched_getaffinity(0) - {args.cpu}
    if others:
        os.sched_setaffinity(0, others)  # the monitor; the sandbox gets --cpu to itself
    loop = [loop_binary(), "getppid", str(args.calls)]
    platform = [f"--platform={args.platform}"] if args.platform else []
    with tempfile.TemporaryDirectory(prefix="trace-bench", dir="/tmp") as tmp:
        monitor = DrainingMonitor(f"{tmp}/mon.sock")
        remote = {"name": "remote", "config": {"endpoint": monitor.path}}
        sessions = {
            "no session": [],
            "null sink": [f"--pod-init-config={session_file(tmp, {'name': 'null'})}"],
            "remote sink": [f"--pod-init-config={session_file(tmp, remote)}"],
        }
        results = {}
        for label, flags in sessions.items():
            argv = ["taskset", "-c", str(args.cpu), sys.executable, "-m", "cli.main", *platform, *flags]
            argv += ["do", "--", *loop]
            results[label] = statistics.median(per_call_ns(argv) for _ in range(args.runs))
        monitor.close()
    base = results["no session"]
    where = f"platform {args.platform or 'default'}, sandbox on CPU {args.cpu}"
    print(f"getppid x{args.calls}, median of {args.runs} runs, {where}")
    print("| session | ns/call | ratio |")
    print("|---|---|---|")
    for label, ns in results.items():
        print(f"| {label} | {ns:.0f} | {ns / base:.2f} |")
    print(f"remote monitor: {monitor.messages} messages received, sink dropped {monitor.dropped}")


if __name__ == "__main__":
    main()
