"""Helpers for Sentry behaviour tests: build static C programs, run commands in a sandbox.

Programs are built into tests/sentry/build/, unless the checkout itself is
under /tmp (a CI clone may be): the sandbox's /tmp is its own tmpfs, so then
they go to /var/tmp. They run through `Sandbox` in-process, on every usable
platform, with stdout/stderr captured in host temp files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def sandbox_visible_build_dir(test_dir: Path) -> Path:
    """Where to put programs the sandbox must run: test_dir/build, or under /var/tmp when the
    checkout itself is under /tmp (the sandbox's /tmp is its own tmpfs)."""
    if test_dir.is_relative_to("/tmp"):
        tag = hashlib.sha1(str(test_dir).encode()).hexdigest()[:12]
        return Path("/var/tmp") / f"kvmsandbox-tests-{tag}"
    return test_dir / "build"


def build_c_program(
    src: Path, out: Path, cflags: Sequence[str] = (), libs: Sequence[str] = (), deps: Sequence[Path] = ()
) -> str:
    """`gcc -static -O2` src into out unless out is newer than src and `deps` (headers); return its path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    newest = max(path.stat().st_mtime for path in (src, *deps))
    if not out.exists() or out.stat().st_mtime < newest:
        subprocess.run(["gcc", "-static", "-O2", *cflags, "-o", str(out), str(src), *libs], check=True)
    return str(out)


BUILD = sandbox_visible_build_dir(HERE)
PROGRAMS = HERE / "programs"
PLATFORMS = ("kvm", "systrap")


def _usable(name: str) -> bool:
    from kvmsandbox import platform

    try:
        return any(info.name == name and info.usable for info in platform.probe_all())
    except Exception:
        return False


@pytest.fixture(params=PLATFORMS)
def platform_name(request: pytest.FixtureRequest) -> str:
    if not _usable(request.param):
        pytest.skip(f"platform {request.param} is not usable here")
    return request.param


@pytest.fixture(scope="session")
def program() -> callable:
    """program("threads") -> absolute path of the static binary built from programs/threads.c."""

    def build(name: str, *flags: str) -> str:
        return build_c_program(PROGRAMS / f"{name}.c", BUILD / name, ["-pthread"], [*flags, "-lm"])

    return build


@dataclasses.dataclass
class Result:
    code: int
    out: str
    err: str
    log: str


@pytest.fixture
def sandbox_run(platform_name: str, caplog: pytest.LogCaptureFixture) -> callable:
    """sandbox_run(argv, stdin=b"", timeout=60) -> Result, on the parametrized platform."""
    from sentry.kernel.creds import Credentials
    from sentry.sandbox import Sandbox, exit_code

    def run(
        argv: list[str],
        stdin: bytes = b"",
        timeout: float = 60.0,
        env: list[str] | None = None,
        creds: Credentials | None = None,
    ) -> Result:
        caplog.set_level(logging.WARNING)
        with (
            tempfile.TemporaryFile() as fin,
            tempfile.TemporaryFile() as fout,
            tempfile.TemporaryFile() as ferr,
        ):
            fin.write(stdin)
            fin.seek(0)
            sandbox = Sandbox(platform_name, "/", stdio=(fin.fileno(), fout.fileno(), ferr.fileno()))
            try:
                sandbox.start(argv, env or ["PATH=/bin:/usr/bin", "HOME=/", "LANG=C"], creds=creds)
                status = sandbox.wait(timeout)
            finally:
                sandbox.close()
            assert status is not None, f"{argv} did not finish in {timeout}s"
            fout.seek(0)
            ferr.seek(0)
            return Result(exit_code(status), fout.read().decode(errors="replace"),
                          ferr.read().decode(errors="replace"), caplog.text)  # fmt: skip

    return run


@pytest.fixture(scope="session")
def data_dir() -> str:
    """A directory of known files, visible inside the sandbox at the same path."""
    root = BUILD / "data"
    if root.exists():
        shutil.rmtree(root)
    (root / "sub").mkdir(parents=True)
    (root / "fruits.txt").write_text("banana 3\napple 10\ncherry 7\napple 2\n")
    (root / "sub" / "notes.txt").write_text("one\ntwo\nthree\n")
    (root / "sub" / "more.log").write_text("x:y:z\n1:2:3\n")
    return str(root)
