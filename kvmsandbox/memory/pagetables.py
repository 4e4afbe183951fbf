"""4-level x86-64 page tables kept in kernel memory, and how their changes reach the guest.

This host's shadow MMU does not notice host writes to guest page tables
(facts/pvm-native.md §5), so every PTE write is one of two kinds:

* **host write** — allowed only when the entry is not present in the guest's
  view. The shadow MMU never cached a translation for it, so the next guest
  access walks the tables and finds the new entry. Intermediate tables are
  only ever added this way (they are never removed while the tree lives).
* **queued write** — anything that removes or changes a present entry. The
  op is queued; the ring0 trampoline performs it through its kernel-only
  direct map before the address space runs again and then reloads CR3, so
  KVM sees a guest write (emulated or synced) and drops stale translations
  on every vCPU.

`logical(entry)` is the value the guest will see once queued ops applied.
"""

from __future__ import annotations

import struct
import threading
from array import array
from collections.abc import Callable, Iterator

from kvmsandbox.memory.memfile import MemoryFile
from kvmsandbox.platform import PAGE_SIZE, Access

PTE_PRESENT = 1 << 0
PTE_WRITE = 1 << 1
PTE_USER = 1 << 2
PTE_ACCESSED = 1 << 5
PTE_DIRTY = 1 << 6
PTE_NX = 1 << 63
PTE_ADDR_MASK = 0x000F_FFFF_FFFF_F000
# Every level must have U/S=1 on this host, supervisor pages included (pvm-native.md §2).
TABLE_FLAGS = PTE_PRESENT | PTE_WRITE | PTE_USER
ENTRIES = 512

_Q = struct.Struct("<Q")


def leaf_flags(perms: Access) -> int:
    """PTE flags for a page with `perms`; 0 (not present) for no access."""
    if not perms:
        return 0
    flags = PTE_PRESENT | PTE_USER
    if perms & Access.WRITE:
        flags |= PTE_WRITE
    if not perms & Access.EXEC:
        flags |= PTE_NX
    return flags


def _only_grants(old: int, new: int) -> bool:
    """`new` maps the same frame as `old` with at least its rights.

    A stale cached translation then only denies more than the guest tables
    do; the resulting fault makes KVM walk the tables again and pick up the
    new entry, so a host write is enough.
    """
    if not new & PTE_PRESENT or (old ^ new) & PTE_ADDR_MASK:
        return False
    return not (old & PTE_WRITE and not new & PTE_WRITE) and not (new & PTE_NX and not old & PTE_NX)


class KernelMemory:
    """Guest-physical memory for ring0 and page tables: a memory file at a fixed GPA.

    Freed page-table pages are not reusable until the guest has scrubbed
    them (their old contents may still be cached by the shadow MMU), so
    they go through `retire()` and come back via `reclaim()`.
    """

    def __init__(self, gpa_base: int, size: int) -> None:
        self.gpa_base = gpa_base
        self.file = MemoryFile(size, name="kvmsandbox-kernel")
        self.view = self.file.view
        self.qwords = self.view.cast("Q")
        self._lock = threading.Lock()
        self._retired: list[int] = []

    def alloc_page(self) -> int:
        return self.file.allocate(1)

    def gpa(self, offset: int) -> int:
        return self.gpa_base + offset

    def offset(self, gpa: int) -> int:
        return gpa - self.gpa_base

    def read_entry(self, offset: int) -> int:
        return self.qwords[offset >> 3]

    def write_entry(self, offset: int, value: int) -> None:
        self.qwords[offset >> 3] = value

    def retire(self, pages: list[int]) -> None:
        """Page-table pages no longer in use, to be scrubbed by the guest."""
        with self._lock:
            self._retired.extend(pages)

    def has_retired(self) -> bool:
        return bool(self._retired)

    def take_retired(self, limit: int) -> list[int]:
        with self._lock:
            taken, self._retired = self._retired[:limit], self._retired[limit:]
            return taken

    def reclaim(self, pages: list[int]) -> None:
        """Pages the guest scrubbed: all entries are zero in every view."""
        for page in pages:
            self.file.free(page)

    def close(self) -> None:
        self.qwords.release()
        self.file.close()


