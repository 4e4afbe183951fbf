"""sockfs: the anonymous filesystem socket descriptions live on ("socket:[N]" in /proc/*/fd)."""

from __future__ import annotations

import stat

from sentry.vfs.fs.anon import AnonFilesystem, AnonInode
from sentry.vfs.mount import Location

SOCKFS = AnonFilesystem("sockfs")


def socket_location() -> Location:
    """A fresh socket inode's location: fstat shows S_IFSOCK, readlink shows socket:[ino]."""
    inode = AnonInode(SOCKFS, stat.S_IFSOCK | 0o777)
    return SOCKFS.location(inode, b"socket:[%d]" % inode.ino)
