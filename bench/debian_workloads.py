"""Debian programs side by side (issue 5): how much the Sentry costs a real distribution's binaries.

Prints a markdown table of median wall times over --runs runs, each with its ratio to native, of:

- python3 start-up: `python3 -c pass` (dynamic loader, ~60 files opened, interpreter init)
- tar of /usr/share: `sh -c 'tar c /usr/share | wc -c'` (thousands of opens, stats and reads, one pipe)

in the cached Debian bookworm root of tests/debian_root.py, run four ways: native (`chroot ROOT`, the same
binaries on the host kernel), Debian's runsc (`runsc --platform=ptrace --network=none do --root=ROOT`,
always under `timeout 120`, never the KVM platform) and `kvmsandbox do --root-dir=ROOT` on each usable
platform. The tar byte count must agree with native's, so a run that read less cannot look fast.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys

from sentry_workloads import ROOT, timed

sys.path.insert(0, str(ROOT / "tests"))
import debian_root  # noqa: E402  (tests/debian_root.py: builds or finds the cached root)

RUNSC_TIMEOUT = 120
WORKLOADS = (
    ("python3 start-up (`python3 -c pass`)", ["/usr/bin/python3", "-c", "pass"]),
    ("`tar c /usr/share \\| wc -c`", ["/bin/sh", "-c", "tar c /usr/share 2>/dev/null | wc -c"]),
)


def runners(root: str) -> dict[str, list[str]]:
    """Column title -> command prefix that runs argv in root."""
    from kvmsandbox import platform

    found = {"native (chroot)": ["chroot", root]}
    if shutil.which("runsc"):
        runsc = ["timeout", str(RUNSC_TIMEOUT), "runsc", "--platform=ptrace", "--network=none", "do"]
        found["runsc ptrace"] = [*runsc, "--quiet", f"--root={root}", "--cwd=/"]
    for info in platform.probe_all():
        if info.usable:
            do = [sys.executable, "-m", "cli.main", "do", f"--platform={info.name}", f"--root-dir={root}"]
            found[f"kvmsandbox {info.name}"] = [*do, "--"]
    return found


def measure(prefix: list[str], argv: list[str], runs: int) -> tuple[float, str] | str:
    """(median seconds, stdout of the last run), or why it could not be measured."""
    samples = []
    try:
        for _ in range(runs):
            elapsed, out = timed(prefix, argv)
            samples.append(elapsed)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        return "failed: " + " ".join(str(e).split()).replace("|", "\\|")[:120]  # one table cell
    return statistics.median(samples), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    columns = runners(str(debian_root.build()))
    print("| workload | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for title, argv in WORKLOADS:
        results = [measure(prefix, argv, args.runs) for prefix in columns.values()]
        native = results[0]
        cells = []
        for result in results:
            if isinstance(result, str):
                cells.append(result)
            elif isinstance(native, str):
                cells.append(f"{result[0]:.3f} s")
            elif result[1] != native[1]:
                cells.append(f"wrong output {result[1][-40:]!r}")
            else:
                cells.append(f"{result[0]:.3f} s ({result[0] / native[0]:.1f}x)")
        print(f"| {title} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