class PageTables:
    """One 4-level tree rooted at a PML4 page in kernel memory."""

    def __init__(self, kmem: KernelMemory) -> None:
        self.kmem = kmem
        self.root = kmem.alloc_page()
        self.pages = [self.root]
        # entry offset -> value the guest must end up with (see module docstring).
        self.pending: dict[int, int] = {}

    @property
    def root_gpa(self) -> int:
        return self.kmem.gpa(self.root)

    def logical(self, entry: int) -> int:
        value = self.pending.get(entry)
        return self.kmem.read_entry(entry) if value is None else value

    def _next_table(self, entry: int, create: bool) -> int | None:
        value = self.logical(entry)
        if value & PTE_PRESENT:
            return self.kmem.offset(value & PTE_ADDR_MASK)
        if not create:
            return None
        table = self.kmem.alloc_page()
        self.pages.append(table)
        self.kmem.write_entry(entry, self.kmem.gpa(table) | TABLE_FLAGS)
        return table

    def leaf_entry(self, va: int, create: bool) -> int | None:
        """Offset in kernel memory of the level-1 entry for `va` (None if its table is missing)."""
        table = self.root
        for shift in (39, 30, 21):
            entry = table + ((va >> shift) & 0x1FF) * 8
            table = self._next_table(entry, create)
            if table is None:
                return None
        return table + ((va >> 12) & 0x1FF) * 8

    def set_entry(self, entry: int, value: int) -> None:
        """Make the guest see `value` at `entry`, host-writing only when that is safe."""
        if entry in self.pending:
            self.pending[entry] = value
            return
        old = self.kmem.read_entry(entry)
        if not old & PTE_PRESENT or _only_grants(old, value):
            self.kmem.write_entry(entry, value)
        elif old != value:
            self.pending[entry] = value

    def map_page(self, va: int, gpa: int, flags: int) -> None:
        self.set_entry(self.leaf_entry(va, create=True), gpa | flags if flags else 0)

    def leaf_runs(self, va: int, length: int, create: bool) -> Iterator[tuple[int, int, int]]:
        """(va, first leaf entry, count) per level-1 table the range touches; missing tables skipped."""
        end = va + length
        while va < end:
            table_end = min(end, (va | 0x1F_FFFF) + 1)
            entry = self.leaf_entry(va, create)
            if entry is not None:
                yield va, entry, (table_end - va) // PAGE_SIZE
            va = table_end

    def map_range(self, va: int, length: int, gpa: int, flags: int) -> None:
        """Point [va, va+length) at consecutive frames from `gpa` (flags 0: remembered, not present)."""
        qwords = self.kmem.qwords
        for run_va, entry, count in self.leaf_runs(va, length, create=True):
            first = (gpa + run_va - va) | flags if flags else gpa + run_va - va
            values = range(first, first + count * PAGE_SIZE, PAGE_SIZE)
            index = entry >> 3
            if not self.pending and not any(v & PTE_PRESENT for v in qwords[index : index + count]):
                qwords[index : index + count] = array("Q", values)  # all new: one host write
            else:
                for i, value in enumerate(values):
                    self.set_entry(entry + i * 8, value)

    def update_range(self, va: int, length: int, change: Callable[[int], int]) -> None:
        """Apply `change(old_value) -> new_value` to every leaf in the range that holds a frame."""
        for _, entry, count in self.leaf_runs(va, length, create=False):
            for e in range(entry, entry + count * 8, 8):
                old = self.logical(e)
                if old:
                    self.set_entry(e, change(old))

    def translate(self, va: int) -> int | None:
        """The logical leaf value for `va`, or None."""
        entry = self.leaf_entry(va, create=False)
        if entry is None:
            return None
        value = self.logical(entry)
        return value if value & PTE_PRESENT else None

    def take_pending(self) -> dict[int, int]:
        return dict(self.pending)

    def applied(self, ops: dict[int, int]) -> None:
        """The guest performed `ops`; drop those still current."""
        for entry, value in ops.items():
            if self.pending.get(entry) == value:
                del self.pending[entry]
