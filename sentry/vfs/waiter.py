"""Sleeping until a file is ready: wait queues, and the waiter a blocked task sleeps on.

A Waiter is registered on the wait queues of the files a task waits for and
woken by whichever becomes ready first; signal delivery wakes it too (the
kernel's `task.block` does that). It is an eventfd, so one host poll() can
also watch host fds (the console), which threading primitives cannot.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading
from collections.abc import Callable
from typing import TypeVar

from sentry.errors import Errno

T = TypeVar("T")

# poll(2) event bits, as the app passes them.
POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLNVAL = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20
POLLRDNORM, POLLRDBAND, POLLWRNORM, POLLWRBAND = 0x40, 0x80, 0x100, 0x200
ALWAYS = POLLERR | POLLHUP | POLLNVAL


class Waiter:
    """One sleeping task's doorbell."""

    def __init__(self) -> None:
        self._fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._host: dict[int, int] = {}
        # A queue may still hold this waiter for a moment after close(): wake() then
        # does nothing, rather than writing to whatever file reused the fd number.
        self._lock = threading.Lock()
        self._closed = False

    def wake(self) -> None:
        with self._lock:
            if not self._closed:
                os.eventfd_write(self._fd, 1)

    def watch_host_fd(self, fd: int, events: int) -> None:
        """Also return from wait() when this host fd has any of `events`."""
        self._host[fd] = events

    def clear(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._fd)

    def wait(self, timeout: float | None) -> bool:
        """Sleep up to timeout seconds (None: forever); True if something happened."""
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        for fd, events in self._host.items():
            poller.register(fd, events)
        ms = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
        return bool(poller.poll(ms))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            os.close(self._fd)


class WaitQueue:
    """The waiters interested in one file's readiness."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[Waiter, int] = {}

    def register(self, waiter: Waiter, mask: int) -> None:
        with self._lock:
            self._waiters[waiter] = self._waiters.get(waiter, 0) | mask | ALWAYS

    def unregister(self, waiter: Waiter) -> None:
        with self._lock:
            self._waiters.pop(waiter, None)

    def notify(self, mask: int) -> None:
        with self._lock:
            woken = [w for w, m in self._waiters.items() if m & mask]
        for w in woken:
            w.wake()


def wait_for(task, queue: WaitQueue, mask: int, attempt: Callable[[], T | None]) -> T:
    """Block the task until attempt() returns non-None; woken by `mask` events on queue.

    attempt() runs with the waiter already registered, so a wakeup between a
    failed attempt and going to sleep is not lost. A signal makes task.block
    raise (ERESTARTSYS), which propagates.
    """
    waiter = Waiter()
    queue.register(waiter, mask)
    try:
        while True:
            waiter.clear()
            result = attempt()
            if result is not None:
                return result
            if not task.block(waiter, None):
                raise Errno(errno.ETIMEDOUT)
    finally:
        queue.unregister(waiter)
        waiter.close()
