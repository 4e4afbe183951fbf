"""The app's stdio: file descriptions over the host fds the Sentry was handed.

Reads and writes go to the host fd (after a host poll that signals can
interrupt, so a blocked read of the console never pins a task); terminal
ioctls reach the host tty when it is one and fail with ENOTTY otherwise.
The host fd's own O_NONBLOCK is never touched: the app's O_NONBLOCK lives
on our description and becomes a zero-timeout poll.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import stat
import struct
import termios

from sentry.errors import Errno
from sentry.vfs.file import MAX_RW, FileDescription
from sentry.vfs.fs.anon import HOSTFS, AnonInode
from sentry.vfs.hostfd import HostFd
from sentry.vfs.mount import Location
from sentry.vfs.stat import Stat
from sentry.vfs.waiter import POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, Waiter

KERNEL_TERMIOS_SIZE = 36  # struct termios as the kernel copies it (not glibc's)
WINSIZE_SIZE = 8
PIPE_BUF = 4096
TIOCGPGRP, TIOCSPGRP, TIOCGSID = 0x540F, 0x5410, 0x5429
_IOCTL_SIZES = {
    termios.TCGETS: (KERNEL_TERMIOS_SIZE, "out"),
    termios.TCSETS: (KERNEL_TERMIOS_SIZE, "in"),
    termios.TCSETSW: (KERNEL_TERMIOS_SIZE, "in"),
    termios.TCSETSF: (KERNEL_TERMIOS_SIZE, "in"),
    termios.TIOCGWINSZ: (WINSIZE_SIZE, "out"),
    termios.TIOCSWINSZ: (WINSIZE_SIZE, "in"),
}


class HostInode(AnonInode):
    """One host fd the sandbox was started with; each open dups it."""

    def __init__(self, host_fd: int) -> None:
        super().__init__(HOSTFS, stat.S_IFMT(os.fstat(host_fd).st_mode) | 0o620)
        self.host_fd = host_fd

    def stat(self) -> Stat:
        st = os.fstat(self.host_fd)
        return Stat(mode=self._mode, ino=self.ino, dev=self.fs.dev, rdev=st.st_rdev, blksize=1024)

    def open(self, task, loc: Location, flags: int) -> FileDescription:
        return HostFile(loc, flags, os.dup(self.host_fd))


class HostFile(FileDescription):
    def __init__(self, loc: Location, flags: int, host_fd: int) -> None:
        super().__init__(loc, flags)
        self.host_fd = HostFd(host_fd)
        # The bare number, only for host poll() registrations (a stale one just wakes early).
        self._poll_fd = host_fd
        mode = os.fstat(host_fd).st_mode
        self._is_pipe = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
        self._is_tty = os.isatty(host_fd)

    def release(self) -> None:
        self.host_fd.close()

    @staticmethod
    def _host_ready(fd: int, events: int) -> int:
        poller = select.poll()
        poller.register(fd, events)
        got = poller.poll(0)
        return got[0][1] if got else 0

    def _wait(self, task, fd: int, events: int) -> None:
        """Until the host fd is ready (EAGAIN at once when O_NONBLOCK)."""
        if self._host_ready(fd, events):
            return
        if self.nonblocking:
            raise Errno(errno.EAGAIN)
        waiter = Waiter()
        waiter.watch_host_fd(fd, events)
        try:
            while not self._host_ready(fd, events):
                task.block(waiter, None)
                waiter.clear()
        finally:
            waiter.close()

    def read(self, task, count: int) -> bytes:
        if count == 0:
            return b""
        with self.host_fd.use() as fd:
            self._wait(task, fd, POLLIN)
            try:
                return os.read(fd, min(count, MAX_RW))
            except BlockingIOError:
                raise Errno(errno.EAGAIN) from None
            except OSError as e:
                raise Errno(e.errno or errno.EIO) from None

    def write(self, task, data: bytes) -> int:
        if not data:
            return 0
        if self._is_pipe:
            # POLLOUT on a host pipe or socket promises room for one page, no more: a
            # larger write could block this thread where no signal can interrupt it.
            data = data[:PIPE_BUF]
        with self.host_fd.use() as fd:
            self._wait(task, fd, POLLOUT)
            try:
                return os.write(fd, data)
            except BrokenPipeError:
                task.send_signal(signal.SIGPIPE)
                raise Errno(errno.EPIPE) from None
            except BlockingIOError:
                raise Errno(errno.EAGAIN) from None
            except OSError as e:
                raise Errno(e.errno or errno.EIO) from None

    def watch(self, waiter: Waiter, mask: int) -> None:
        waiter.watch_host_fd(self._poll_fd, mask & (POLLIN | POLLOUT))

    def unwatch(self, waiter: Waiter) -> None:
        """Host fds are only watched for the waiter's own lifetime."""

    def readiness(self, mask: int) -> int:
        try:
            with self.host_fd.use() as fd:
                return self._host_ready(fd, mask & (POLLIN | POLLOUT)) & (mask | POLLHUP | POLLERR)
        except Errno:
            return POLLNVAL

    def ioctl(self, task, cmd: int, arg: int) -> int:
        if cmd == termios.FIONREAD and (self._is_tty or self._is_pipe):
            with self.host_fd.use() as fd:
                pending = fcntl.ioctl(fd, cmd, bytes(4))
            task.mm.copy_out(arg, pending)
            return 0
        if not self._is_tty:
            raise Errno(errno.ENOTTY)
        if cmd in (TIOCGPGRP, TIOCSPGRP, TIOCGSID):
            return self._job_control(task, cmd, arg)
        shape = _IOCTL_SIZES.get(cmd)
        if shape is None:
            raise Errno(errno.ENOTTY)
        size, direction = shape
        buf = task.mm.copy_in(arg, size) if direction == "in" else bytes(size)
        with self.host_fd.use() as fd:
            try:
                out = fcntl.ioctl(fd, cmd, buf)
            except OSError as e:
                raise Errno(e.errno or errno.EIO) from None
        if direction == "out":
            task.mm.copy_out(arg, out)
        return 0

    def _job_control(self, task, cmd: int, arg: int) -> int:
        """The console is the sandbox's controlling terminal: its foreground group lives in the session."""
        session = task.tg.session
        if session is None:
            raise Errno(errno.ENOTTY)
        if cmd == TIOCGPGRP:
            task.mm.copy_out(arg, struct.pack("<i", session.foreground_pgid))
        elif cmd == TIOCGSID:
            task.mm.copy_out(arg, struct.pack("<i", session.sid))
        else:
            (pgid,) = struct.unpack("<i", task.mm.copy_in(arg, 4))
            if pgid < 0:
                raise Errno(errno.EINVAL)
            group = task.kernel.process_group(pgid)
            if group is None or group.session is not session:
                raise Errno(errno.EPERM)
            session.foreground_pgid = pgid
        return 0
