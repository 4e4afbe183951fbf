"""AF_UNIX sockets from static C programs, on every usable platform."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("name", ["unix_pair", "unix_server", "unix_records"])
def test_unix_program(sandbox_run, cprogram, name):
    r = sandbox_run([cprogram(name)])
    assert (r.code, r.out) == (0, f"{name} ok\n"), r.out + r.err
    assert "Sentry bug" not in r.log and "raised" not in r.log, r.log[-4000:]
