"""Pipes: a 64 KiB in-Sentry buffer between a read end and a write end.

Readers and writers block through the pipe's wait queue (interruptible by
signals via task.block); O_NONBLOCK gives EAGAIN; writes of at most PIPE_BUF
bytes are atomic; writing with no reader left raises SIGPIPE and fails with
EPIPE; reading with no writer left returns EOF.
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import struct
import threading

from sentry.errors import Errno
from sentry.vfs.file import MAX_RW, FileDescription
from sentry.vfs.fs.anon import PIPEFS, AnonInode
from sentry.vfs.mount import Location
from sentry.vfs.waiter import POLLERR, POLLHUP, POLLIN, POLLOUT, WaitQueue, wait_for

PIPE_BUF = 4096
CAPACITY = 65536
FIONREAD = 0x541B


class Pipe:
    def __init__(self) -> None:
        self.buf = bytearray()
        self.lock = threading.Lock()
        self.readers = 0
        self.writers = 0
        self.waitq = WaitQueue()


class PipeInode(AnonInode):
    def __init__(self) -> None:
        super().__init__(PIPEFS, stat.S_IFIFO | 0o600)
        self.pipe = Pipe()

    def open(self, task, loc: Location, flags: int) -> FileDescription:
        """Reopening through /proc/self/fd/N: another end of the same pipe."""
        if flags & os.O_ACCMODE == os.O_RDWR:
            raise Errno(errno.EINVAL)
        return PipeFile(loc, flags, self.pipe)


def make_pipe(flags: int) -> tuple[PipeFile, PipeFile]:
    """pipe2(): the read end and the write end, with O_NONBLOCK/O_DIRECT from flags."""
    inode = PipeInode()
    loc = PIPEFS.location(inode, b"pipe:[%d]" % inode.ino)
    status = flags & (os.O_NONBLOCK | os.O_DIRECT)
    return PipeFile(loc, os.O_RDONLY | status, inode.pipe), PipeFile(loc, os.O_WRONLY | status, inode.pipe)


def open_fifo(task, loc: Location, flags: int, pipe: Pipe) -> PipeFile:
    """open(2) of a named pipe: a reader waits for a writer and vice versa, unless O_NONBLOCK
    (then a lone writer gets ENXIO); O_RDWR never waits."""
    accmode = flags & os.O_ACCMODE
    if accmode == os.O_WRONLY and flags & os.O_NONBLOCK:
        with pipe.lock:
            if pipe.readers == 0:
                raise Errno(errno.ENXIO)
    file = PipeFile(loc, flags, pipe)
    if accmode == os.O_RDWR or flags & os.O_NONBLOCK:
        return file

    def peer_present() -> bool | None:
        with pipe.lock:
            return True if (pipe.writers if accmode == os.O_RDONLY else pipe.readers) else None

    try:
        wait_for(task, pipe.waitq, POLLIN | POLLOUT, peer_present)
    except Errno:
        file.decref()
        raise
    return file


class PipeFile(FileDescription):
    def __init__(self, loc: Location, flags: int, pipe: Pipe) -> None:
        super().__init__(loc, flags)
        self.pipe = pipe
        self.waitq = pipe.waitq
        with pipe.lock:
            if self.readable:
                pipe.readers += 1
            if self.writable:
                pipe.writers += 1
        # A FIFO opener may be waiting for this end to appear.
        pipe.waitq.notify(POLLIN | POLLOUT)

    def release(self) -> None:
        pipe = self.pipe
        with pipe.lock:
            if self.readable:
                pipe.readers -= 1
            if self.writable:
                pipe.writers -= 1
        pipe.waitq.notify(POLLIN | POLLOUT | POLLHUP | POLLERR)

    def read(self, task, count: int) -> bytes:
        if count == 0:
            return b""
        pipe = self.pipe

        def attempt() -> bytes | None:
            with pipe.lock:
                if pipe.buf:
                    data = bytes(pipe.buf[:count])
                    del pipe.buf[:count]
                elif pipe.writers == 0:
                    return b""
                elif self.nonblocking:
                    raise Errno(errno.EAGAIN)
                else:
                    return None
            pipe.waitq.notify(POLLOUT)
            return data

        return wait_for(task, pipe.waitq, POLLIN | POLLHUP, attempt)

    def write(self, task, data: bytes) -> int:
        if not data:
            return 0
        pipe = self.pipe
        done = 0

        def attempt() -> int | None:
            nonlocal done
            with pipe.lock:
                broken = pipe.readers == 0
                if not broken:
                    space = CAPACITY - len(pipe.buf)
                    remaining = len(data) - done
                    n = 0 if remaining <= PIPE_BUF and space < remaining else min(space, remaining)
                    pipe.buf += data[done : done + n]
                    done += n
            if broken:
                # Signalled outside the pipe lock: the kernel takes its own lock to queue it.
                task.send_signal(signal.SIGPIPE)
                if done:
                    return done
                raise Errno(errno.EPIPE)
            if n:
                pipe.waitq.notify(POLLIN)
            if done == len(data):
                return done
            if self.nonblocking:
                if done:
                    return done
                raise Errno(errno.EAGAIN)
            return None

        try:
            return wait_for(task, pipe.waitq, POLLOUT | POLLERR, attempt)
        except Errno:
            # A signal after part of the data went in: report the part, as Linux does.
            if done:
                return done
            raise

    def readiness(self, mask: int) -> int:
        pipe = self.pipe
        ready = 0
        with pipe.lock:
            if self.readable:
                if pipe.buf:
                    ready |= POLLIN
                if pipe.writers == 0:
                    ready |= POLLHUP
            if self.writable:
                if CAPACITY - len(pipe.buf) >= PIPE_BUF:
                    ready |= POLLOUT
                if pipe.readers == 0:
                    ready |= POLLERR
        return ready & (mask | POLLHUP | POLLERR)

    def ioctl(self, task, cmd: int, arg: int) -> int:
        if cmd != FIONREAD:
            raise Errno(errno.ENOTTY)
        with self.pipe.lock:
            n = min(len(self.pipe.buf), MAX_RW)
        task.mm.copy_out(arg, struct.pack("<i", n))
        return 0
