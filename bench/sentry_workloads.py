"""Sentry workloads side by side with native Linux and Debian's runsc (issue 4).

Prints a markdown table of median wall times (seconds) over --runs runs of:

- startup:     `do /bin/busybox true` (whole command: Python start, boot, exec, exit)
- fork+exec:   busybox sh running `/bin/busybox true` 100 times (fork + exec + wait each)
- syscalls:    bench/c/getppid_loop.c doing 20000 raw getppid calls (per-call ns from the program)

for `kvmsandbox do` on each usable platform, the same command natively, and
`runsc --platform=ptrace --network=none do` (always under `timeout`). A
failing or timed-out column shows the reason instead of a number.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "bench" / "build"
BUSYBOX = "/bin/busybox"
LOOP = f"i=0; while [ $i -lt 100 ]; do {BUSYBOX} true; i=$((i+1)); done"
TIMEOUT = 300


def _loop_binary() -> str:
    BUILD.mkdir(exist_ok=True)
    out = BUILD / "getppid_loop"
    subprocess.run(
        ["gcc", "-static", "-O2", "-o", str(out), str(ROOT / "bench" / "c" / "getppid_loop.c")], check=True
    )
    return str(out)


def runners() -> dict[str, list[str]]:
    from kvmsandbox import platform

    found = {}
    for info in platform.probe_all():
        if info.usable:
            found[f"kvmsandbox {info.name}"] = [
                sys.executable,
                "-m",
                "cli.main",
                "do",
                f"--platform={info.name}",
                "--",
            ]
    found["native"] = []
    if shutil.which("runsc"):
        found["runsc ptrace"] = [
            "timeout",
            str(TIMEOUT),
            "runsc",
            "--platform=ptrace",
            "--network=none",
            "do",
        ]
    return found


def timed(prefix: list[str], argv: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=TIMEOUT + 30, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"rc={proc.returncode} {proc.stderr.strip()[-200:]}")
    return elapsed, proc.stdout


def measure(prefix: list[str], argv: list[str], runs: int, parse: bool = False) -> str:
    samples = []
    try:
        for _ in range(runs):
            elapsed, out = timed(prefix, argv)
            if parse:
                match = re.search(r"median_ns=([\d.]+)", out)
                if not match:
                    return f"no result in {out[-100:]!r}"
                samples.append(float(match.group(1)))
            else:
                samples.append(elapsed)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        return f"failed: {e}"[:120]
    value = statistics.median(samples)
    return f"{value:.0f} ns/call" if parse else f"{value:.3f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    loop = _loop_binary()
    workloads = [
        ("startup (`do busybox true`)", [BUSYBOX, "true"], False),
        ("fork+exec+wait x100", [BUSYBOX, "sh", "-c", LOOP], False),
        ("syscall loop (getppid x20000)", [loop, "getppid", "20000"], True),
    ]
    columns = runners()
    print("| workload | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for title, argv, parse in workloads:
        cells = [measure(prefix, argv, args.runs, parse) for prefix in columns.values()]
        print(f"| {title} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
