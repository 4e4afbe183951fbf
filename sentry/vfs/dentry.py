"""Dentries: the name tree the path walker moves through, caching inode lookups."""

from __future__ import annotations

import errno
import threading

from sentry.errors import Errno
from sentry.vfs.inode import Inode


class Dentry:
    """A name bound to an inode. Anonymous dentries (pipes, host stdio) have no parent.

    Children are cached when the filesystem allows it, misses too (a None entry),
    so a $PATH search does not ask the gofer again for every command; every change
    to a directory goes through the VFS, which forgets the names it touched.
    """

    __slots__ = ("name", "parent", "inode", "_children", "_pinned", "_lock", "__weakref__")

    def __init__(self, name: bytes, inode: Inode, parent: Dentry | None = None) -> None:
        self.name = name
        self.inode = inode
        self.parent = parent
        self._children: dict[bytes, Dentry | None] = {}
        self._pinned: list[Dentry] = []
        self._lock = threading.Lock()

    def lookup(self, name: bytes) -> Dentry:
        """The child dentry for name; raises the inode's errno (ENOENT, ENOTDIR)."""
        with self._lock:
            cached = name in self._children
            child = self._children.get(name)
        if child is not None:
            return child
        if cached:
            raise Errno(errno.ENOENT)
        cache = self.inode.fs.cache_dentries
        try:
            child = Dentry(name, self.inode.lookup(name), self)
        except Errno as e:
            if e.code == errno.ENOENT and cache:
                with self._lock:
                    self._children.setdefault(name, None)
            raise
        if cache:
            with self._lock:
                existing = self._children.get(name)
                if existing is None:
                    self._children[name] = child
                else:
                    child = existing
        return child

    def pin(self, name: bytes, inode: Inode) -> Dentry:
        """Insert a child the inode itself does not list: a mount point missing from the root."""
        child = Dentry(name, inode, self)
        with self._lock:
            self._children[name] = child
            self._pinned.append(child)
        return child

    def hold(self, name: bytes) -> Dentry:
        """The child for name, kept even where the filesystem caches nothing: a mount will sit on it."""
        child = self.lookup(name)
        with self._lock:
            return self._children.setdefault(name, child) or child

    def pinned(self) -> list[Dentry]:
        """Children that exist only here (listed by getdents beside the inode's own)."""
        with self._lock:
            return list(self._pinned)

    def forget(self, name: bytes) -> None:
        """Drop a cached child after unlink/rename changed the directory."""
        with self._lock:
            self._children.pop(name, None)

    def move(self, name: bytes, new_parent: Dentry, new_name: bytes) -> None:
        """After a rename: the cached child keeps its identity (open cwds, mounts) under its new name."""
        with self._lock:
            child = self._children.pop(name, None)
        new_parent.forget(new_name)
        if child is None:
            return
        child.name, child.parent = new_name, new_parent
        with new_parent._lock:
            new_parent._children[new_name] = child
