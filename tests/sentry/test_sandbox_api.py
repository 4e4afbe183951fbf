"""The Sandbox API the OCI runtime uses beyond pid 1: spawn (exec), wait_pid, pause/resume."""

from __future__ import annotations

import os
import tempfile
import time

import pytest

from sentry.errors import Errno
from sentry.sandbox import Sandbox

BUSYBOX = "/bin/busybox"


@pytest.fixture
def sandbox(platform_name):
    with tempfile.TemporaryFile() as out:
        sb = Sandbox(platform_name, "/", stdio=(0, out.fileno(), out.fileno()))
        sb.out = out
        try:
            yield sb
        finally:
            sb.close()


def output(sb: Sandbox) -> bytes:
    return os.pread(sb.out.fileno(), 1 << 20, 0)


def test_spawn_and_wait_pid(sandbox):
    sandbox.start([BUSYBOX, "sleep", "5"])
    pid = sandbox.spawn([BUSYBOX, "sh", "-c", "echo spawned $PPID; kill -0 1 && exit 3"], ["PATH=/bin"])
    assert pid != 1
    assert sandbox.wait_pid(pid, 30) == 3 << 8
    assert output(sandbox) == b"spawned 0\n"
    with pytest.raises(Errno):
        sandbox.wait_pid(pid)  # collected already


def test_spawn_of_a_missing_program_fails(sandbox):
    sandbox.start([BUSYBOX, "sleep", "5"])
    with pytest.raises(Errno):
        sandbox.spawn(["/no/such/program"])


def test_pause_stops_app_code_until_resume(sandbox):
    sandbox.start([BUSYBOX, "sh", "-c", "while :; do echo x; busybox usleep 20000; done"])
    time.sleep(0.3)
    sandbox.pause()
    time.sleep(0.1)
    frozen = len(output(sandbox))
    time.sleep(0.4)
    assert len(output(sandbox)) <= frozen + 2  # at most a line already in flight
    sandbox.resume()
    time.sleep(0.4)
    assert len(output(sandbox)) > frozen + 4


def _children() -> set[int]:
    """This process's live (not yet reaped) children, from every thread's /proc children list."""
    found: set[int] = set()
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/children") as f:
            found.update(int(pid) for pid in f.read().split())
    return found


def test_a_platform_failure_stops_the_gofer_already_started():
    """The gofer starts before the platform (its start-up overlaps); a platform error must not leak it."""
    from kvmsandbox.platform import PlatformError

    before = _children()
    with pytest.raises(PlatformError):
        Sandbox("no-such-platform", "/")
    assert _children() == before
