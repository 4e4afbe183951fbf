"""Fixtures shared by tests/net and tests/events: static C programs from ./programs, run on every platform.

Reuses tests/sentry's platform parametrization and in-process sandbox runner
(loaded from its conftest under another module name), the Debian root of
tests/debian_root.py, and adds `cprogram` (gcc -static from the calling
test directory's programs/) and `debian_do` (kvmsandbox do --root-dir).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_sentry = _load("kvmsb_sentry_conftest", TESTS / "sentry" / "conftest.py")
_debian = _load("kvmsb_debian_root", TESTS / "debian_root.py")
platform_name = _sentry.platform_name
sandbox_run = _sentry.sandbox_run
debian_root = _debian.debian_root


def build_program(directory: Path, name: str) -> str:
    """The build dir's `name` from directory/programs/name.c (rebuilt when the source or check.h is newer)."""
    src = directory / "programs" / f"{name}.c"
    out = _sentry.sandbox_visible_build_dir(directory) / name
    return _sentry.build_c_program(src, out, ["-Wall", "-D_GNU_SOURCE"], deps=[src.parent / "check.h"])


@pytest.fixture(scope="module")
def cprogram(request: pytest.FixtureRequest):
    """cprogram("name") -> path of the static binary built from the test module's programs/name.c."""
    directory = Path(request.fspath).resolve().parent
    return lambda name: build_program(directory, name)


@pytest.fixture
def debian_do(platform_name: str, debian_root: str):
    """debian_do(argv, input=b"", timeout=120) -> CompletedProcess of `kvmsandbox do` in the Debian root."""

    def run(argv: list[str], input: bytes = b"", timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "cli.main", "do", f"--platform={platform_name}"]
        cmd += [f"--root-dir={debian_root}", "--", *argv]
        env = {"PYTHONPATH": str(REPO), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        env["HOME"] = os.environ.get("HOME", "/root")
        return subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, cwd=REPO, env=env)

    return run
