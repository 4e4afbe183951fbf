"""devpts (/dev/pts): opening /dev/pts/ptmx (or the /dev/ptmx link to it) makes a new pseudo-terminal,
/dev/pts/N is its slave.

The terminal ioctls an app's libc and shell use are answered here:
TCGETS/TCSETS*, window size (TIOCSWINSZ sends SIGWINCH to the foreground
group), TIOCGPTN/TIOCSPTLCK/TIOCGPTLCK (ptsname, unlockpt), TIOCGPTPEER
(open the slave from the master), TIOCSCTTY/TIOCNOTTY, TIOCGPGRP/TIOCSPGRP/
TIOCGSID (job control on this terminal), FIONREAD, TCFLSH and the no-op
flow controls. The line discipline itself is in pty.py.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import threading

from sentry.errors import Errno
from sentry.vfs.dirent import DT_CHR, DirEntry
from sentry.vfs.file import DirectoryFile, FileDescription
from sentry.vfs.fs import pty
from sentry.vfs.inode import Filesystem, Inode
from sentry.vfs.mount import Location
from sentry.vfs.stat import Stat, now_ns
from sentry.vfs.waiter import POLLERR, POLLHUP

PTY_SLAVE_MAJOR = 136
TCGETS, TCSETS, TCSETSW, TCSETSF = 0x5401, 0x5402, 0x5403, 0x5404
TCSBRK, TCXONC, TCFLSH, TIOCEXCL, TIOCNXCL, TIOCSCTTY = 0x5409, 0x540A, 0x540B, 0x540C, 0x540D, 0x540E
TIOCGPGRP, TIOCSPGRP, TIOCOUTQ, TIOCGWINSZ, TIOCSWINSZ = 0x540F, 0x5410, 0x5411, 0x5413, 0x5414
FIONREAD, TIOCPKT, TIOCNOTTY, TIOCGSID, TCSBRKP = 0x541B, 0x5420, 0x5422, 0x5429, 0x5425
TIOCGPTN, TIOCSPTLCK, TIOCGPTLCK, TIOCGPTPEER = 0x80045430, 0x40045431, 0x80045439, 0x5441
NO_OPS = (TCSBRK, TCSBRKP, TCXONC, TIOCEXCL, TIOCNXCL, TIOCNOTTY)


class DevptsFilesystem(Filesystem):
    name = "devpts"
    # Terminals come and go with their masters: no cached names.
    cache_dentries = False

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.terminals: dict[int, pty.Terminal] = {}
        self.slave_inodes: dict[int, SlaveInode] = {}
        self.root = PtsDir(self)

    def new_terminal(self, task) -> pty.Terminal:
        creds = task.creds
        with self.lock:
            index = next(i for i in range(len(self.terminals) + 1) if i not in self.terminals)
            term = pty.Terminal(index, creds.fsuid, creds.fsgid)
            term.kernel = task.kernel
            self.terminals[index] = term
            self.slave_inodes[index] = SlaveInode(self, term)
        return term

    def forget(self, term: pty.Terminal) -> None:
        with self.lock:
            if self.terminals.get(term.index) is term:
                del self.terminals[term.index]
                del self.slave_inodes[term.index]

    def controlling(self, task) -> pty.Terminal | None:
        """The pty whose session (TIOCSCTTY) is the task's, if any."""
        sid = task.tg.sid()
        with self.lock:
            return next((t for t in self.terminals.values() if t.sid == sid and t.master_open), None)

    def open_master(self, task, loc: Location, flags: int) -> FileDescription:
        """/dev/ptmx's open."""
        return MasterFile(loc, flags, self.new_terminal(task), self)


class PtmxInode(Inode):
    """/dev/pts/ptmx (mode 0666, as runc mounts devpts with ptmxmode=666); /dev/ptmx links here."""

    def __init__(self, fs: DevptsFilesystem) -> None:
        self.fs = fs
        self.ino = fs.next_ino()

    def stat(self) -> Stat:
        t = self.fs.root.ctime
        return Stat(
            stat.S_IFCHR | 0o666, self.ino, self.fs.dev, 1, 0, 0, os.makedev(5, 2), 0, 1024, 0, t, t, t
        )

    def open(self, task, loc: Location, flags: int) -> FileDescription:
        return self.fs.open_master(task, loc, flags)


