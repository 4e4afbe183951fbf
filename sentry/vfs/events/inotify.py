"""inotify: events about watched files and directories, found by comparing snapshots of their inodes.

The VFS has no change notifications yet (CONTRACT.md, net/events requests),
so each inotify instance with watches re-examines them every SCAN_PERIOD
seconds on its own thread, and also right before a read or readiness check:
a write followed by a read of the inotify fd sees the event at once. A
changed size or mtime is IN_MODIFY, a changed ctime/mode/owner/link count
IN_ATTRIB, a vanished link count IN_DELETE_SELF (then IN_IGNORED), and a
directory's new or missing names IN_CREATE/IN_DELETE. Events that a
snapshot cannot see (IN_ACCESS, IN_OPEN, IN_CLOSE_*) are never reported,
and a rename shows as a delete and a create.
"""

from __future__ import annotations

import collections
import dataclasses
import errno
import os
import stat
import struct
import threading
from typing import Any

from sentry.errors import Errno
from sentry.vfs.dirent import DT_DIR
from sentry.vfs.file import FileDescription
from sentry.vfs.fs.anon import ANON_INODES, AnonInode
from sentry.vfs.waiter import POLLIN, WaitQueue, wait_for

IN_MODIFY, IN_ATTRIB = 0x2, 0x4
IN_CREATE, IN_DELETE, IN_DELETE_SELF = 0x100, 0x200, 0x400
IN_Q_OVERFLOW, IN_IGNORED = 0x4000, 0x8000
IN_ONLYDIR, IN_DONT_FOLLOW, IN_EXCL_UNLINK = 0x1000000, 0x2000000, 0x4000000
IN_MASK_CREATE, IN_MASK_ADD, IN_ISDIR, IN_ONESHOT = 0x10000000, 0x20000000, 0x40000000, 0x80000000
IN_ALL_EVENTS = 0xFFF
VALID_MASK = IN_ALL_EVENTS | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK | IN_MASK_CREATE | IN_MASK_ADD
VALID_MASK |= IN_ONESHOT
MAX_QUEUED = 16384
SCAN_PERIOD = 0.1
FIONREAD = 0x541B
_EVENT = struct.Struct("<iIII")


@dataclasses.dataclass
class Snapshot:
    size: int
    mtime_ns: int
    attrs: tuple
    children: dict[bytes, bool] | None  # name -> is a directory; None for non-directories


def snapshot(inode: Any) -> Snapshot | None:
    """What the inode looks like now; None once it is gone."""
    try:
        st = inode.stat()
        children = None
        if stat.S_ISDIR(st.mode):
            children = {e.name: e.type == DT_DIR for e in inode.listdir()}
    except Errno:
        return None
    return Snapshot(st.size, st.mtime_ns, (st.ctime_ns, st.mode, st.uid, st.gid, st.nlink), children)


@dataclasses.dataclass
class Watch:
    wd: int
    inode: Any
    mask: int
    last: Snapshot

    def changes(self, now: Snapshot | None) -> list[tuple[int, bytes]]:
        """(event mask, name) pairs between the last snapshot and now."""
        last = self.last
        if now is None or now.attrs[4] == 0:
            return [(IN_DELETE_SELF, b"")]
        self.last = now
        events = []
        if now.children is not None and last.children is not None:
            for name in now.children.keys() - last.children.keys():
                events.append((IN_CREATE | (IN_ISDIR if now.children[name] else 0), name))
            for name in last.children.keys() - now.children.keys():
                events.append((IN_DELETE | (IN_ISDIR if last.children[name] else 0), name))
            if now.attrs[1:4] != last.attrs[1:4]:
                events.append((IN_ATTRIB | IN_ISDIR, b""))
        elif (now.size, now.mtime_ns) != (last.size, last.mtime_ns):
            events.append((IN_MODIFY, b""))
        elif now.attrs != last.attrs:
            events.append((IN_ATTRIB, b""))
        return events


