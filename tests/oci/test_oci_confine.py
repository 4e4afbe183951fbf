"""The sandbox process's privilege drop, tried in a forked child."""

from __future__ import annotations

import os

import pytest

from bootstrap import confine


def _status() -> dict[str, str]:
    with open("/proc/self/status") as f:
        return {k: v.strip() for k, v in (line.split(":", 1) for line in f.read().splitlines())}


@pytest.mark.parametrize(("network", "eff"), [("none", "0000000000000000"), ("host", "0000000000000400")])
def test_drop_privileges(network: str, eff: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            confine.drop_privileges(confine.capabilities_for(network))
            s = _status()
            os.write(w, f"{s['CapEff']} {s['CapPrm']} {s['CapBnd']} {s['NoNewPrivs']}".encode())
        finally:
            os._exit(0)
    os.close(w)
    result = os.read(r, 200).decode().split()
    os.close(r)
    os.waitpid(pid, 0)
    assert result == [eff, eff, eff, "1"]
