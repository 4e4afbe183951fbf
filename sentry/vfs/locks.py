"""Advisory file locks between the sandbox's processes: flock(2), POSIX record locks and OFD locks.

As in Linux, locks belong to the file (keyed by st_dev and st_ino, so every
open of it, through any path, sees the same locks), and have owners:
- flock and OFD locks are owned by the open file description, and go away
  when its last reference does (FileDescription.decref);
- POSIX (fcntl F_SETLK) locks are owned by the fd table ("files_struct" in
  Linux) and go away when that table closes *any* fd of the file, the
  infamous POSIX rule (FDTable.close / close_all / on_exec call
  LOCKS.closed_by).
There is one table, LOCKS, for the whole Sentry process: keys hold st_dev
numbers, which are allocated process-wide, so two sandboxes never share one.
Blocking requests sleep on one wait queue that every unlock notifies; the
sleep is interruptible (a signal gives EINTR/restart as the dispatcher
decides). Deadlocks between two POSIX owners waiting on each other are
reported as EDEADLK, as Linux does for the simple cycle.
"""

from __future__ import annotations

import errno
import threading
from dataclasses import dataclass

from sentry.errors import Errno
from sentry.vfs.waiter import POLLIN, WaitQueue, wait_for

F_RDLCK, F_WRLCK, F_UNLCK = 0, 1, 2
LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN = 1, 2, 4, 8
END = (1 << 63) - 1  # "to end of file"


@dataclass
class RecordLock:
    owner: object
    start: int
    end: int  # inclusive
    type: int
    pid: int

    def overlaps(self, start: int, end: int) -> bool:
        return self.start <= end and start <= self.end


class LockTable:
    """All the locks of one VFS."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[tuple, list[RecordLock]] = {}
        self._flocks: dict[tuple, dict[object, int]] = {}
        # Which owner each blocked POSIX owner waits for (deadlock detection).
        self._waiting: dict[object, object] = {}
        self.changed = WaitQueue()

    # --- record locks (POSIX and OFD) ------------------------------------------------
    def _conflict(self, key: tuple, owner: object, start: int, end: int, kind: int) -> RecordLock | None:
        for held in self._records.get(key, ()):
            if held.owner is not owner and held.overlaps(start, end) and F_WRLCK in (kind, held.type):
                return held
        return None

    def test(self, key: tuple, owner: object, start: int, end: int, kind: int) -> RecordLock | None:
        """F_GETLK: the first lock that would block this one, or None."""
        with self._lock:
            return self._conflict(key, owner, start, end, kind)

    def _replace(self, key: tuple, owner: object, start: int, end: int, kind: int, pid: int) -> None:
        """Caller holds self._lock: the owner's locks over [start, end] become `kind` (or nothing)."""
        kept = []
        for held in self._records.get(key, ()):
            if held.owner is not owner or not held.overlaps(start, end):
                kept.append(held)
                continue
            if held.start < start:
                kept.append(RecordLock(owner, held.start, start - 1, held.type, held.pid))
            if held.end > end:
                kept.append(RecordLock(owner, end + 1, held.end, held.type, held.pid))
        if kind != F_UNLCK:
            kept.append(RecordLock(owner, start, end, kind, pid))
        if kept:
            self._records[key] = kept
        else:
            self._records.pop(key, None)

    def _would_deadlock(self, owner: object, blocker: object) -> bool:
        seen = set()
        while blocker is not None and id(blocker) not in seen:
            if blocker is owner:
                return True
            seen.add(id(blocker))
            blocker = self._waiting.get(blocker)
        return False

    def set_record(
        self, task, key: tuple, owner: object, start: int, end: int, kind: int, *, wait: bool
    ) -> None:
        """F_SETLK(W) / F_OFD_SETLK(W); EAGAIN when it conflicts and wait is False."""

        def attempt() -> bool | None:
            with self._lock:
                held = self._conflict(key, owner, start, end, kind) if kind != F_UNLCK else None
                if held is None:
                    self._waiting.pop(owner, None)
                    self._replace(key, owner, start, end, kind, task.tg.pid)
                    return True
                if not wait:
                    raise Errno(errno.EAGAIN)
                if self._would_deadlock(owner, held.owner):
                    raise Errno(errno.EDEADLK)
                self._waiting[owner] = held.owner
                return None

        try:
            wait_for(task, self.changed, POLLIN, attempt)
        finally:
            with self._lock:
                self._waiting.pop(owner, None)
        self.changed.notify(POLLIN)

    def closed_by(self, table: object, file) -> None:
        """An fd table closed an fd of file: its POSIX locks on the file go (cheap when it has none)."""
        with self._lock:
            if not any(h.owner is table for held in self._records.values() for h in held):
                return
        try:
            key = lock_key(file)
        except Errno:
            return  # a file that cannot say what it is (its process is gone) was never locked
        self.release_owner(key, table)

    def released(self, file) -> None:
        """The description's last reference went: its flock and OFD locks go."""
        for key in file.lock_keys:
            self.flock_release(key, file)
            self.release_owner(key, file)

    def release_owner(self, key: tuple, owner: object) -> None:
        """Every record lock the owner holds on the file (POSIX close rule, OFD last close)."""
        with self._lock:
            if not any(held.owner is owner for held in self._records.get(key, ())):
                return
            self._replace(key, owner, 0, END, F_UNLCK, 0)
        self.changed.notify(POLLIN)

    # --- flock -------------------------------------------------------------------------
    def flock(self, task, key: tuple, owner: object, operation: int) -> None:
        if operation & LOCK_UN:
            self.flock_release(key, owner)
            return
        kind = LOCK_EX if operation & LOCK_EX else LOCK_SH

        def attempt() -> bool | None:
            with self._lock:
                holders = self._flocks.setdefault(key, {})
                others = [k for o, k in holders.items() if o is not owner]
                if LOCK_EX in others or (kind == LOCK_EX and others):
                    if operation & LOCK_NB:
                        raise Errno(errno.EWOULDBLOCK)
                    return None
                holders[owner] = kind
                return True

        with self._lock:
            # A conversion drops the old lock first, as Linux does (so it can be lost to a waiter).
            holders = self._flocks.get(key)
            converting = holders is not None and holders.get(owner) not in (None, kind)
            if converting:
                del holders[owner]
        if converting:
            self.changed.notify(POLLIN)
        wait_for(task, self.changed, POLLIN, attempt)

    def flock_release(self, key: tuple, owner: object) -> None:
        with self._lock:
            holders = self._flocks.get(key)
            if holders is None or holders.pop(owner, None) is None:
                return
            if not holders:
                del self._flocks[key]
        self.changed.notify(POLLIN)


def lock_key(file) -> tuple:
    """The identity locks attach to: the file, whichever path or description reaches it."""
    st = file.loc.inode.stat()
    return st.dev, st.ino


LOCKS = LockTable()
