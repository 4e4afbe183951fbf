"""timerfd: a timer whose expirations are counted and read as a u64, with poll readiness.

The sandbox's timer thread (sentry.kernel.timers) fires it; each firing adds
the expirations it covers (1 + overruns) and wakes readers and pollers.
Absolute CLOCK_REALTIME deadlines are converted to the monotonic clock when
armed (a later change of the realtime clock does not move them).
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import threading
import time

from sentry.errors import Errno
from sentry.kernel.timers import Timer, TimerWheel
from sentry.vfs.file import FileDescription
from sentry.vfs.fs.anon import ANON_INODES, AnonInode
from sentry.vfs.waiter import POLLIN, WaitQueue, wait_for

CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME = 0, 1, 7
CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM = 8, 9
CLOCKS = (CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM)
REALTIME_CLOCKS = (CLOCK_REALTIME, CLOCK_REALTIME_ALARM)
TFD_TIMER_ABSTIME = 1
MAX_TICKS = (1 << 64) - 1


def clock_now(clock: int) -> float:
    """The clock's current value in seconds (boot time is the monotonic clock here)."""
    return time.time() if clock in REALTIME_CLOCKS else time.monotonic()


class TimerFD(FileDescription):
    def __init__(self, wheel: TimerWheel, clock: int, flags: int) -> None:
        inode = AnonInode(ANON_INODES, stat.S_IFREG | 0o600)
        super().__init__(ANON_INODES.location(inode, b"anon_inode:[timerfd]"), os.O_RDWR | flags)
        self.clock = clock
        self.ticks = 0
        self.waitq = WaitQueue()
        self._lock = threading.Lock()
        self.timer = Timer(wheel, self._fire)

    def _fire(self) -> None:
        with self._lock:
            self.ticks = min(MAX_TICKS, self.ticks + 1 + self.timer.overrun)
            self.timer.overrun = 0
        self.waitq.notify(POLLIN)

    def settime(self, value: float, interval: float, absolute: bool) -> tuple[float, float]:
        """Arm (value 0: disarm); returns the old (remaining, interval)."""
        old = self.gettime()
        with self._lock:
            self.ticks = 0
        if value == 0:
            self.timer.set(None, 0.0)
        else:
            delay = value - clock_now(self.clock) if absolute else value
            self.timer.set(time.monotonic() + max(0.0, delay), interval)
        return old

    def gettime(self) -> tuple[float, float]:
        remaining = self.timer.remaining()
        if remaining is None:
            return (0.0, 0.0)
        return (max(remaining, 1e-9), self.timer.interval)

    def read(self, task, count: int) -> bytes:
        if count < 8:
            raise Errno(errno.EINVAL)

        def attempt() -> bytes | None:
            with self._lock:
                ticks, self.ticks = self.ticks, 0
            if ticks:
                return struct.pack("<Q", ticks)
            if self.nonblocking:
                raise Errno(errno.EAGAIN)
            return None

        return wait_for(task, self.waitq, POLLIN, attempt)

    def readiness(self, mask: int) -> int:
        with self._lock:
            return POLLIN & mask if self.ticks else 0

    def release(self) -> None:
        self.timer.set(None, 0.0)
