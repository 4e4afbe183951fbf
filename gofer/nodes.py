"""Gofer nodes: the files a connection has walked to, and their attributes as the wire carries them."""

from __future__ import annotations

import errno
import os
import weakref
from dataclasses import dataclass, field

from gofer import gofer_pb2 as pb


@dataclass(eq=False)
class Node:
    """A file under the root.

    Directories are held open with O_PATH (their fd closes when no id or child
    refers to them); other files are named by (parent fd, name) and re-checked
    by inode number when opened, so a tree of many files costs few gofer fds.
    """

    fd: int | None
    parent: Node | None
    name: bytes
    st: os.stat_result = field(repr=False)

    def __post_init__(self) -> None:
        if self.fd is not None:
            weakref.finalize(self, os.close, self.fd)

    def fresh_stat(self) -> os.stat_result:
        if self.fd is not None:
            return os.fstat(self.fd)
        if self.parent is None:
            raise OSError(errno.ESTALE, "file removed or replaced")
        return os.stat(self.name, dir_fd=self.parent.fd, follow_symlinks=False)


def stat_message(st: os.stat_result) -> pb.Stat:
    return pb.Stat(
        mode=st.st_mode,
        ino=st.st_ino,
        dev=st.st_dev,
        nlink=st.st_nlink,
        uid=st.st_uid,
        gid=st.st_gid,
        rdev=st.st_rdev,
        size=st.st_size,
        blksize=st.st_blksize,
        blocks=st.st_blocks,
        atime_ns=st.st_atime_ns,
        mtime_ns=st.st_mtime_ns,
        ctime_ns=st.st_ctime_ns,
    )
