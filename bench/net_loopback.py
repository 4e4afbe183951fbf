"""TCP over loopback inside a sandbox (issue 6): bulk throughput and connection rate, timed in the app.

Debian's python3 (the cached root of tests/debian_root.py) moves 32 MiB through one 127.0.0.1
connection between two threads (64 KiB sends, recv_into) and opens, accepts and closes 300
connections; it prints MB/s and connections/s, timed inside the app so start-up does not count. Runs:
native (`chroot ROOT`), Debian's runsc (`runsc --platform=ptrace --network=none do`, its netstack's
loopback, under `timeout 120`, never the KVM platform) and kvmsandbox on each usable platform with
`--network=none` (the in-Sentry stack) and `--network=host` (host sockets). Median of --runs runs.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys

from sentry_workloads import ROOT

sys.path.insert(0, str(ROOT / "tests"))
import debian_root  # noqa: E402  (tests/debian_root.py: builds or finds the cached root)

WORKLOAD = """
import socket, threading, time
TOTAL, CHUNK, CONNECTIONS = 32 << 20, 64 << 10, 300
srv = socket.create_server(("127.0.0.1", 0))
addr = srv.getsockname()

def sink():
    conn, _ = srv.accept()
    buf = bytearray(CHUNK)
    got = 0
    while n := conn.recv_into(buf):
        got += n
    conn.close()
    assert got == TOTAL, got

t = threading.Thread(target=sink)
t.start()
c = socket.create_connection(addr)
data = b"x" * CHUNK
start = time.perf_counter()
for _ in range(TOTAL // CHUNK):
    c.sendall(data)
c.close()
t.join()
bulk = time.perf_counter() - start

def acceptor():
    for _ in range(CONNECTIONS):
        srv.accept()[0].close()

t = threading.Thread(target=acceptor)
t.start()
start = time.perf_counter()
for _ in range(CONNECTIONS):
    socket.create_connection(addr).close()
t.join()
rate = time.perf_counter() - start
print(f"{TOTAL / bulk / 1e6:.1f} {CONNECTIONS / rate:.0f}")
"""


def runners(root: str) -> dict[str, list[str]]:
    from kvmsandbox import platform

    found = {"native (chroot)": ["chroot", root]}
    if shutil.which("runsc"):
        runsc = ["timeout", "120", "runsc", "--platform=ptrace", "--network=none", "do"]
        found["runsc ptrace"] = [*runsc, "--quiet", f"--root={root}", "--cwd=/"]
    for info in platform.probe_all():
        if not info.usable:
            continue
        for network in ("none", "host"):
            cli = [sys.executable, "-m", "cli.main", f"--network={network}", "do", f"--platform={info.name}"]
            found[f"kvmsandbox {info.name} {network}"] = [*cli, f"--root-dir={root}", "--"]
    return found


def measure(prefix: list[str], runs: int) -> str:
    bulk, rate = [], []
    for _ in range(runs):
        argv = [*prefix, "/usr/bin/python3", "-c", WORKLOAD]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT)
        if proc.returncode != 0:
            return "failed: " + " ".join(proc.stderr.split())[-100:].replace("|", "\\|")
        mbs, cps = proc.stdout.split()
        bulk.append(float(mbs))
        rate.append(float(cps))
    return f"{statistics.median(bulk):.1f} MB/s, {statistics.median(rate):.0f} conn/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print("| run | 32 MiB over 127.0.0.1, connections/s |")
    print("|---|---|")
    for title, prefix in runners(str(debian_root.build())).items():
        print(f"| {title} | {measure(prefix, args.runs)} |", flush=True)


if __name__ == "__main__":
    main()