class PtsDir(Inode):
    def __init__(self, fs: DevptsFilesystem) -> None:
        self.fs = fs
        self.ino = fs.next_ino()
        self.ctime = now_ns()
        self.ptmx = PtmxInode(fs)

    def stat(self) -> Stat:
        t = self.ctime
        return Stat(stat.S_IFDIR | 0o755, self.ino, self.fs.dev, 2, atime_ns=t, mtime_ns=t, ctime_ns=t)

    def lookup(self, name: bytes) -> Inode:
        if name == b"ptmx":
            return self.ptmx
        with self.fs.lock:
            inode = self.fs.slave_inodes.get(int(name)) if name.isdigit() else None
        if inode is None:
            raise Errno(errno.ENOENT)
        return inode

    def listdir(self) -> list[DirEntry]:
        with self.fs.lock:
            slaves = [
                DirEntry(b"%d" % i, node.ino, DT_CHR) for i, node in sorted(self.fs.slave_inodes.items())
            ]
        return [DirEntry(b"ptmx", self.ptmx.ino, DT_CHR), *slaves]

    def open(self, task, loc: Location, flags: int) -> FileDescription:
        return DirectoryFile(loc, flags)


class SlaveInode(Inode):
    def __init__(self, fs: DevptsFilesystem, term: pty.Terminal) -> None:
        self.fs = fs
        self.term = term
        self.ino = fs.next_ino()
        self._mode = stat.S_IFCHR | 0o620
        self.uid, self.gid = term.uid, term.gid
        self.ctime = now_ns()

    def stat(self) -> Stat:
        t = self.ctime
        rdev = os.makedev(PTY_SLAVE_MAJOR, self.term.index)
        return Stat(self._mode, self.ino, self.fs.dev, 1, self.uid, self.gid, rdev, 0, 1024, 0, t, t, t)

    def chmod(self, mode: int) -> None:
        self._mode = stat.S_IFCHR | (mode & 0o7777)

    def chown(self, uid: int, gid: int) -> None:
        self.uid = self.uid if uid == -1 else uid
        self.gid = self.gid if gid == -1 else gid

    def set_times(self, atime_ns: int | None, mtime_ns: int | None) -> None:
        """Terminals keep no times of their own."""

    def open(self, task, loc: Location, flags: int) -> FileDescription:
        term = self.term
        with term.lock:
            if term.locked or not term.master_open:
                raise Errno(errno.EIO)
            term.slaves += 1
            term.slave_ever_opened = True
        return SlaveFile(loc, flags, term)


