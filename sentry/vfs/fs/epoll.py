"""epoll: an interest list over other files, reported level- or edge-triggered.

Each interest stays registered on its file's wait queue, so an event between
two epoll_wait calls marks it (that is what edge-triggered reporting and
waking a poll of the epoll fd itself rely on). Host-fd files (the console)
have no queue; epoll_wait watches them for the duration of the wait.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time

from sentry.errors import Errno
from sentry.vfs.file import FileDescription
from sentry.vfs.fs.anon import ANON_INODES, AnonInode
from sentry.vfs.waiter import ALWAYS, POLLIN, Waiter, WaitQueue

EPOLLONESHOT = 1 << 30
EPOLLET = 1 << 31
EPOLLEXCLUSIVE = 1 << 28
EPOLLWAKEUP = 1 << 29
# Bits that control reporting rather than name events.
CONTROL_BITS = EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE | EPOLLWAKEUP


class Interest:
    """One (fd, file) in an epoll set."""

    def __init__(self, epoll: EpollFile, fd: int, file: FileDescription, events: int, data: int) -> None:
        self.epoll = epoll
        self.fd = fd
        self.file = file
        self.events = events
        self.data = data
        self.triggered = True  # report current readiness once after ADD/MOD
        self.disabled = False  # EPOLLONESHOT fired

    def wake(self) -> None:
        """Called by the file's wait queue."""
        self.triggered = True
        self.epoll.waitq.notify(POLLIN)

    def check(self) -> int:
        """The events to report now (and consume the edge/one-shot state)."""
        if self.disabled or self.file.released:
            return 0
        edge = bool(self.events & EPOLLET)
        if edge and not self.triggered:
            return 0
        self.triggered = False
        ready = self.file.readiness((self.events & ~CONTROL_BITS) | ALWAYS)
        if ready and self.events & EPOLLONESHOT:
            self.disabled = True
        return ready


class EpollFile(FileDescription):
    def __init__(self, flags: int) -> None:
        inode = AnonInode(ANON_INODES, stat.S_IFREG | 0o600)
        super().__init__(ANON_INODES.location(inode, b"anon_inode:[eventpoll]"), os.O_RDWR | flags)
        self.waitq = WaitQueue()
        self.interests: dict[tuple[int, FileDescription], Interest] = {}
        self._lock = threading.Lock()

    def ctl_add(self, fd: int, file: FileDescription, events: int, data: int) -> None:
        key = (fd, file)
        if file is self:
            raise Errno(errno.EINVAL)
        if not file.epollable:
            raise Errno(errno.EPERM)
        with self._lock:
            if key in self.interests:
                raise Errno(errno.EEXIST)
            interest = self.interests[key] = Interest(self, fd, file, events, data)
        if file.waitq is not None:
            file.waitq.register(interest, (events & ~CONTROL_BITS) | ALWAYS)
        self.waitq.notify(POLLIN)

    def ctl_mod(self, fd: int, file: FileDescription, events: int, data: int) -> None:
        with self._lock:
            interest = self.interests.get((fd, file))
            if interest is None:
                raise Errno(errno.ENOENT)
            interest.events, interest.data = events, data
            interest.triggered, interest.disabled = True, False
        if file.waitq is not None:
            file.waitq.register(interest, (events & ~CONTROL_BITS) | ALWAYS)
        self.waitq.notify(POLLIN)

    def ctl_del(self, fd: int, file: FileDescription) -> None:
        with self._lock:
            interest = self.interests.pop((fd, file), None)
        if interest is None:
            raise Errno(errno.ENOENT)
        if file.waitq is not None:
            file.waitq.unregister(interest)

    def _collect(self, limit: int) -> list[tuple[int, int]]:
        with self._lock:
            interests = list(self.interests.values())
        out = []
        for interest in interests:
            if interest.file.released:
                self._drop(interest)
                continue
            ready = interest.check()
            if ready:
                out.append((ready, interest.data))
                if len(out) == limit:
                    break
        return out

    def _drop(self, interest: Interest) -> None:
        with self._lock:
            self.interests.pop((interest.fd, interest.file), None)
        if interest.file.waitq is not None:
            interest.file.waitq.unregister(interest)

    def wait(self, task, limit: int, timeout: float | None) -> list[tuple[int, int]]:
        """Up to limit (events, data) pairs; [] on timeout. A signal raises task.block's errno."""
        ready = self._collect(limit)
        if ready or timeout == 0:
            return ready
        deadline = None if timeout is None else time.monotonic() + timeout
        waiter = Waiter()
        self.waitq.register(waiter, POLLIN)
        with self._lock:
            hosts = [i for i in self.interests.values() if i.file.waitq is None]
        for interest in hosts:
            interest.file.watch(waiter, interest.events & ~CONTROL_BITS)
        try:
            while True:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return []
                task.block(waiter, remaining)
                waiter.clear()
                for interest in hosts:
                    interest.triggered = True
                ready = self._collect(limit)
                if ready:
                    return ready
        finally:
            self.waitq.unregister(waiter)
            waiter.close()

    def readiness(self, mask: int) -> int:
        with self._lock:
            interests = list(self.interests.values())
        for interest in interests:
            if interest.disabled or interest.file.released:
                continue
            if interest.file.readiness((interest.events & ~CONTROL_BITS) | ALWAYS):
                return POLLIN & mask
        return 0

    def release(self) -> None:
        with self._lock:
            interests = list(self.interests.values())
            self.interests.clear()
        for interest in interests:
            if interest.file.waitq is not None:
                interest.file.waitq.unregister(interest)
