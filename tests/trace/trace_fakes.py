"""A fake Sentry task for the trace tests: the context provider and app memory the hooks read.

A plain module (not conftest) so test modules can import it by name whichever
test directories share the pytest run.
"""

from __future__ import annotations

import errno
import struct
import types

from sentry.errors import Errno
from sentry.vfs.mount import Location, Mount

MEM_BASE = 0x10000


class FakeMM:
    """App memory: one flat region; anything outside it faults like a bad pointer."""

    def __init__(self, size: int = 1 << 16) -> None:
        self.mem = bytearray(size)
        self.top = MEM_BASE

    def put(self, data: bytes) -> int:
        addr = self.top
        self.mem[addr - MEM_BASE : addr - MEM_BASE + len(data)] = data
        self.top += (len(data) + 15) & ~15
        return addr

    def put_cstring(self, text: str) -> int:
        return self.put(text.encode() + b"\0")

    def put_strings(self, items: list[str]) -> int:
        ptrs = [self.put_cstring(s) for s in items]
        return self.put(struct.pack(f"<{len(ptrs) + 1}Q", *ptrs, 0))

    def copy_in(self, addr: int, length: int) -> bytes:
        off = addr - MEM_BASE
        if off < 0 or off + length > len(self.mem):
            raise Errno(errno.EFAULT)
        return bytes(self.mem[off : off + length])

    def read_cstring(self, addr: int, limit: int = 4096) -> bytes:
        off = addr - MEM_BASE
        if off < 0 or off >= len(self.mem):
            raise Errno(errno.EFAULT)
        end = self.mem.find(b"\0", off, off + limit)
        if end < 0:
            raise Errno(errno.ENAMETOOLONG)
        return bytes(self.mem[off:end])


class FakeFds:
    def __init__(self, paths: dict[int, str]) -> None:
        self.paths = paths

    def get(self, fd: int):
        if fd not in self.paths:
            raise Errno(errno.EBADF)
        return types.SimpleNamespace(path=self.paths[fd])


def _dentry(name: bytes, parent=None):
    return types.SimpleNamespace(name=name, parent=parent)


def make_task(tid: int = 7, pid: int = 5, comm: str = "sh", cwd: bytes = b"work"):
    """A task offering exactly what sentry/seccheck/context.py documents."""
    root = _dentry(b"/")
    mount = Mount(fs=None, root=root)  # type: ignore[arg-type]
    fs = types.SimpleNamespace(root=Location(mount, root), cwd=Location(mount, _dentry(cwd, root)))
    creds = types.SimpleNamespace(ruid=1, euid=2, suid=3, rgid=4, egid=5, sgid=6)
    tg = types.SimpleNamespace(pid=pid, start_time_ns=111, parent_pid=lambda: 1)
    kernel = types.SimpleNamespace(container_id="ctr-1")
    return types.SimpleNamespace(
        tid=tid,
        start_time_ns=222,
        comm=comm,
        creds=creds,
        fs=fs,
        tg=tg,
        kernel=kernel,
        mm=FakeMM(),
        fds=FakeFds({0: "/dev/null", 1: "host:[1]", 3: "/etc"}),
    )
