"""One timer thread for the whole sandbox: interval timers, POSIX timers, alarm.

Callbacks run on the timer thread and only queue signals (they must not block).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentry.kernel.threadgroup import ThreadGroup

log = logging.getLogger(__name__)


class Timer:
    """A (re)armable timer: fires `callback()` at `deadline`, then every `interval` seconds if non-zero."""

    def __init__(
        self, wheel: TimerWheel, callback: Callable[[], None], owner: ThreadGroup | None = None
    ) -> None:
        self.wheel = wheel
        self.callback = callback
        self.owner = owner
        self.deadline: float | None = None
        self.interval = 0.0
        self.overrun = 0
        self.generation = 0

    def set(self, deadline: float | None, interval: float) -> tuple[float | None, float]:
        """Arm (deadline None: disarm); returns the previous (remaining seconds or None, interval)."""
        return self.wheel.arm(self, deadline, interval)

    def remaining(self) -> float | None:
        with self.wheel.cond:
            return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())


class TimerWheel:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.heap: list[tuple[float, int, int, Timer]] = []
        self.seq = itertools.count()
        self.timers: set[Timer] = set()
        self.thread = threading.Thread(target=self._run, name="sentry-timers", daemon=True)
        self.thread.start()

    def arm(self, timer: Timer, deadline: float | None, interval: float) -> tuple[float | None, float]:
        with self.cond:
            old = (
                None if timer.deadline is None else max(0.0, timer.deadline - time.monotonic()),
                timer.interval,
            )
            timer.generation += 1
            timer.deadline = deadline
            timer.interval = interval
            timer.overrun = 0
            if deadline is not None:
                self.timers.add(timer)
                heapq.heappush(self.heap, (deadline, next(self.seq), timer.generation, timer))
                self.cond.notify()
            else:
                self.timers.discard(timer)
            return old

    def cancel_group(self, tg: ThreadGroup) -> None:
        with self.cond:
            for timer in [t for t in self.timers if t.owner is tg]:
                timer.generation += 1
                timer.deadline = None
                self.timers.discard(timer)

    def _run(self) -> None:
        while True:
            with self.cond:
                while True:
                    now = time.monotonic()
                    while self.heap and self.heap[0][3].generation != self.heap[0][2]:
                        heapq.heappop(self.heap)
                    if self.heap and self.heap[0][0] <= now:
                        _deadline, _seq, _gen, timer = heapq.heappop(self.heap)
                        break
                    self.cond.wait(None if not self.heap else self.heap[0][0] - now)
                if timer.interval > 0:
                    missed = int((now - timer.deadline) / timer.interval)
                    timer.overrun += missed
                    timer.deadline += (missed + 1) * timer.interval
                    heapq.heappush(self.heap, (timer.deadline, next(self.seq), timer.generation, timer))
                else:
                    timer.deadline = None
                    self.timers.discard(timer)
            try:
                timer.callback()
            except Exception:
                log.exception("timer callback failed")
