"""A host fd that an open file owns, safe against close() racing a read in another thread.

Linux holds a reference on a file for the length of a syscall, so close() in
one thread never pulls the file from under a read() in another. Here the
same guarantee is what keeps a racing read from reaching whatever host file
next reuses the fd number (another sandbox file, or the Sentry's own memory
file): the fd is closed only when the last syscall using it is done.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sentry.errors import Errno


class HostFd:
    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self._users = 0
        self._closing = False

    @contextmanager
    def use(self) -> Iterator[int]:
        """The fd, open until the with-block ends; EBADF once the owner released it."""
        with self._lock:
            if self._closing:
                raise Errno(errno.EBADF)
            self._users += 1
        try:
            yield self._fd
        finally:
            with self._lock:
                self._users -= 1
                last = self._closing and self._users == 0
            if last:
                os.close(self._fd)

    def close(self) -> None:
        """The owner is done; the fd closes now, or when the last user finishes."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            idle = self._users == 0
        if idle:
            os.close(self._fd)
