"""File attributes and the two ABI layouts the app reads them in: struct stat and struct statx."""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass

# struct stat on x86-64 (144 bytes).
_STAT = struct.Struct("<QQQIIIIQqqqqqqqqq24x")
# struct statx (256 bytes): header, four statx_timestamps, dev numbers, padding.
_STATX = struct.Struct("<IIQIIIHxxQQQQ" + "qIxxxx" * 4 + "IIII112x")

STATX_BASIC_STATS = 0x7FF


def now_ns() -> int:
    return time.time_ns()


@dataclass
class Stat:
    mode: int
    ino: int
    dev: int
    nlink: int = 1
    uid: int = 0
    gid: int = 0
    rdev: int = 0
    size: int = 0
    blksize: int = 4096
    blocks: int = 0
    atime_ns: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0

    def pack(self) -> bytes:
        """struct stat, as fstat/newfstatat write it."""
        a, m, c = (divmod(t, 1_000_000_000) for t in (self.atime_ns, self.mtime_ns, self.ctime_ns))
        return _STAT.pack(
            self.dev, self.ino, self.nlink, self.mode, self.uid, self.gid, 0, self.rdev,
            self.size, self.blksize, self.blocks, a[0], a[1], m[0], m[1], c[0], c[1],
        )  # fmt: skip

    def pack_statx(self) -> bytes:
        """struct statx with the basic fields filled (no birth time)."""
        stamps = []
        for t in (self.atime_ns, 0, self.ctime_ns, self.mtime_ns):
            stamps.extend(divmod(t, 1_000_000_000))
        return _STATX.pack(
            STATX_BASIC_STATS, self.blksize, 0, self.nlink, self.uid, self.gid, self.mode & 0xFFFF,
            self.ino, self.size, self.blocks, 0, *stamps,
            os.major(self.rdev), os.minor(self.rdev), os.major(self.dev), os.minor(self.dev),
        )  # fmt: skip
