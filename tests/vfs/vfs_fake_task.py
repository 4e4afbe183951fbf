"""A stand-in for the kernel's Task, with just what the files half uses (see sentry/CONTRACT.md).

Memory is one flat bytearray at BASE; anything outside it is EFAULT, like an
unmapped address in a real mm.
"""

from __future__ import annotations

import errno
import struct
import threading

from sentry.errors import ERESTARTSYS, Errno
from sentry.kernel.creds import Credentials
from sentry.vfs.fdtable import FDTable
from sentry.vfs.fscontext import FSContext

BASE = 0x10000
SIZE = 1 << 20


class FakeMM:
    def __init__(self) -> None:
        self.mem = bytearray(SIZE)
        self.maps = (
            "00010000-00110000 rw-p 00000000 00:00 0 \n"
            "7ffff000-80000000 rw-p 00000000 00:00 0                          [stack]\n"
        )

    def _check(self, addr: int, n: int) -> int:
        off = addr - BASE
        if off < 0 or off + n > SIZE:
            raise Errno(errno.EFAULT)
        return off

    def copy_in(self, addr: int, n: int) -> bytes:
        off = self._check(addr, n)
        return bytes(self.mem[off : off + n])

    def copy_out(self, addr: int, data: bytes) -> None:
        off = self._check(addr, len(data))
        self.mem[off : off + len(data)] = data

    def read_cstring(self, addr: int, limit: int = 4096) -> bytes:
        off = self._check(addr, 0)
        end = self.mem.find(b"\0", off, min(off + limit, SIZE))
        if end < 0:
            if off + limit > SIZE:
                raise Errno(errno.EFAULT)
            raise Errno(errno.ENAMETOOLONG)
        return bytes(self.mem[off:end])

    def read_iovec(self, addr: int, count: int) -> list[tuple[int, int]]:
        raw = self.copy_in(addr, 16 * count)
        return [struct.unpack_from("<QQ", raw, 16 * i) for i in range(count)]

    def maps_text(self) -> str:
        return self.maps


class FakeThreadGroup:
    def __init__(self, pid: int, leader: FakeTask) -> None:
        self.pid = pid
        self.leader = leader
        self.exe_path = "/bin/busybox"
        self.no_new_privs = False

    def tasks(self) -> list[FakeTask]:
        return [self.leader]

    def main_task(self) -> FakeTask:
        return self.leader

    def cmdline(self) -> bytes:
        return b"busybox\0sh\0"

    def environ(self) -> bytes:
        return b"PATH=/bin\0"

    def parent_pid(self) -> int:
        return 0

    def pgid(self) -> int:
        return self.pid

    def sid(self) -> int:
        return self.pid


class FakeKernel:
    def __init__(self, vfs) -> None:
        self.vfs = vfs
        self.lock = threading.Lock()
        self.groups: dict[int, FakeThreadGroup] = {}
        vfs.procfs.kernel = self

    def thread_group(self, pid: int) -> FakeThreadGroup | None:
        return self.groups.get(pid)

    def thread_groups(self) -> list[FakeThreadGroup]:
        return list(self.groups.values())

    def process_group(self, pgid: int) -> None:
        """No process groups here: terminal job-control ioctls find none (EPERM), signals go nowhere."""
        return None


class FakeTask:
    def __init__(self, kernel: FakeKernel, pid: int, fds: FDTable, fs: FSContext, creds=None) -> None:
        self.kernel = kernel
        self.mm = FakeMM()
        self.fds = fds
        self.fs = fs
        self.creds = creds or Credentials()
        self.tid = pid
        self.comm = "busybox"
        self.tg = FakeThreadGroup(pid, self)
        kernel.groups[pid] = self.tg
        self.signals: list[int] = []
        self.signal_mask = 0
        self.saved_mask = None
        # Set by a test to make the next block() look interrupted.
        self.interrupt = threading.Event()
        self.doorbell = None

    def block(self, waiter, timeout: float | None) -> bool:
        self.doorbell = waiter
        try:
            if self.interrupt.is_set():
                raise Errno(ERESTARTSYS)
            woke = waiter.wait(timeout)
            if self.interrupt.is_set():
                raise Errno(ERESTARTSYS)
            return woke
        finally:
            self.doorbell = None

    def send_signal(self, signo: int) -> None:
        self.signals.append(signo)

    def deliver_interrupt(self) -> None:
        """What signal delivery does to a blocked task."""
        self.interrupt.set()
        if self.doorbell is not None:
            self.doorbell.wake()

    # --- helpers for tests: scratch memory and calling handlers ---------------------
    def put(self, offset: int, data: bytes) -> int:
        addr = BASE + offset
        self.mm.copy_out(addr, data)
        return addr

    def get(self, addr: int, n: int) -> bytes:
        return self.mm.copy_in(addr, n)

    def call(self, handler, *args: int) -> int:
        """Run a handler the way the dispatcher does: an Errno becomes -errno."""
        try:
            return handler(self, *args)
        except Errno as e:
            return -e.code

    def path(self, path: bytes, slot: int = 0) -> int:
        """A NUL-terminated path in scratch memory (slots are 4 KiB apart)."""
        return self.put(0x80000 + slot * 4096, path + b"\0")
