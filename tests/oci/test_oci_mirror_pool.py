"""MirrorPool with real mirror processes, children of this test process as they are of the sandbox process."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterator

import pytest

from bootstrap.backend import ProcessInfo
from bootstrap.mirrors.pool import MIRROR_PATH, MirrorPool
from cli.oci_query import host_pids


@pytest.fixture
def pool() -> Iterator[MirrorPool]:
    if not os.access(MIRROR_PATH, os.X_OK):
        pytest.skip(f"mirror not built ({MIRROR_PATH}); run ./install.sh")
    pool = MirrorPool()
    yield pool
    pool.close()


def _process(pid: int, *argv: str, cmd: str = "") -> ProcessInfo:
    return ProcessInfo(pid=pid, ppid=0, uid=0, cmd=cmd or " ".join(argv), argv=argv)


def _poll(check: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 10
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _cmdline(pid: int) -> bytes:
    """Its cmdline once its exec is complete (posix_spawn returns a moment before the kernel has set it)."""
    _poll(lambda: _read(f"/proc/{pid}/cmdline"), f"mirror {pid} to finish its exec")
    return _read(f"/proc/{pid}/cmdline")


def _gone(pid: int) -> bool:
    """Exited and reaped: no longer our child (nor a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not os.path.exists(f"/proc/{pid}")
    return False


def test_a_mirror_carries_the_argv_and_name_and_holds_only_its_stdin(pool) -> None:
    argv = ("/usr/local/bin/a-rather-long-program", "two words", "")
    [p] = pool.stand_in([_process(7, *argv)])
    assert p.pid == 7 and p.argv == argv and p.mirror_pid > 0
    assert _cmdline(p.mirror_pid) == b"/usr/local/bin/a-rather-long-program\0two words\0\0"
    _poll(lambda: _read(f"/proc/{p.mirror_pid}/comm") == b"a-rather-long-p\n", "its name (15 bytes of comm)")
    _poll(lambda: os.listdir(f"/proc/{p.mirror_pid}/fd") == ["0"], "it to close all but stdin")
    assert _read(f"/proc/{p.mirror_pid}/environ") == b""
    assert os.getsid(p.mirror_pid) == p.mirror_pid  # its own session: no terminal signal reaches it


def test_mirrors_are_kept_while_processes_are_and_replaced_when_they_change(pool) -> None:
    processes = [_process(1, "sh"), _process(2, "sleep", "9")]
    first = {p.pid: p.mirror_pid for p in pool.stand_in(processes)}
    assert first == {p.pid: p.mirror_pid for p in pool.stand_in(processes)}
    # pid 1 exec'd, pid 2 exited: the old mirrors are ended and reaped, pid 1 gets a new one.
    [p] = pool.stand_in([_process(1, "sleep", "5")])
    assert p.mirror_pid not in first.values()
    assert _gone(first[1]) and _gone(first[2])
    assert _cmdline(p.mirror_pid) == b"sleep\x005\x00"


def test_a_mirror_killed_on_the_host_is_made_again(pool) -> None:
    [p] = pool.stand_in([_process(3, "top")])
    os.kill(p.mirror_pid, signal.SIGKILL)
    _poll(lambda: _read(f"/proc/{p.mirror_pid}/stat").split(b") ")[1][:1] == b"Z", "it to die")
    [again] = pool.stand_in([_process(3, "top")])
    assert again.mirror_pid != p.mirror_pid and _gone(p.mirror_pid)


def test_an_empty_argv_is_shown_as_the_command(pool) -> None:
    [p] = pool.stand_in([_process(4, cmd="/bin/daemon")])
    assert _cmdline(p.mirror_pid) == b"/bin/daemon\0"


def test_close_ends_every_mirror_and_no_more_are_made(pool) -> None:
    [p] = pool.stand_in([_process(1, "sh")])
    pool.close()
    assert _gone(p.mirror_pid)
    assert pool.stand_in([_process(1, "sh")])[0].mirror_pid == 0


def test_without_the_program_processes_have_no_mirror(caplog) -> None:
    pool = MirrorPool("/nonexistent/mirror")
    with caplog.at_level(logging.WARNING):
        assert pool.stand_in([_process(1, "sh")])[0].mirror_pid == 0
    assert "no mirror for 'sh'" in caplog.text


def test_host_pids_are_the_mirrors_and_the_sandbox_process_for_the_rest(pool) -> None:
    """What `ps --format json` prints; this process plays the sandbox process (same pid namespace)."""
    mirrored = pool.stand_in([_process(1, "sh"), _process(2, "sleep", "9")])
    unmirrored = _process(3, "cat")
    assert host_pids([*mirrored, unmirrored], os.getpid()) == [p.mirror_pid for p in mirrored] + [os.getpid()]
