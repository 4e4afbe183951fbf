"""Blocking a task until a socket operation can proceed, on several wait queues, with an optional timeout.

Like sentry.vfs.waiter.wait_for, but a sender also watches its own socket
(shutdown, peer gone) while waiting for room at the receiver, and SO_RCVTIMEO/
SO_SNDTIMEO bound the wait (EAGAIN when it passes, EINTR on a signal then, as
Linux's sock_intr_errno).
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from typing import TypeVar

from sentry.errors import RESTART_CODES, Errno
from sentry.vfs.waiter import Waiter, WaitQueue

T = TypeVar("T")


def wait_on(
    task, queues: list[tuple[WaitQueue, int]], attempt: Callable[[], T | None], timeout: float | None
) -> T:
    """attempt() until it returns non-None; it may raise (EAGAIN for non-blocking sockets)."""
    waiter = Waiter()
    for queue, mask in queues:
        queue.register(waiter, mask)
    deadline = deadline_after(timeout)
    try:
        while True:
            waiter.clear()
            result = attempt()
            if result is not None:
                return result
            block_until(task, waiter, deadline)
    finally:
        for queue, _mask in queues:
            queue.unregister(waiter)
        waiter.close()


def deadline_after(timeout: float | None) -> float | None:
    """The monotonic time a wait of `timeout` seconds ends; None waits for ever."""
    return None if timeout is None else time.monotonic() + timeout


def block_until(task, waiter: Waiter, deadline: float | None) -> None:
    """Sleep on `waiter` once; EAGAIN when `deadline` has passed, EINTR for a signal during a timed wait."""
    remaining = None if deadline is None else deadline - time.monotonic()
    if remaining is not None and remaining <= 0:
        raise Errno(errno.EAGAIN)
    try:
        task.block(waiter, remaining)
    except Errno as e:
        if deadline is not None and e.code in RESTART_CODES:
            raise Errno(errno.EINTR) from None
        raise
