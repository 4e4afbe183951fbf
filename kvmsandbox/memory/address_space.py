"""KVM address spaces: page tables plus per-vCPU ring0 windows, and TLB shootdown.

Unmap and protect only queue page-table writes (see pagetables.py); they
are applied by whichever vCPU next enters this address space. Contexts of
this address space that are running right now are kicked out and waited
for, so by the time unmap returns no thread can still reach the old pages.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from kvmsandbox.memory.pagetables import PTE_ADDR_MASK, PTE_PRESENT, PageTables, leaf_flags
from kvmsandbox.platform import PAGE_SIZE, Access, AddressSpace

if TYPE_CHECKING:
    from kvmsandbox.vcpu.pool import VCPUPool
    from kvmsandbox.vcpu.vcpu import VirtualCPU

SHOOTDOWN_WAIT_S = 5.0


def _unmapped(_old: int) -> int:
    return 0


class KVMAddressSpace(AddressSpace):
    def __init__(self, pool: VCPUPool, memory_gpa: int, min_address: int, max_address: int) -> None:
        self.pool = pool
        machine = self.machine = pool.machine
        self.memory_gpa = memory_gpa
        self.min_address = min_address
        self.max_address = max_address
        self.tables = PageTables(machine.kmem)
        self.private: dict[int, int] = {}  # vCPU index -> private page (kernel memory offset)
        self.lock = threading.Lock()
        self.left = threading.Condition(self.lock)  # a context left KVM_RUN (notified during shootdowns)
        self.shootdowns = 0
        self.active: set = set()  # contexts inside KVM_RUN in this address space
        self.released = False

    def _check_range(self, addr: int, length: int) -> None:
        if addr % PAGE_SIZE or length % PAGE_SIZE or length <= 0:
            raise ValueError(f"unaligned or empty range {addr:#x}+{length:#x}")
        if addr < self.min_address or addr + length > self.max_address:
            raise ValueError(f"range {addr:#x}+{length:#x} outside user space")
        if self.released:
            raise ValueError("address space released")

    def map(self, addr: int, length: int, file_offset: int, perms: Access) -> None:
        self._check_range(addr, length)
        if file_offset % PAGE_SIZE or file_offset < 0 or file_offset + length > self.machine.memory_file.size:
            raise ValueError(f"file range {file_offset:#x}+{length:#x} outside the memory file")
        with self.lock:
            self.tables.map_range(addr, length, self.memory_gpa + file_offset, leaf_flags(perms))
            self._shootdown_locked()

    def unmap(self, addr: int, length: int) -> None:
        self._check_range(addr, length)
        with self.lock:
            self.tables.update_range(addr, length, _unmapped)
            self._shootdown_locked()

    def protect(self, addr: int, length: int, perms: Access) -> None:
        """Entries keep their frame while not present (PROT_NONE), so access can come back."""
        self._check_range(addr, length)
        flags = leaf_flags(perms)
        with self.lock:
            self.tables.update_range(addr, length, lambda old: (old & PTE_ADDR_MASK) | flags)
            self._shootdown_locked()

    def translate(self, addr: int) -> int | None:
        """Memory-file offset mapped at `addr` (present entries only)."""
        with self.lock:
            value = self.tables.translate(addr)
        if value is None or not value & PTE_PRESENT:
            return None
        return (value & PTE_ADDR_MASK) - self.memory_gpa + (addr % PAGE_SIZE)

    def ensure_window(self, vcpu: VirtualCPU) -> int:
        """The private page of `vcpu`'s window in this address space, mapping the window first time."""
        page = self.private.get(vcpu.index)
        if page is None:
            with self.lock:
                page = self.machine.kmem.alloc_page()
                self.machine.map_window(self.tables, vcpu.index, vcpu.pages, page)
                self.private[vcpu.index] = page
        return page

    def _shootdown_locked(self) -> None:
        """Kick every context running here and wait until each has left the guest once."""
        if not self.tables.pending or not self.active:
            return
        generations = {ctx: ctx.exit_generation for ctx in self.active}
        self.shootdowns += 1
        try:
            for ctx in generations:
                ctx.kick()
            self.left.wait_for(
                lambda: all(
                    ctx not in self.active or ctx.exit_generation != gen for ctx, gen in generations.items()
                ),
                timeout=SHOOTDOWN_WAIT_S,
            )
        finally:
            self.shootdowns -= 1

    def release(self) -> None:
        with self.lock:
            if self.released:
                return
            if self.active:
                raise RuntimeError("address space released while a context runs in it")
            self.released = True
        kmem = self.machine.kmem
        # A vCPU may still sit on these tables (its CR3 is only changed by its next entry).
        self.pool.evacuate(self.tables.root_gpa)
        kmem.retire(self.tables.pages)
        for page in self.private.values():
            kmem.file.free(page)
        self.private.clear()
