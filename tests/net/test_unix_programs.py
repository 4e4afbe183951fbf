"""AF_UNIX sockets from static C programs, on every usable platform and on Linux itself (the reference)."""

from __future__ import annotations

import os
import subprocess

import pytest

PROGRAMS = ["unix_pair", "unix_server", "unix_records", "unix_edges", "unix_bulk"]


@pytest.mark.parametrize("name", PROGRAMS)
def test_unix_program(sandbox_run, cprogram, name):
    r = sandbox_run([cprogram(name)])
    assert (r.code, r.out) == (0, f"{name} ok\n"), r.out + r.err
    assert "Sentry bug" not in r.log and "raised" not in r.log, r.log[-4000:]


@pytest.mark.parametrize("name", PROGRAMS)
def test_unix_program_expectations_hold_on_linux(cprogram, name):
    env = {**os.environ, "KVMSANDBOX_TEST_NATIVE": "1"}
    r = subprocess.run([cprogram(name)], capture_output=True, text=True, timeout=60, env=env)
    assert (r.returncode, r.stdout) == (0, f"{name} ok\n"), r.stdout + r.stderr
