"""inotify: events about watched files and directories, found by comparing snapshots of their inodes.

The VFS has no change notifications yet (CONTRACT.md, net/events requests),
so each inotify instance with watches re-examines them every SCAN_PERIOD
seconds on its own thread, and also right before a read or readiness check:
a write followed by a read of the inotify fd sees the event at once. A
changed size or mtime is IN_MODIFY, a changed ctime/mode/owner/link count
IN_ATTRIB, a vanished link count IN_DELETE_SELF (then IN_IGNORED). A
directory's entries are compared by name and inode number: a name whose
inode went elsewhere in the directory is IN_MOVED_FROM/IN_MOVED_TO (one
cookie), otherwise IN_DELETE, and a name with a new inode IN_CREATE (so a
log rotated by rename-and-recreate shows as tail -F expects). Events that a
snapshot cannot see (IN_ACCESS, IN_OPEN, IN_CLOSE_*, IN_MOVE_SELF, moves
between directories) are never reported.
"""

from __future__ import annotations

import collections
import dataclasses
import errno
import itertools
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

IN_MODIFY, IN_ATTRIB, IN_MOVED_FROM, IN_MOVED_TO = 0x2, 0x4, 0x40, 0x80
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
_COOKIES = itertools.count(1)


@dataclasses.dataclass
class Snapshot:
    size: int
    mtime_ns: int
    attrs: tuple
    children: dict[bytes, tuple[int, bool]] | None  # name -> (inode number, is a directory); None: not a dir


def snapshot(inode: Any) -> Snapshot | None:
    """What the inode looks like now; None once it is gone."""
    try:
        st = inode.stat()
        children = None
        if stat.S_ISDIR(st.mode):
            children = {e.name: (e.ino, e.type == DT_DIR) for e in inode.listdir()}
    except Errno:
        return None
    return Snapshot(st.size, st.mtime_ns, (st.ctime_ns, st.mode, st.uid, st.gid, st.nlink), children)


@dataclasses.dataclass
class Watch:
    wd: int
    inode: Any
    mask: int
    last: Snapshot

    def changes(self, now: Snapshot | None) -> list[tuple[int, bytes, int]]:
        """(event mask, name, cookie) triples between the last snapshot and now."""
        last = self.last
        if now is None or now.attrs[4] == 0:
            return [(IN_DELETE_SELF, b"", 0)]
        self.last = now
        if now.children is not None and last.children is not None:
            events = entry_changes(last.children, now.children)
            if now.attrs[1:4] != last.attrs[1:4]:
                events.append((IN_ATTRIB | IN_ISDIR, b"", 0))
            return events
        if (now.size, now.mtime_ns) != (last.size, last.mtime_ns):
            return [(IN_MODIFY, b"", 0)]
        if now.attrs != last.attrs:
            return [(IN_ATTRIB, b"", 0)]
        return []


def entry_changes(old: dict, new: dict) -> list[tuple[int, bytes, int]]:
    """Directory events from two {name: (ino, is_dir)} listings: moves (paired by inode), deletes, creates."""
    gone = [n for n in sorted(old) if new.get(n, (None,))[0] != old[n][0]]
    came = {new[n][0]: n for n in sorted(new) if old.get(n, (None,))[0] != new[n][0]}
    events = []
    for name in gone:
        ino, is_dir = old[name]
        flag = IN_ISDIR if is_dir else 0
        target = came.pop(ino, None)
        if target is None:
            events.append((IN_DELETE | flag, name, 0))
        else:
            cookie = next(_COOKIES)
            events += [(IN_MOVED_FROM | flag, name, cookie), (IN_MOVED_TO | flag, target, cookie)]
    for name in sorted(came.values()):
        events.append((IN_CREATE | (IN_ISDIR if new[name][1] else 0), name, 0))
    return events


def pack_event(wd: int, mask: int, name: bytes, cookie: int = 0) -> bytes:
    """struct inotify_event, the name NUL-padded to a multiple of 16 bytes."""
    padded = name.ljust((len(name) // 16 + 1) * 16, b"\0") if name else b""
    return _EVENT.pack(wd, mask, cookie, len(padded)) + padded


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
    def _queue(self, wd: int, mask: int, name: bytes, cookie: int = 0) -> None:
        """Append one event (under _lock), merging it with an identical last one as Linux does."""
        event = pack_event(wd, mask, name, cookie)
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
                for mask, name, cookie in changes:
                    if mask & IN_DELETE_SELF:
                        if self.watches.pop(watch.wd, None) is not None:
                            if watch.mask & IN_DELETE_SELF:
                                self._queue(watch.wd, IN_DELETE_SELF, b"")
                            self._queue(watch.wd, IN_IGNORED, b"")
                            queued = True
                        break
                    if mask & watch.mask & IN_ALL_EVENTS and watch.wd in self.watches:
                        self._queue(watch.wd, mask, name, cookie)
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
