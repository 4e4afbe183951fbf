"""HostFd: close() racing a syscall in another thread never frees the fd number under it."""

from __future__ import annotations

import errno
import os

import pytest

from sentry.errors import Errno
from sentry.vfs.hostfd import HostFd


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_close_waits_for_the_last_user():
    r, w = os.pipe()
    os.close(w)
    held = HostFd(r)
    with held.use() as fd:
        held.close()
        assert is_open(fd)  # still ours while the "syscall" runs
        with pytest.raises(Errno) as e, held.use():
            pass
        assert e.value.code == errno.EBADF
    assert not is_open(r)
    held.close()  # idempotent


def test_idle_close_is_immediate():
    r, w = os.pipe()
    os.close(w)
    held = HostFd(r)
    held.close()
    assert not is_open(r)
