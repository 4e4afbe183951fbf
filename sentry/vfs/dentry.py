"""Dentries: the name tree the path walker moves through, caching inode lookups."""

from __future__ import annotations

import threading

from sentry.vfs.inode import Inode


class Dentry:
    """A name bound to an inode. Anonymous dentries (pipes, host stdio) have no parent."""

    __slots__ = ("name", "parent", "inode", "_children", "_lock", "__weakref__")

    def __init__(self, name: bytes, inode: Inode, parent: Dentry | None = None) -> None:
        self.name = name
        self.inode = inode
        self.parent = parent
        self._children: dict[bytes, Dentry] = {}
        self._lock = threading.Lock()

    def lookup(self, name: bytes) -> Dentry:
        """The child dentry for name; raises the inode's errno (ENOENT, ENOTDIR)."""
        with self._lock:
            child = self._children.get(name)
        if child is not None:
            return child
        child = Dentry(name, self.inode.lookup(name), self)
        if self.inode.fs.cache_dentries:
            with self._lock:
                child = self._children.setdefault(name, child)
        return child

    def pin(self, name: bytes, inode: Inode) -> Dentry:
        """Insert a child the inode itself does not list: a mount point missing from the root."""
        child = Dentry(name, inode, self)
        with self._lock:
            self._children[name] = child
        return child

    def forget(self, name: bytes) -> None:
        """Drop a cached child after unlink/rename changed the directory."""
        with self._lock:
            self._children.pop(name, None)
