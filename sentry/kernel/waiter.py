"""Wait queues: how a blocked task learns that something it waits for changed.

A task waiting in `Task.block_on` registers its wake event on one or more
queues, re-checks its condition, and sleeps on the event. Whoever changes
the state calls `notify()` after the change; a signal sent to the task sets
the same event, which is what makes every wait interruptible.
"""

from __future__ import annotations

import threading


class WaitQueue:
    """A set of wake events to set when the guarded state changes."""

    __slots__ = ("_lock", "_waiters")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[threading.Event] = set()

    def add(self, event: threading.Event) -> None:
        with self._lock:
            self._waiters.add(event)

    def remove(self, event: threading.Event) -> None:
        with self._lock:
            self._waiters.discard(event)

    def notify(self) -> None:
        """Wake every waiter; each re-checks its own condition."""
        with self._lock:
            waiters = list(self._waiters)
        for event in waiters:
            event.set()

    def __bool__(self) -> bool:
        return bool(self._waiters)
