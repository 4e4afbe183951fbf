"""`docker run --rm IMG echo hi` wall time per runtime (issue 6): runc, Debian runsc, kvmsandbox.

What a Docker user waits for: the whole `docker run` client call, from the
request to dockerd through create, start, the container's exit and removal.
One dockerd on loopback-only settings in a temp dir, started by tests/e2e's
own `Dockerd` (so the bench and the e2e tests start it the same way), with a
2 MB busybox image imported from a rootfs tar and the runtimes in that
dockerd's own daemon.json (never /etc/docker/daemon.json):

- runc:                Docker's built-in runtime;
- runsc:               Debian's, `--platform=ptrace --network=none` (it refuses
                       to start in the host network namespace otherwise);
- kvmsandbox kvm:      this checkout's CLI, `--platform=kvm`;
- kvmsandbox systrap:  the same, `--platform=systrap`.

Each runtime runs once untimed (the first run pays for the page cache and
the runtime's own start-up files), then --runs timed rounds, each round
running every runtime once, so load from other work on the machine falls on
all of them alike. Prints a markdown table: median wall seconds and the ratio
to runc. Needs root and the Debian packages docker.io and runsc.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from conftest import Dockerd, busybox_rootfs, kvmsandbox_wrapper, remove_daemon_dir  # noqa: E402

IMAGE = "bb:latest"
NEEDED = ("dockerd", "docker", "containerd", "runc", "runsc")
# Table label -> (Docker runtime name, its daemon.json entry; None for Docker's built-in runc).
Runtimes = dict[str, tuple[str, dict[str, object] | None]]


def runtimes(kvmsandbox: str) -> Runtimes:
    """The four runtimes, kvmsandbox's entries running the executable `kvmsandbox`."""
    return {
        "runc": ("runc", None),
        "runsc (Debian, ptrace)": (
            "runsc",
            {"path": shutil.which("runsc"), "runtimeArgs": ["--platform=ptrace", "--network=none"]},
        ),
        "kvmsandbox kvm": ("kvmsandbox-kvm", {"path": kvmsandbox, "runtimeArgs": ["--platform=kvm"]}),
        "kvmsandbox systrap": (
            "kvmsandbox-systrap",
            {"path": kvmsandbox, "runtimeArgs": ["--platform=systrap"]},
        ),
    }


def register(dockerd: Dockerd, table: Runtimes) -> None:
    """Write every non-built-in runtime into the dockerd's daemon.json and have it re-read the file."""
    entries = {name: entry for name, entry in table.values() if entry is not None}
    Path(dockerd.config_file).write_text(json.dumps({"runtimes": entries}, indent=2) + "\n")
    dockerd.reload()


def docker_run(dockerd: Dockerd, runtime: str) -> float:
    """Wall seconds of one `docker run --rm`; an error if the container did not print `hi`."""
    start = time.perf_counter()
    result = dockerd.docker("run", "--rm", f"--runtime={runtime}", IMAGE, "echo", "hi", check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0 or result.stdout != "hi\n":
        why = f"exit {result.returncode}: {result.stderr.strip()}"
        raise RuntimeError(f"docker run --runtime={runtime}: {why}")
    return elapsed


def measure(dockerd: Dockerd, table: Runtimes, runs: int) -> dict[str, list[float]]:
    """Label -> the wall seconds of each timed run, after one untimed warm-up run per runtime."""
    for name, _ in table.values():
        docker_run(dockerd, name)
    times: dict[str, list[float]] = {label: [] for label in table}
    for _ in range(runs):
        for label, (name, _) in table.items():
            times[label].append(docker_run(dockerd, name))
    return times


def markdown(times: dict[str, list[float]]) -> str:
    """The median per runtime, its range and its ratio to runc's median, as a markdown table."""
    base = statistics.median(times["runc"])
    lines = ["| runtime | median wall (s) | min–max (s) | vs runc |", "|---|---|---|---|"]
    for label, samples in times.items():
        median = statistics.median(samples)
        spread = f"{min(samples):.3f}–{max(samples):.3f}"
        lines.append(f"| {label} | {median:.3f} | {spread} | {median / base:.1f}x |")
    return "\n".join(lines)


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per runtime (default 5)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("docker_run.py: needs root (it starts its own dockerd)")
    missing = [b for b in NEEDED if shutil.which(b) is None]
    if missing:
        sys.exit(f"docker_run.py: missing {' '.join(missing)} (./install.sh installs them)")

    # Short, so that the daemons' socket paths under it stay within the 108-byte limit.
    directory = tempfile.mkdtemp(prefix="kvmsb-bench-", dir="/tmp")
    try:
        daemon_dir = os.path.join(directory, "d")
        os.makedirs(daemon_dir)
        dockerd = Dockerd(daemon_dir)
        try:
            dockerd.import_image(busybox_rootfs(directory), IMAGE)
            table = runtimes(kvmsandbox_wrapper(directory))
            register(dockerd, table)
            times = measure(dockerd, table, args.runs)
        finally:
            dockerd.stop()
    finally:
        remove_daemon_dir(directory)
    print(f"`docker run --rm {IMAGE} echo hi`, {args.runs} timed runs per runtime\n")
    print(markdown(times))


if __name__ == "__main__":
    main()
