"""Run the OCI runtime-tools validation suite against runtimes and count ok / not ok.

    python tests/e2e/oci_validation.py --tools DIR [--out DIR] RUNTIME...

DIR is opencontainers/runtime-tools at commit 260e151 built offline with
Debian's golang-go (facts/container-clients.md):

    GOFLAGS=-mod=vendor GOPROXY=off make tool runtimetest validation-executables

RUNTIME is a path or a name on PATH (`runc`, `runsc`, or a wrapper running
`kvmsandbox --platform=...`). Each of the 58 test programs runs with
RUNTIME=<runtime> from DIR (they find rootfs-amd64.tar.gz and runtimetest
there); their TAP goes to OUT/<runtime>/<test>.tap, and a table of ok / not
ok per test and in total is printed. A program that times out counts as
one not ok. Afterwards the bind mounts the rootfs-propagation tests leave
under /tmp/ocitest* are unmounted. Needs root; takes minutes per runtime.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys

TIMEOUT_S = 120


def run_suite(tools: str, runtime: str, out: str) -> dict[str, tuple[int, int]]:
    """{test name: (ok, not ok)} for one runtime; TAP files written under `out`."""
    os.makedirs(out, exist_ok=True)
    counts = {}
    for program in sorted(glob.glob(os.path.join(tools, "validation", "*", "*.t"))):
        name = os.path.basename(program)[:-2]
        env = dict(os.environ, RUNTIME=runtime)
        try:
            result = subprocess.run(
                [program], cwd=tools, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
            )
            tap = result.stdout + result.stderr
        except subprocess.TimeoutExpired as e:
            tap = f"{e.stdout or ''}\nnot ok - timed out after {TIMEOUT_S}s\n"
        with open(os.path.join(out, name + ".tap"), "w") as f:
            f.write(tap)
        ok = len(re.findall(r"^ok\b", tap, re.M))
        not_ok = len(re.findall(r"^not ok\b", tap, re.M))
        counts[name] = (ok, not_ok)
        print(f"{os.path.basename(runtime)} {name}: {ok} ok, {not_ok} not ok", file=sys.stderr, flush=True)
    _unmount_leftovers()
    return counts


def _unmount_leftovers() -> None:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p.startswith("/tmp/ocitest")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tools", required=True, help="built runtime-tools checkout")
    parser.add_argument("--out", default="oci-validation", help="directory for the TAP output")
    parser.add_argument("runtimes", nargs="+")
    args = parser.parse_args()
    results = {}
    for runtime in args.runtimes:
        path = shutil.which(runtime) or os.path.abspath(runtime)
        results[runtime] = run_suite(
            os.path.abspath(args.tools), path, os.path.join(args.out, os.path.basename(runtime))
        )
    names = sorted({name for counts in results.values() for name in counts})
    print("test".ljust(40) + "".join(os.path.basename(r)[:18].rjust(20) for r in args.runtimes))
    for name in names:
        cells = "".join(
            f"{results[r].get(name, (0, 0))[0]:>9} / {results[r].get(name, (0, 0))[1]:<8}"
            for r in args.runtimes
        )
        print(name.ljust(40) + cells)
    totals = "".join(
        f"{sum(c[0] for c in results[r].values()):>9} / {sum(c[1] for c in results[r].values()):<8}"
        for r in args.runtimes
    )
    print("TOTAL (ok / not ok)".ljust(40) + totals)


if __name__ == "__main__":
    main()
