"""eventfd: a 64-bit counter that read() drains and write() adds to, with poll readiness."""

from __future__ import annotations

import errno
import os
import stat
import struct
import threading

from sentry.errors import Errno
from sentry.vfs.file import FileDescription
from sentry.vfs.fs.anon import ANON_INODES, AnonInode
from sentry.vfs.waiter import POLLIN, POLLOUT, WaitQueue, wait_for

MAX_COUNT = (1 << 64) - 2


class EventFD(FileDescription):
    def __init__(self, initval: int, flags: int, semaphore: bool) -> None:
        inode = AnonInode(ANON_INODES, stat.S_IFREG | 0o600)
        super().__init__(ANON_INODES.location(inode, b"anon_inode:[eventfd]"), os.O_RDWR | flags)
        self.count = initval
        self.semaphore = semaphore
        self.waitq = WaitQueue()
        self._lock = threading.Lock()

    def read(self, task, count: int) -> bytes:
        if count < 8:
            raise Errno(errno.EINVAL)

        def attempt() -> bytes | None:
            with self._lock:
                if self.count == 0:
                    if self.nonblocking:
                        raise Errno(errno.EAGAIN)
                    return None
                value = 1 if self.semaphore else self.count
                self.count -= value
            self.waitq.notify(POLLOUT)
            return struct.pack("<Q", value)

        return wait_for(task, self.waitq, POLLIN, attempt)

    def write(self, task, data: bytes) -> int:
        if len(data) < 8:
            raise Errno(errno.EINVAL)
        (value,) = struct.unpack_from("<Q", data)
        if value > MAX_COUNT:
            raise Errno(errno.EINVAL)

        def attempt() -> int | None:
            with self._lock:
                if self.count + value > MAX_COUNT:
                    if self.nonblocking:
                        raise Errno(errno.EAGAIN)
                    return None
                self.count += value
            if value:
                self.waitq.notify(POLLIN)
            return 8

        return wait_for(task, self.waitq, POLLOUT, attempt)

    def readiness(self, mask: int) -> int:
        with self._lock:
            ready = (POLLIN if self.count else 0) | (POLLOUT if self.count < MAX_COUNT else 0)
        return ready & mask
