"""Futexes: wait/wake/requeue/wake-op with bitsets, private (per-MM) and shared (per frame) keys."""

from __future__ import annotations

import errno
import threading
from typing import TYPE_CHECKING

from sentry.errors import Errno

if TYPE_CHECKING:
    from sentry.kernel.task import Task

BITSET_MATCH_ANY = 0xFFFFFFFF


class _Waiter:
    __slots__ = ("task", "key", "bitset", "woken")

    def __init__(self, task: Task, key: tuple, bitset: int) -> None:
        self.task = task
        self.key = key
        self.bitset = bitset
        self.woken = False


class Futexes:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queues: dict[tuple, list[_Waiter]] = {}

    @staticmethod
    def key(task: Task, addr: int, private: bool) -> tuple:
        if addr & 3:
            raise Errno(errno.EINVAL)
        if private:
            return (id(task.mm), addr)
        # Shared: the memory-file location, which every process mapping the page agrees on.
        return ("shared", task.mm.frame_of(addr))

    def wait(
        self, task: Task, addr: int, value: int, deadline: float | None, bitset: int, private: bool
    ) -> int:
        """Sleep while *addr == value; `deadline` is time.monotonic()-based."""
        import time

        if not bitset:
            raise Errno(errno.EINVAL)
        key = self.key(task, addr, private)
        waiter = _Waiter(task, key, bitset)
        with self.lock:
            if task.mm.read_u32(addr) != value & 0xFFFFFFFF:
                raise Errno(errno.EAGAIN)
            self.queues.setdefault(key, []).append(waiter)
        timeout = None if deadline is None else deadline - time.monotonic()
        try:
            task.block_on((), lambda: True if waiter.woken else None, timeout)
        except Errno:
            with self.lock:
                if waiter.woken:
                    return 0
                queue = self.queues.get(waiter.key, [])
                if waiter in queue:
                    queue.remove(waiter)
                    if not queue:
                        del self.queues[waiter.key]
            raise
        return 0

    def _wake_key(self, key: tuple, count: int, bitset: int) -> int:
        queue = self.queues.get(key)
        if not queue:
            return 0
        woken = 0
        for waiter in list(queue):
            if woken >= count:
                break
            if waiter.bitset & bitset:
                queue.remove(waiter)
                waiter.woken = True
                waiter.task.waker.set()
                woken += 1
        if not queue:
            del self.queues[key]
        return woken

    def wake(
        self, task: Task, addr: int, count: int, bitset: int = BITSET_MATCH_ANY, private: bool = True
    ) -> int:
        if not bitset:
            raise Errno(errno.EINVAL)
        key = self.key(task, addr, private)
        with self.lock:
            return self._wake_key(key, count, bitset)

    def requeue(
        self, task: Task, addr: int, addr2: int, wake: int, requeue: int, expect: int | None, private: bool
    ) -> int:
        key = self.key(task, addr, private)
        key2 = self.key(task, addr2, private)
        with self.lock:
            if expect is not None and task.mm.read_u32(addr) != expect & 0xFFFFFFFF:
                raise Errno(errno.EAGAIN)
            done = self._wake_key(key, wake, BITSET_MATCH_ANY)
            queue = self.queues.get(key, [])
            moved = 0
            while queue and moved < requeue:
                waiter = queue.pop(0)
                waiter.key = key2
                self.queues.setdefault(key2, []).append(waiter)
                moved += 1
            if not queue:
                self.queues.pop(key, None)
            return done + moved

    def wake_op(
        self, task: Task, addr: int, addr2: int, wake: int, wake2: int, op: int, private: bool
    ) -> int:
        key = self.key(task, addr, private)
        key2 = self.key(task, addr2, private)
        kind, cmp = op >> 28 & 7, op >> 24 & 15
        oparg, cmparg = op >> 12 & 0xFFF, op & 0xFFF
        if op >> 31 & 1:
            oparg = 1 << (oparg & 31)
        if kind > 4 or cmp > 5:
            raise Errno(errno.ENOSYS)
        with self.lock:
            old = task.mm.read_u32(addr2)
            new = (oparg, old + oparg, old | oparg, old & ~oparg, old ^ oparg)[kind] & 0xFFFFFFFF
            task.mm.write_u32(addr2, new)
            done = self._wake_key(key, wake, BITSET_MATCH_ANY)
            signed_old = old - (1 << 32) if old >= 1 << 31 else old
            if (
                signed_old == cmparg,
                signed_old != cmparg,
                signed_old < cmparg,
                signed_old <= cmparg,
                signed_old > cmparg,
                signed_old >= cmparg,
            )[cmp]:
                done += self._wake_key(key2, wake2, BITSET_MATCH_ANY)
            return done
