"""devfs: /dev as a tmpfs holding the character devices an app expects (a tmpfs, as runc's /dev is).

null, zero, full, random and urandom are served by the Sentry; tty and
console reach the host's console (the first stdio fd that is a terminal);
stdin/stdout/stderr/fd are the usual links into /proc/self/fd; ptmx links to
pts/ptmx, which makes a new pseudo-terminal (devpts.py).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

from sentry.errors import Errno
from sentry.vfs.file import FileDescription
from sentry.vfs.fs.tmpfs import TmpDir, TmpFilesystem, TmpInode
from sentry.vfs.mount import Location

Opener = Callable[[object, Location, int], FileDescription]


class CharDevice(FileDescription):
    """A device with no position: reads and writes ignore the offset, lseek answers 0."""

    def read(self, task, count: int) -> bytes:
        return self.pread(task, count, 0)

    def write(self, task, data: bytes) -> int:
        return self.pwrite(task, data, 0)

    def pwrite(self, task, data: bytes, offset: int) -> int:
        return len(data)

    def seek(self, offset: int, whence: int) -> int:
        return 0


class NullDevice(CharDevice):
    def pread(self, task, count: int, offset: int) -> bytes:
        return b""


class ZeroDevice(CharDevice):
    def pread(self, task, count: int, offset: int) -> bytes:
        return bytes(count)


class FullDevice(ZeroDevice):
    def pwrite(self, task, data: bytes, offset: int) -> int:
        raise Errno(errno.ENOSPC)


class RandomDevice(CharDevice):
    def pread(self, task, count: int, offset: int) -> bytes:
        return os.urandom(count)


def device_opener(cls: type[CharDevice]) -> Opener:
    return lambda task, loc, flags: cls(loc, flags)


def no_such_device(task, loc: Location, flags: int) -> FileDescription:
    """Opening a node no driver serves: ENXIO, as Linux answers."""
    raise Errno(errno.ENXIO)


def not_permitted(task, loc: Location, flags: int) -> FileDescription:
    """Opening a node the app made of a device the Sentry does not emulate: EPERM, as runc's device
    cgroup answers for a device it does not allow."""
    raise Errno(errno.EPERM)


class DeviceInode(TmpInode):
    """A character (or block) node; opener is the Sentry's device behind it."""

    def __init__(
        self,
        fs: TmpFilesystem,
        major: int,
        minor: int,
        opener: Opener,
        *,
        kind: int = stat.S_IFCHR,
        mode: int = 0o666,
        uid: int = 0,
        gid: int = 0,
    ) -> None:
        super().__init__(fs, kind | mode, uid, gid)
        self.rdev = os.makedev(major, minor)
        self.opener = opener

    def open(self, task, loc: Location, flags: int) -> FileDescription:
        return self.opener(task, loc, flags)


def make_devfs(console: Opener | None, tty: Opener | None = None) -> tuple[TmpFilesystem, TmpDir]:
    """A fresh devfs; console opens the host terminal (None: ENXIO); tty opens the caller's controlling
    terminal (default: console); ptmx links to pts/ptmx (devpts, which boot mounts on /dev/pts), as runc."""
    fs = TmpFilesystem()
    root = fs.new_root(0o755)
    for name, major, minor, cls in (
        (b"null", 1, 3, NullDevice),
        (b"zero", 1, 5, ZeroDevice),
        (b"full", 1, 7, FullDevice),
        (b"random", 1, 8, RandomDevice),
        (b"urandom", 1, 9, RandomDevice),
    ):
        root.add(name, DeviceInode(fs, major, minor, device_opener(cls)))

    root.add(b"tty", DeviceInode(fs, 5, 0, tty or console or no_such_device))
    root.add(b"console", DeviceInode(fs, 5, 1, console or no_such_device))
    for i, name in enumerate((b"stdin", b"stdout", b"stderr")):
        root.symlink(name, b"/proc/self/fd/%d" % i, 0, 0)
    root.symlink(b"fd", b"/proc/self/fd", 0, 0)
    root.symlink(b"ptmx", b"pts/ptmx", 0, 0)
    root.mkdir(b"pts", 0o755, 0, 0)
    root.mkdir(b"shm", 0o1777, 0, 0)
    return fs, root


def emulated_devices(root: TmpDir) -> dict[int, Opener]:
    """The character devices a devfs root holds, by device number: what another node of that number opens."""
    with root.lock:
        nodes = list(root.children.values())
    return {n.rdev: n.opener for n in nodes if isinstance(n, DeviceInode) and stat.S_ISCHR(n.mode)}