def pack_event(wd: int, mask: int, name: bytes) -> bytes:
    """struct inotify_event, the name NUL-padded to a multiple of 16 bytes."""
    padded = name.ljust((len(name) // 16 + 1) * 16, b"\0") if name else b""
    return _EVENT.pack(wd, mask, 0, len(padded)) + padded


class InotifyFD(FileDescription):
    def __init__(self, flags: int) -> None:
        inode = AnonInode(ANON_INODES, stat.S_IFREG | 0o600)
        super().__init__(ANON_INODES.location(inode, b"anon_inode:inotify"), os.O_RDONLY | flags)
        self.waitq = WaitQueue()
        self.events: collections.deque[bytes] = collections.deque()
        self.watches: dict[int, Watch] = {}
        self._next_wd = 1
        self._lock = threading.Lock()
        self._scan_lock = threading.Lock()  # one scan at a time: each compares with the last snapshot
        self._stop = threading.Event()
        self._scanner: threading.Thread | None = None

    # --- watches ---------------------------------------------------------------------
    def add_watch(self, inode: Any, mask: int) -> int:
        with self._lock:
            for watch in self.watches.values():
                if watch.inode is inode:
                    if mask & IN_MASK_CREATE:
                        raise Errno(errno.EEXIST)
                    watch.mask = (watch.mask | mask) if mask & IN_MASK_ADD else mask
                    return watch.wd
            first = snapshot(inode)
            if first is None:
                raise Errno(errno.ENOENT)
            wd = self._next_wd
            self._next_wd += 1
            self.watches[wd] = Watch(wd, inode, mask, first)
            if self._scanner is None:
                self._scanner = threading.Thread(target=self._scan_loop, name="inotify", daemon=True)
                self._scanner.start()
        return wd

    def rm_watch(self, wd: int) -> None:
        with self._lock:
            if self.watches.pop(wd, None) is None:
                raise Errno(errno.EINVAL)
            self._queue(wd, IN_IGNORED, b"")
        self.waitq.notify(POLLIN)

    # --- finding events --------------------------------------------------------------
    def _queue(self, wd: int, mask: int, name: bytes) -> None:
        """Append one event (under _lock), merging it with an identical last one as Linux does."""
        event = pack_event(wd, mask, name)
        if self.events and self.events[-1] == event:
            return
        if len(self.events) >= MAX_QUEUED:
            overflow = pack_event(-1, IN_Q_OVERFLOW, b"")
            if self.events[-1] != overflow:
                self.events.append(overflow)
            return
        self.events.append(event)

    def scan(self) -> None:
        with self._scan_lock:
            self._scan()

    def _scan(self) -> None:
        with self._lock:
            watches = list(self.watches.values())
        found = [(w, w.changes(snapshot(w.inode))) for w in watches]
        queued = False
        with self._lock:
            for watch, changes in found:
                for mask, name in changes:
                    if mask & IN_DELETE_SELF:
                        if self.watches.pop(watch.wd, None) is not None:
                            if watch.mask & IN_DELETE_SELF:
                                self._queue(watch.wd, IN_DELETE_SELF, b"")
                            self._queue(watch.wd, IN_IGNORED, b"")
                            queued = True
                        break
                    if mask & watch.mask & IN_ALL_EVENTS and watch.wd in self.watches:
                        self._queue(watch.wd, mask, name)
                        queued = True
                        if watch.mask & IN_ONESHOT:
                            del self.watches[watch.wd]
                            self._queue(watch.wd, IN_IGNORED, b"")
                            break
        if queued:
            self.waitq.notify(POLLIN)

    def _scan_loop(self) -> None:
        while not self._stop.wait(SCAN_PERIOD):
            self.scan()

    # --- FileDescription -------------------------------------------------------------
    def read(self, task, count: int) -> bytes:
        def attempt() -> bytes | None:
            self.scan()
            with self._lock:
                if self.events and len(self.events[0]) > count:
                    raise Errno(errno.EINVAL)
                out = bytearray()
                while self.events and len(out) + len(self.events[0]) <= count:
                    out += self.events.popleft()
            if out:
                return bytes(out)
            if self.nonblocking:
                raise Errno(errno.EAGAIN)
            return None

        return wait_for(task, self.waitq, POLLIN, attempt)

    def readiness(self, mask: int) -> int:
        self.scan()
        with self._lock:
            return POLLIN & mask if self.events else 0

    def ioctl(self, task, cmd: int, arg: int) -> int:
        if cmd != FIONREAD:
            raise Errno(errno.ENOTTY)
        self.scan()
        with self._lock:
            n = sum(len(e) for e in self.events)
        task.mm.copy_out(arg, struct.pack("<i", min(n, 0x7FFFFFFF)))
        return 0

    def release(self) -> None:
        self._stop.set()
        with self._lock:
            self.watches.clear()
            self.events.clear()
