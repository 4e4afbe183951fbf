"""A Debian bookworm root directory (minbase + python3) for tests of real Debian programs.

Built once with debootstrap from the mirror apt on this machine is configured
with (no other host is assumed), into a fixed cache directory that later runs
and other test sessions reuse: a build takes about a minute, a cached root
costs nothing. The build goes to a temporary sibling and is renamed into place
when complete, so an interrupted build is never mistaken for a root.

    python tests/debian_root.py        builds the cache (what CI may run ahead of pytest)

Tests take the `debian_root` fixture; it skips them, saying why, when the root
cannot be had (no debootstrap, no mirror, not root).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

SUITE = "bookworm"
# python3 (not -minimal): the tests use json and sqlite3 from its standard library.
INCLUDE = ("python3",)
# The package set is part of the cache's name, so changing it builds a fresh root.
CACHE = Path(
    os.environ.get("KVMSANDBOX_DEBIAN_ROOT", f"/var/cache/kvmsandbox-test/debian-{SUITE}-{'-'.join(INCLUDE)}")
)
SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
BUILD_TIMEOUT = 300


class Unavailable(Exception):
    """Why no root can be built here."""


def _source_texts() -> list[str]:
    texts = []
    for src in SOURCES:
        files = sorted(src.glob("*.list")) + sorted(src.glob("*.sources")) if src.is_dir() else [src]
        texts += [f.read_text(errors="replace") for f in files if f.is_file()]
    return texts


def apt_mirror() -> str:
    """The Debian archive URL of apt's configured sources (one-line or deb822 format)."""
    for text in _source_texts():
        for line in text.splitlines():
            one_line = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if one_line and not one_line.group(2).endswith("-security"):
                return one_line.group(1)
        for stanza in re.split(r"\n\s*\n", text):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites and SUITE in suites.group(1).split():
                return uris.group(1)
    raise Unavailable("no Debian mirror in apt's sources (/etc/apt/sources.list*)")


def build(dest: Path = CACHE) -> Path:
    """dest, built by debootstrap unless it already holds a root."""
    if (dest / "usr" / "bin" / "python3").exists():
        return dest
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not os.path.exists(debootstrap):
        raise Unavailable("debootstrap is not installed (./install.sh installs it)")
    if os.geteuid() != 0:
        raise Unavailable("debootstrap needs root")
    mirror = apt_mirror()
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=dest.name + ".building-", dir=dest.parent))
    try:
        cmd = [debootstrap, "--variant=minbase", "--include=" + ",".join(INCLUDE), SUITE, str(work), mirror]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
        if done.returncode != 0:
            tail = done.stderr[-2000:] or done.stdout[-2000:]
            raise Unavailable(f"debootstrap failed ({done.returncode}): {tail}")
        # apt's caches are dead weight in a test root.
        for deb in (work / "var" / "cache" / "apt" / "archives").glob("*.deb"):
            deb.unlink()
        os.rename(work, dest)
    except (OSError, subprocess.TimeoutExpired) as e:
        if (dest / "usr" / "bin" / "python3").exists():
            return dest  # another session finished first
        raise Unavailable(f"debootstrap did not finish: {e}") from e
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


@pytest.fixture(scope="session")
def debian_root() -> str:
    """The cached Debian root's path; the test is skipped if it cannot be built."""
    try:
        return str(build())
    except Unavailable as e:
        pytest.skip(f"no Debian root: {e}")


if __name__ == "__main__":
    try:
        print(build())
    except Unavailable as e:
        sys.exit(f"debian_root: {e}")
