"""signalfd: reading a thread group's pending signals as struct signalfd_siginfo records.

A read dequeues signals in the file's mask from the reading thread's and its
process's pending sets, as Linux does. Readiness is computed for the thread
group that created the file (Linux uses the polling thread; they differ only
when the fd is shared with another process). Signal sending calls
`signal_queued(tg)` (sentry/kernel/sending.py) so that blocked readers and
pollers of that group's signalfds wake up even though the signals are
blocked.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import threading
import weakref
from typing import Any

from sentry.errors import Errno
from sentry.kernel.signals import (
    SI_TIMER,
    SIGBUS,
    SIGCHLD,
    SIGFPE,
    SIGILL,
    SIGSEGV,
    SIGTRAP,
    UNBLOCKABLE,
    SigInfo,
)
from sentry.vfs.file import FileDescription
from sentry.vfs.fs.anon import ANON_INODES, AnonInode
from sentry.vfs.waiter import POLLIN, WaitQueue, wait_for

RECORD = 128
# struct signalfd_siginfo up to ssi_addr_lsb; the rest is padding.
_SSI = struct.Struct("<IiiIIiIIIIiIQQQQHH")
FAULT_SIGNALS = (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP)

_QUEUES_LOCK = threading.Lock()
_QUEUES: weakref.WeakKeyDictionary[Any, WaitQueue] = weakref.WeakKeyDictionary()


def queue_of(tg: Any) -> WaitQueue:
    """The wait queue every signalfd of this thread group waits on."""
    with _QUEUES_LOCK:
        queue = _QUEUES.get(tg)
        if queue is None:
            queue = _QUEUES[tg] = WaitQueue()
        return queue


def signal_queued(tg: Any) -> None:
    """A signal became pending in tg (for it or one of its threads): wake its signalfds."""
    with _QUEUES_LOCK:
        queue = _QUEUES.get(tg)
    if queue is not None:
        queue.notify(POLLIN)


def pack_record(info: SigInfo) -> bytes:
    """signalfd_siginfo from a siginfo: each kind of signal keeps its fields in its part of the union."""
    f = info.fields.ljust(112, b"\0")
    m32 = 0xFFFFFFFF
    pid = uid = tid = overrun = status = value = utime = stime = addr = 0
    if info.signo in FAULT_SIGNALS and info.code > 0:
        (addr,) = struct.unpack_from("<Q", f, 0)
    elif info.code == SI_TIMER:
        tid, overrun, value = struct.unpack_from("<iiQ", f, 0)
    else:
        pid, uid, value = struct.unpack_from("<iIQ", f, 0)
        if info.signo == SIGCHLD and info.code > 0:
            status, utime, stime = struct.unpack_from("<i4xqq", f, 8)
    record = _SSI.pack(
        info.signo, info.errno, info.code, pid & m32, uid, 0, tid & m32, 0, overrun & m32, 0,
        status, value & m32, value, utime & (1 << 64) - 1, stime & (1 << 64) - 1, addr, 0, 0,
    )  # fmt: skip
    return record.ljust(RECORD, b"\0")


class SignalFD(FileDescription):
    def __init__(self, tg: Any, mask: int, flags: int) -> None:
        inode = AnonInode(ANON_INODES, stat.S_IFREG | 0o600)
        super().__init__(ANON_INODES.location(inode, b"anon_inode:[signalfd]"), os.O_RDWR | flags)
        self.tg = tg
        self.mask = mask & ~UNBLOCKABLE
        self.waitq = queue_of(tg)

    def set_mask(self, mask: int) -> None:
        self.mask = mask & ~UNBLOCKABLE
        self.waitq.notify(POLLIN)

    def read(self, task, count: int) -> bytes:
        if count < RECORD:
            raise Errno(errno.EINVAL)
        kernel = task.kernel

        def take_all() -> bytes | None:
            out = bytearray()
            with kernel.lock:
                while len(out) + RECORD <= count:
                    info = task.pending.take(self.mask) or task.tg.pending.take(self.mask)
                    if info is None:
                        break
                    out += pack_record(info)
            if out:
                return bytes(out)
            if self.nonblocking:
                raise Errno(errno.EAGAIN)
            return None

        return wait_for(task, self.waitq, POLLIN, take_all)

    def readiness(self, mask: int) -> int:
        tg = self.tg
        pending = tg.pending.mask
        for thread in tg.tasks():
            pending |= thread.pending.mask
        return POLLIN & mask if pending & self.mask else 0
