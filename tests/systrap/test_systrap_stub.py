"""The stub process: how it starts, what it holds, and how its death reaches the Sentry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from systrap_harness import CODE_VA, DATA_VA, STACK_TOP

from kvmsandbox.platform import PAGE_SIZE, PlatformError
from kvmsandbox.systrap import layout

REPO = Path(__file__).resolve().parents[2]


def gone_or_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_stub_killed_while_running_is_a_platform_error(make_app):
    """SIGKILL from outside while app code spins: switch raises PlatformError quickly, no hang."""
    app = make_app()
    pid = app.asp.stub.pid
    threading.Timer(0.1, os.kill, args=(pid, signal.SIGKILL)).start()
    start = time.monotonic()
    with pytest.raises(PlatformError, match="died"):
        app.run("spin", timeout=5)
    assert time.monotonic() - start < 1.0


def test_stub_killed_while_idle_fails_every_operation(make_app):
    app = make_app()
    assert app.run("syscall_loop", rax=39) is not None
    os.kill(app.asp.stub.pid, signal.SIGKILL)
    deadline = time.monotonic() + 2
    while not gone_or_zombie(app.asp.stub.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(PlatformError):
        app.run("syscall_loop", rax=39, timeout=5)
    with pytest.raises(PlatformError):
        app.asp.map(0x700000, PAGE_SIZE, app.data_off, 3)
    with pytest.raises(PlatformError):
        app.asp.unmap(DATA_VA, PAGE_SIZE)


def test_stub_dies_with_the_sentry():
    """PR_SET_PDEATHSIG: a Sentry that dies (SIGKILL, no cleanup) takes its stubs with it."""
    script = (
        "import time, kvmsandbox.systrap\n"
        "from kvmsandbox import platform as P\n"
        "p = P.create('systrap', memory_size=16 << 20)\n"
        "a = p.new_address_space()\n"
        "print(a.stub.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    sentry = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        stub_pid = int(sentry.stdout.readline())
        assert not gone_or_zombie(stub_pid)
    finally:
        sentry.kill()
        sentry.wait(10)
    deadline = time.monotonic() + 5
    while not gone_or_zombie(stub_pid):
        assert time.monotonic() < deadline, f"stub {stub_pid} outlived its Sentry"
        time.sleep(0.02)


def test_stub_starts_clean(make_app):
    """No environment, only its three fds, and nothing below max_user_address but the app's mappings."""
    app = make_app()
    pid = app.asp.stub.pid
    assert Path(f"/proc/{pid}/environ").read_bytes() == b""
    fds = sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))
    assert fds == [layout.STUB_MEMFD, layout.STUB_SHAREDFD, layout.STUB_ACKFD]
    app_ranges = {
        (CODE_VA, CODE_VA + PAGE_SIZE),
        (DATA_VA, DATA_VA + PAGE_SIZE),
        (STACK_TOP - PAGE_SIZE, STACK_TOP),
    }
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        span, perms = line.split()[:2]
        start, end = (int(x, 16) for x in span.split("-"))
        assert not ("w" in perms and "x" in perms), f"writable and executable: {line}"
        if start < layout.STUB_BASE:
            assert (start, end) in app_ranges, f"stray mapping in the app range: {line}"
        if start == layout.STUB_BASE:
            assert perms.startswith("r-x"), line
        if layout.SHARED_BASE <= start < layout.SHARED_BASE + layout.CTL_RO_SIZE:
            assert perms.startswith("r--"), f"control page writable in the stub: {line}"


def test_stub_runs_in_its_own_process_group(make_app):
    """Terminal signals aimed at the Sentry's group (Ctrl-C) do not reach the stubs."""
    app = make_app()
    assert os.getpgid(app.asp.stub.pid) != os.getpgid(0)


def test_release_reaps_the_stub(platform):
    asp = platform.new_address_space()
    pid = asp.stub.pid
    asp.release()
    assert gone_or_zombie(pid)
    with pytest.raises(PlatformError):
        asp.map(DATA_VA, PAGE_SIZE, 0, 3)


def test_stub_refuses_a_parent_that_is_not_the_sentry():
    """Started by anyone but the pid on its command line, the stub exits before mapping anything."""
    from kvmsandbox.systrap.stubproc import STUB_PATH

    done = subprocess.run([str(STUB_PATH), "1"], env={}, timeout=10)
    assert done.returncode == layout.LAYOUT["EXIT_PARENT"]
    assert "Sentry" in layout.EXIT_REASONS[done.returncode]
