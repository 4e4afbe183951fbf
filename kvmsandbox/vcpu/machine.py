"""The VM that runs one sandbox: memory slots, ring0 image, kernel direct map.

Guest-physical layout:
  KERNEL_GPA ..  kernel memory (ring0 text, per-vCPU pages, page tables)
  MEMORY_GPA ..  the sandbox's memory file (app pages)
Guest-virtual layout: kvmsandbox/ring0/layout.h.
"""

from __future__ import annotations

import threading

from kvmsandbox import xsave
from kvmsandbox.kvm import Kvm, Vm
from kvmsandbox.memory.memfile import MemoryFile
from kvmsandbox.memory.pagetables import PTE_NX, PTE_PRESENT, PTE_USER, PTE_WRITE, KernelMemory, PageTables
from kvmsandbox.platform import PAGE_SIZE
from kvmsandbox.ring0.layout import LAYOUT, PTMAP_BASE, window_base
from kvmsandbox.ring0.loader import Ring0Image

KERNEL_GPA = 0x100000
MEMORY_GPA = 0x1_0000_0000
KERNEL_SLOT = 0
MEMORY_SLOT = 1
DEFAULT_KERNEL_SIZE = 64 << 20

RO = PTE_PRESENT | PTE_USER | PTE_NX
RX = PTE_PRESENT | PTE_USER
RW = PTE_PRESENT | PTE_USER | PTE_WRITE | PTE_NX
TEXT_PAGES = LAYOUT["TEXT_SIZE"] // PAGE_SIZE


class Machine:
    """A KVM VM with the memory file and kernel memory registered as guest memory."""

    def __init__(self, memory_file: MemoryFile, kernel_size: int = DEFAULT_KERNEL_SIZE) -> None:
        self.memory_file = memory_file
        self.kvm = Kvm()
        self.vm: Vm = self.kvm.create_vm()
        self.kmem = KernelMemory(KERNEL_GPA, kernel_size)
        self.vm.set_user_memory_region(KERNEL_SLOT, KERNEL_GPA, kernel_size, host_address(self.kmem.file))
        self.vm.set_user_memory_region(MEMORY_SLOT, MEMORY_GPA, memory_file.size, host_address(memory_file))
        self.cpuid = self.kvm.supported_cpuid()
        self.xfeatures = self._supported_xfeatures()
        self.image = Ring0Image.load("pvm_native")
        self.text = self.kmem.file.allocate(TEXT_PAGES)
        self.kmem.file.write(self.text, self.image.text)
        self.lock = threading.Lock()
        self.vcpus: list = []  # VirtualCPU, appended by the pool
        self.default_fpu: bytes | None = None  # a fresh vCPU's XSAVE image

        self.direct_map_entry = self._build_direct_map()

    def _build_direct_map(self) -> int:
        """Kernel-only map of all kernel memory at PTMAP_BASE; returns its PML4 entry.

        Reserve its tables first, then map every page (including those
        tables); allocations after this point land inside the mapped range.
        """
        tables = PageTables(self.kmem)
        size = self.kmem.file.size
        for offset in range(0, size, PAGE_SIZE):
            tables.map_page(PTMAP_BASE + offset, self.kmem.gpa(offset), RW)
        return self.kmem.read_entry(tables.root + ((PTMAP_BASE >> 39) & 0x1FF) * 8)

    def _supported_xfeatures(self) -> int:
        """XSAVE components KVM supports for this VM (CPUID leaf 0xD.0 EDX:EAX)."""
        for function, index, eax, _ebx, _ecx, edx in self.cpuid.entries():
            if (function, index) == (0xD, 0):
                return eax | edx << 32
        return xsave.XFEATURE_FP_SSE

    def direct_map_address(self, kmem_offset: int) -> int:
        """Guest VA (kernel tables only) of a kernel-memory byte."""
        return PTMAP_BASE + kmem_offset

    def map_window(self, tables: PageTables, index: int, cpu_pages: dict[str, int], private: int) -> None:
        """Map vCPU `index`'s ring0 window into `tables` (host writes: new entries only)."""
        base = window_base(index)
        for i in range(TEXT_PAGES):
            tables.map_page(
                base + LAYOUT["TEXT_PAGE"] + i * PAGE_SIZE, self.kmem.gpa(self.text + i * PAGE_SIZE), RX
            )
        for name in ("CPU_PAGE", "IDT_PAGE", "GDT_PAGE"):
            tables.map_page(base + LAYOUT[name], self.kmem.gpa(cpu_pages[name]), RO)
        tables.map_page(base + LAYOUT["PRIV_PAGE"], self.kmem.gpa(private), RW)

    def close(self) -> None:
        for vcpu in self.vcpus:
            vcpu.close()
        self.vm.close()
        self.kvm.close()
        self.kmem.close()


def host_address(memory_file: MemoryFile) -> int:
    from kvmsandbox.kvm._kvm import ffi

    buf = ffi.from_buffer(memory_file.map)
    address = int(ffi.cast("uintptr_t", buf))
    ffi.release(buf)
    return address
