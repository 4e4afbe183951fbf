"""Virtual memory areas: one contiguous range with uniform permissions and backing."""

from __future__ import annotations

import dataclasses
from typing import Protocol

from sentry.mm.frames import PageCache, SharedPages

PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4


class Backing(Protocol):
    """File contents a private mapping is filled from."""

    name: str
    dev: int
    ino: int

    def read(self, offset: int, size: int) -> bytes: ...

    def write(self, offset: int, data: bytes) -> None:
        """Store contents back (MAP_SHARED file mappings); short at the file's end."""

    def attach(self) -> None:
        """One more VMA maps these contents."""

    def detach(self) -> None:
        """A VMA mapping these contents went away."""


class BytesBacking:
    """File contents held in memory (executables, the vDSO image), optionally with a shared page cache."""

    def __init__(
        self, data: bytes, name: str, dev: int = 0, ino: int = 0, cache: PageCache | None = None
    ) -> None:
        self.data = data
        self.name = name
        self.dev = dev
        self.ino = ino
        self.cache = cache

    def read(self, offset: int, size: int) -> bytes:
        return self.data[offset : offset + size]

    def write(self, offset: int, data: bytes) -> None:
        raise NotImplementedError("in-memory contents are read-only")

    def attach(self) -> None:
        pass

    def detach(self) -> None:
        pass


@dataclasses.dataclass
class VMA:
    start: int
    end: int
    prot: int
    shared: bool = False
    backing: Backing | None = None  # file contents (private file mapping)
    offset: int = 0  # file offset of `start`
    shared_pages: SharedPages | None = None  # MAP_SHARED: the object's frames
    shared_pgoff: int = 0  # page index within shared_pages of `start`
    name: str = ""  # [heap], [stack], [vdso], [vvar] or a path
    growsdown: bool = False
    max_prot: int = PROT_READ | PROT_WRITE | PROT_EXEC  # mprotect may not exceed this (read-only fds)
    locked: bool = False
    writeback: bool = False  # MAP_SHARED file mapping: page contents go back to the file (see MM)

    @property
    def length(self) -> int:
        return self.end - self.start

    def split(self, at: int) -> VMA:
        """Cut at `at`; self keeps [start, at), the returned VMA is [at, end)."""
        delta = at - self.start
        upper = dataclasses.replace(self, start=at, offset=self.offset + delta)
        upper.shared_pgoff = self.shared_pgoff + (delta >> 12)
        self._attach()
        self.end = at
        return upper

    def copy(self) -> VMA:
        dup = dataclasses.replace(self)
        self._attach()
        return dup

    def _attach(self) -> None:
        if self.shared_pages is not None:
            self.shared_pages.attach()
        if self.backing is not None:
            self.backing.attach()

    def drop(self) -> None:
        """This VMA is gone: release its references to shared pages and file contents."""
        if self.shared_pages is not None:
            self.shared_pages.detach()
        if self.backing is not None:
            self.backing.detach()

    def can_merge(self, upper: VMA) -> bool:
        """Whether `upper` directly follows and could be one VMA with self."""
        return (
            self.end == upper.start
            and self.prot == upper.prot
            and self.shared == upper.shared
            and self.backing is upper.backing
            and (self.backing is None or self.offset + self.length == upper.offset)
            and self.shared_pages is upper.shared_pages
            and (self.shared_pages is None or self.shared_pgoff + (self.length >> 12) == upper.shared_pgoff)
            and self.name == upper.name
            and self.growsdown == upper.growsdown
            and self.max_prot == upper.max_prot
            and self.writeback == upper.writeback
        )

    def perms_text(self) -> str:
        return (
            ("r" if self.prot & PROT_READ else "-")
            + ("w" if self.prot & PROT_WRITE else "-")
            + ("x" if self.prot & PROT_EXEC else "-")
            + ("s" if self.shared else "p")
        )
