"""futex(2)."""

from __future__ import annotations

import errno
import time
from typing import TYPE_CHECKING

from sentry.errors import Errno
from sentry.kernel.futex import BITSET_MATCH_ANY
from sentry.syscalls.time import read_timespec

if TYPE_CHECKING:
    from sentry.kernel.task import Task

FUTEX_WAIT, FUTEX_WAKE, FUTEX_FD, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE, FUTEX_WAKE_OP = 0, 1, 2, 3, 4, 5
FUTEX_LOCK_PI, FUTEX_UNLOCK_PI, FUTEX_TRYLOCK_PI, FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET = 6, 7, 8, 9, 10
FUTEX_PRIVATE_FLAG, FUTEX_CLOCK_REALTIME = 128, 256


def sys_futex(task: Task, addr: int, op: int, val: int, timeout: int, addr2: int, val3: int) -> int:
    op &= 0xFFFFFFFF
    private = bool(op & FUTEX_PRIVATE_FLAG)
    cmd = op & ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)
    futexes = task.kernel.futexes
    val &= 0xFFFFFFFF
    if op & FUTEX_CLOCK_REALTIME and cmd not in (FUTEX_WAIT_BITSET, FUTEX_WAIT):
        raise Errno(errno.ENOSYS)
    if cmd in (FUTEX_WAIT, FUTEX_WAIT_BITSET):
        bitset = BITSET_MATCH_ANY if cmd == FUTEX_WAIT else val3 & 0xFFFFFFFF
        deadline = None
        if timeout:
            value = read_timespec(task, timeout)
            if cmd == FUTEX_WAIT:
                deadline = time.monotonic() + value
            elif op & FUTEX_CLOCK_REALTIME:
                deadline = time.monotonic() + (value - time.time())
            else:
                deadline = value
        return futexes.wait(task, addr, val, deadline, bitset, private)
    count = min(val, 0x7FFFFFFF)
    if cmd == FUTEX_WAKE:
        return futexes.wake(task, addr, count, BITSET_MATCH_ANY, private)
    if cmd == FUTEX_WAKE_BITSET:
        return futexes.wake(task, addr, count, val3 & 0xFFFFFFFF, private)
    if cmd in (FUTEX_REQUEUE, FUTEX_CMP_REQUEUE):
        nr_requeue = timeout & 0xFFFFFFFF
        if nr_requeue >= 1 << 31 or val >= 1 << 31:
            raise Errno(errno.EINVAL)
        expect = val3 & 0xFFFFFFFF if cmd == FUTEX_CMP_REQUEUE else None
        return futexes.requeue(task, addr, addr2, count, nr_requeue, expect, private)
    if cmd == FUTEX_WAKE_OP:
        return futexes.wake_op(task, addr, addr2, count, timeout & 0x7FFFFFFF, val3 & 0xFFFFFFFF, private)
    raise Errno(errno.ENOSYS)
