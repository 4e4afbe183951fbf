"""A set of disjoint address ranges: what an address space has mapped.

systrap needs it because host mprotect fails (ENOMEM) on a range with holes,
and a failed protect must never pass silently: the Sentry relies on it, for
instance to make pages copy-on-write.
"""

from __future__ import annotations

import bisect


class Ranges:
    """Disjoint half-open [start, end) ranges, sorted by start."""

    def __init__(self) -> None:
        self._items: list[tuple[int, int]] = []

    def add(self, start: int, end: int) -> None:
        self.remove(start, end)
        bisect.insort(self._items, (start, end))

    def remove(self, start: int, end: int) -> None:
        kept = []
        for s, e in self._overlapping(start, end):
            self._items.remove((s, e))
            if s < start:
                kept.append((s, start))
            if e > end:
                kept.append((end, e))
        for item in kept:
            bisect.insort(self._items, item)

    def intersect(self, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of [start, end) that are in the set, merged where adjacent."""
        out: list[tuple[int, int]] = []
        for s, e in self._overlapping(start, end):
            s, e = max(s, start), min(e, end)
            if out and out[-1][1] == s:
                out[-1] = (out[-1][0], e)
            else:
                out.append((s, e))
        return out

    def _overlapping(self, start: int, end: int) -> list[tuple[int, int]]:
        i = bisect.bisect_right(self._items, (start, 1 << 64))
        if i and self._items[i - 1][1] > start:
            i -= 1
        out = []
        while i < len(self._items) and self._items[i][0] < end:
            out.append(self._items[i])
            i += 1
        return out

    def __iter__(self):
        return iter(list(self._items))
