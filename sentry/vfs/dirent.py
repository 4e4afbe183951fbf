"""Directory entries and the linux_dirent64 records getdents64 fills."""

from __future__ import annotations

import stat
import struct
from dataclasses import dataclass

_HEADER = struct.Struct("<QqHB")  # d_ino, d_off, d_reclen, d_type

DT_UNKNOWN, DT_FIFO, DT_CHR, DT_DIR, DT_BLK, DT_REG, DT_LNK, DT_SOCK = 0, 1, 2, 4, 6, 8, 10, 12


def dtype_of(mode: int) -> int:
    return stat.S_IFMT(mode) >> 12


@dataclass(frozen=True)
class DirEntry:
    name: bytes
    ino: int
    type: int


def pack_dirent64(entry: DirEntry, next_offset: int) -> bytes:
    """One record, NUL-terminated and padded to 8 bytes."""
    reclen = (_HEADER.size + len(entry.name) + 1 + 7) & ~7
    body = _HEADER.pack(entry.ino, next_offset, reclen, entry.type) + entry.name
    return body.ljust(reclen, b"\0")


_OLD_HEADER = struct.Struct("<QqH")  # d_ino, d_off, d_reclen; d_type is the record's last byte


def pack_dirent(entry: DirEntry, next_offset: int) -> bytes:
    """One record of the old getdents(2) layout."""
    reclen = (_OLD_HEADER.size + len(entry.name) + 2 + 7) & ~7
    body = (_OLD_HEADER.pack(entry.ino, next_offset, reclen) + entry.name).ljust(reclen - 1, b"\0")
    return body + bytes([entry.type])