class _TtyFile(FileDescription):
    """What master and slave share: ioctls, polling."""

    master = False

    def __init__(self, loc: Location, flags: int, term: pty.Terminal) -> None:
        super().__init__(loc, flags)
        self.term = term
        self.waitq = term.master_q if self.master else term.slave_q

    def readiness(self, mask: int) -> int:
        with self.term.lock:
            ready = self.term.master_ready() if self.master else self.term.slave_ready()
        return ready & (mask | POLLHUP | POLLERR)

    def ioctl(self, task, cmd: int, arg: int) -> int:
        term = self.term
        if cmd == TCGETS:
            task.mm.copy_out(arg, term.termios)
        elif cmd in (TCSETS, TCSETSW, TCSETSF):
            new = task.mm.copy_in(arg, pty.TERMIOS.size)
            with term.lock:
                term.termios = new
                if cmd == TCSETSF:
                    term.input.clear()
                    term.line.clear()
            term.changed()
        elif cmd == TIOCGWINSZ:
            task.mm.copy_out(arg, term.winsize)
        elif cmd == TIOCSWINSZ:
            new = task.mm.copy_in(arg, 8)
            changed, term.winsize = new != term.winsize, new
            if changed:
                term.signal_foreground(pty.SIGWINCH)
        elif cmd == FIONREAD:
            with term.lock:
                n = len(term.output) if self.master else len(term.input)
            task.mm.copy_out(arg, struct.pack("<i", n))
        elif cmd == TIOCOUTQ:
            task.mm.copy_out(arg, struct.pack("<i", 0))
        elif cmd == TCFLSH:
            with term.lock:
                if arg in (0, 2):
                    term.input.clear()
                    term.line.clear()
                if arg in (1, 2):
                    term.output.clear()
            term.changed()
        elif cmd == TIOCSCTTY:
            term.sid, term.fg_pgid = task.tg.sid(), task.tg.pgid()
        elif cmd == TIOCGPGRP:
            if not term.sid:
                raise Errno(errno.ENOTTY)
            task.mm.copy_out(arg, struct.pack("<i", term.fg_pgid))
        elif cmd == TIOCSPGRP:
            (pgid,) = struct.unpack("<i", task.mm.copy_in(arg, 4))
            if pgid < 0:
                raise Errno(errno.EINVAL)
            if task.kernel.process_group(pgid) is None:
                raise Errno(errno.EPERM)
            term.fg_pgid = pgid
        elif cmd == TIOCGSID:
            if not term.sid:
                raise Errno(errno.ENOTTY)
            task.mm.copy_out(arg, struct.pack("<i", term.sid))
        elif cmd == TIOCPKT:
            if struct.unpack("<i", task.mm.copy_in(arg, 4))[0]:
                raise Errno(errno.EINVAL)  # packet mode is not supported
        elif cmd not in NO_OPS:
            return self.master_ioctl(task, cmd, arg)
        return 0

    def master_ioctl(self, task, cmd: int, arg: int) -> int:
        raise Errno(errno.ENOTTY)


class MasterFile(_TtyFile):
    master = True

    def __init__(self, loc: Location, flags: int, term: pty.Terminal, fs: DevptsFilesystem) -> None:
        super().__init__(loc, flags, term)
        self.devpts = fs

    def read(self, task, count: int) -> bytes:
        return pty.read_master(task, self.term, count, self.nonblocking) if count else b""

    def write(self, task, data: bytes) -> int:
        return pty.write_master(task, self.term, data, self.nonblocking)

    def master_ioctl(self, task, cmd: int, arg: int) -> int:
        term = self.term
        if cmd == TIOCGPTN:
            task.mm.copy_out(arg, struct.pack("<I", term.index))
        elif cmd == TIOCSPTLCK:
            (lock,) = struct.unpack("<i", task.mm.copy_in(arg, 4))
            term.locked = bool(lock)
        elif cmd == TIOCGPTLCK:
            task.mm.copy_out(arg, struct.pack("<i", int(term.locked)))
        elif cmd == TIOCGPTPEER:
            flags = arg & 0xFFFFFFFF
            if flags & ~(os.O_ACCMODE | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC):
                raise Errno(errno.EINVAL)
            vfs = task.kernel.vfs
            loc = vfs.resolve(task, task.fs.root, b"/dev/pts/%d" % term.index)
            peer = loc.inode.open(task, loc, flags & ~(os.O_NOCTTY | os.O_CLOEXEC))
            return task.fds.install(peer, cloexec=bool(flags & os.O_CLOEXEC))
        else:
            raise Errno(errno.ENOTTY)
        return 0

    def release(self) -> None:
        with self.term.lock:
            self.term.master_open = False
        self.term.changed()
        self.devpts.forget(self.term)


class SlaveFile(_TtyFile):
    def read(self, task, count: int) -> bytes:
        return pty.read_slave(task, self.term, count, self.nonblocking) if count else b""

    def write(self, task, data: bytes) -> int:
        return pty.write_slave(task, self.term, data)

    def release(self) -> None:
        with self.term.lock:
            self.term.slaves -= 1
        self.term.changed()
