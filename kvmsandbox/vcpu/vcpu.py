"""One vCPU: its per-vCPU guest pages, descriptor tables, kernel page tables and MSRs.

Per vCPU (facts/pvm-native.md §3, §5): its own PV control page, its own TSS
and exception stack (IST1, in the address space's private page), its own
IDT pointing into its own window, and its own kernel page tables (the only
tables that map the page-table direct map and the op queue).
"""

from __future__ import annotations

import struct

from kvmsandbox.kvm import (
    MSR_FS_BASE,
    MSR_GS_BASE,
    MSR_KERNEL_GS_BASE,
    MSR_LSTAR,
    MSR_PVM_CONTROL,
    MSR_STAR,
    MSR_SYSCALL_MASK,
)
from kvmsandbox.kvm._kvm import lib
from kvmsandbox.memory.pagetables import PageTables
from kvmsandbox.platform import PAGE_SIZE
from kvmsandbox.ring0.layout import LAYOUT, PTMAP_BASE, window_base
from kvmsandbox.ring0.loader import NUM_VECTORS
from kvmsandbox.vcpu.machine import RW, Machine

PARK_ATTEMPTS = 8
PORT_PARKED = LAYOUT["PORT_PARKED"]
CR0 = 0x80050033  # PG | AM | WP | NE | ET | MP | PE
CR4 = 0x20  # PAE
EFER = 0xD01  # NXE | LMA | LME | SCE
STAR = 0x0023_0010_0000_0000  # SYSRET: CS 0x33 / SS 0x2b; SYSCALL: CS 0x10 / SS 0x18
# Cleared on SYSCALL so the trampoline never runs single-stepped or with DF/AC/NT set.
SYSCALL_MASK = 0x44500  # TF | DF | NT | AC
PVM_CONTROL_ENABLE = 0x400
# Flag bit 4: the hypervisor stores the address of each #PF it delivers at PV control page + 8,
# which saves a KVM_GET_SREGS (~6.6 µs) per page fault. Found by experiment (docs/ring0.md).
PVM_CONTROL_CR2 = 0x10
PVM_CR2_OFFSET = 8

KERNEL_CS, KERNEL_DS, TSS_SELECTOR = 0x10, 0x18, 0x40
GDT = (
    0,
    0,
    0x00AF9B000000FFFF,  # 0x10 kernel code, 64-bit
    0x00CF93000000FFFF,  # 0x18 kernel data
    0x00CFFB000000FFFF,  # 0x23 user code, 32-bit (SYSRET layout)
    0x00CFF3000000FFFF,  # 0x2b user data
    0x00AFFB000000FFFF,  # 0x33 user code, 64-bit
    0,
)
TSS_LIMIT = 103
USER_DPL_VECTORS = (3, 4)  # int3 and into are legal from user mode


class VirtualCPU:
    """A vCPU plus what the host tracks about its guest state."""

    def __init__(self, machine: Machine, index: int) -> None:
        self.machine = machine
        self.index = index
        self.window = window_base(index)
        kmem = machine.kmem
        self.pages = {name: kmem.alloc_page() for name in ("CPU_PAGE", "IDT_PAGE", "GDT_PAGE")}
        self.kernel_private = kmem.alloc_page()
        self.queue = kmem.file.allocate(LAYOUT["QUEUE_PAGES"])
        self.pvm_page = kmem.alloc_page()
        self.kernel_tables = self._build_kernel_tables()
        self._write_cpu_page()
        self._write_idt()
        self._write_gdt_tss()
        self.kvm = machine.vm.create_vcpu(index)
        self.kvm.set_cpuid2(machine.cpuid)
        self.kvm.run_struct.kvm_valid_regs = lib.KVM_SYNC_X86_REGS
        self._set_sregs()
        self._set_msrs()
        if machine.default_fpu is None:
            machine.default_fpu = bytes(self.kvm.get_xsave())

        symbols = machine.image.symbols
        self.sysret_point = self.window + symbols["sysret_point"]
        self.utramp = self.window + symbols["utramp"]
        self.utramp_tf = self.window + symbols["utramp_tf"]
        self.utramp_end = self.window + symbols["utramp_end"]
        # Host-side knowledge of guest state, to skip redundant work on entry.
        self.cr3: int | None = None
        self.fs_base = 0
        self.gs_base = 0
        self.fpu_owner: object | None = None
        self.tid = 0
        self.user_mode = False  # stopped by a kick while in user mode (virtual CPL 3)
        self.entering_kernel = False  # sent through enter_kernel to get back to ring0
        self.broken = False  # hit a state it cannot resume from; the pool replaces it
        # Page-table roots the hardware CR3 may hold right now (one, except while a slow
        # entry that was cut short may or may not have switched). Tables in here must not be freed.
        self.maybe_roots = {self.kernel_tables.root_gpa}

    def address(self, name: str) -> int:
        """Guest VA of a ring0 symbol in this vCPU's window."""
        return self.window + self.machine.image.symbols[name]

    def _build_kernel_tables(self) -> PageTables:
        machine = self.machine
        tables = PageTables(machine.kmem)
        machine.map_window(tables, self.index, self.pages, self.kernel_private)
        for i in range(LAYOUT["QUEUE_PAGES"]):
            va = self.window + LAYOUT["QUEUE_PAGE"] + i * PAGE_SIZE
            tables.map_page(va, machine.kmem.gpa(self.queue + i * PAGE_SIZE), RW)
        machine.kmem.write_entry(tables.root + ((PTMAP_BASE >> 39) & 0x1FF) * 8, machine.direct_map_entry)
        return tables

    def _write_cpu_page(self) -> None:
        kmem = self.machine.kmem
        kmem.write_entry(self.pages["CPU_PAGE"] + LAYOUT["CPU_K_CR3"], self.kernel_tables.root_gpa)

    def _write_idt(self) -> None:
        idt = bytearray(PAGE_SIZE)
        for vector in range(NUM_VECTORS):
            handler = self.window + self.machine.image.vector_entry(vector)
            dpl = 3 if vector in USER_DPL_VECTORS else 0
            type_attr = 0x80 | (dpl << 5) | 0xE  # present, 64-bit interrupt gate
            struct.pack_into(
                "<HHBBHII", idt, vector * 16,
                handler & 0xFFFF, KERNEL_CS, 1, type_attr, (handler >> 16) & 0xFFFF, handler >> 32, 0,
            )  # fmt: skip
        self.machine.kmem.file.write(self.pages["IDT_PAGE"], bytes(idt))

    def _write_gdt_tss(self) -> None:
        tss_va = self.window + LAYOUT["GDT_PAGE"] + LAYOUT["TSS_OFFSET"]
        tss_low = (
            (TSS_LIMIT & 0xFFFF)
            | ((tss_va & 0xFFFFFF) << 16)
            | (0x89 << 40)
            | (((tss_va >> 24) & 0xFF) << 56)
        )
        gdt = struct.pack(f"<{len(GDT)}Q", *GDT) + struct.pack("<QQ", tss_low, tss_va >> 32)
        stack_top = self.window + LAYOUT["PRIV_PAGE"] + PAGE_SIZE
        tss = bytearray(TSS_LIMIT + 1)
        struct.pack_into("<Q", tss, 4, stack_top)  # RSP0
        struct.pack_into("<Q", tss, 0x24, stack_top)  # IST1
        struct.pack_into("<H", tss, 0x66, TSS_LIMIT + 1)  # no I/O bitmap: user OUT faults
        page = bytearray(PAGE_SIZE)
        page[: len(gdt)] = gdt
        page[LAYOUT["TSS_OFFSET"] : LAYOUT["TSS_OFFSET"] + len(tss)] = tss
        self.machine.kmem.file.write(self.pages["GDT_PAGE"], bytes(page))
        self.gdt_limit = len(gdt) - 1

    def _set_sregs(self) -> None:
        sregs = self.kvm.get_sregs()
        _segment(sregs.cs, KERNEL_CS, type_=0xB, long_mode=True)
        for seg in (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss):
            _segment(seg, KERNEL_DS, type_=0x3, long_mode=False)
        tr = sregs.tr
        tr.base = self.window + LAYOUT["GDT_PAGE"] + LAYOUT["TSS_OFFSET"]
        tr.limit = TSS_LIMIT
        tr.selector = TSS_SELECTOR
        tr.type = 0xB
        tr.present = 1
        tr.dpl = tr.db = tr.s = tr.l = tr.g = tr.avl = tr.unusable = 0
        sregs.ldt.unusable = 1
        sregs.ldt.present = 0
        sregs.gdt.base = self.window + LAYOUT["GDT_PAGE"]
        sregs.gdt.limit = self.gdt_limit
        sregs.idt.base = self.window + LAYOUT["IDT_PAGE"]
        sregs.idt.limit = 256 * 16 - 1
        sregs.cr0 = CR0
        sregs.cr3 = self.kernel_tables.root_gpa
        sregs.cr4 = CR4
        sregs.efer = EFER
        self.kvm.set_sregs(sregs)

    def _set_msrs(self) -> None:
        msrs = [
            (MSR_LSTAR, self.address("syscall_entry")),
            (MSR_STAR, STAR),
            (MSR_SYSCALL_MASK, SYSCALL_MASK),
        ]
        if self.kvm.set_msrs(msrs) != len(msrs):
            raise OSError("KVM_SET_MSRS refused the SYSCALL MSRs")
        control = self.machine.kmem.gpa(self.pvm_page) | PVM_CONTROL_ENABLE | PVM_CONTROL_CR2
        if self.kvm.set_msrs([(MSR_PVM_CONTROL, control)]) != 1:
            raise OSError("KVM_SET_MSRS refused the PVM control MSR: not a kvm_pvm native-mode host")

    def set_bases(self, fs_base: int, gs_base: int) -> None:
        """Load the user FS/GS bases if they changed since the last entry.

        The hypervisor exchanges MSR_GS_BASE and MSR_KERNEL_GS_BASE on some
        user/supervisor transitions (as SWAPGS would), and which of the two
        the app sees next is not visible from here. Ring0 never uses GS, so
        both hold the app's value and the exchange cannot matter.
        """
        if fs_base != self.fs_base or gs_base != self.gs_base:
            msrs = [(MSR_FS_BASE, fs_base), (MSR_GS_BASE, gs_base), (MSR_KERNEL_GS_BASE, gs_base)]
            if self.kvm.set_msrs(msrs) != len(msrs):
                raise OSError("KVM_SET_MSRS refused FS/GS base")
            self.fs_base, self.gs_base = fs_base, gs_base

    def fault_address(self) -> int:
        """CR2 of the last page fault delivered to the guest (written by the hypervisor)."""
        return self.machine.kmem.qwords[(self.pvm_page + PVM_CR2_OFFSET) >> 3]

    def park(self) -> None:
        """Move this idle vCPU onto its kernel tables, in ring0 (before the tables it is on are freed)."""
        image = self.machine.image
        exits = image.exit_points()
        for _ in range(PARK_ATTEMPTS):
            run = self.kvm.run_struct
            regs = self.kvm.sync_regs
            regs.rip = self.window + image.symbols["enter_kernel" if self.user_mode else "park_entry"]
            regs.rflags = 0x202 if self.user_mode else 0x2
            run.kvm_dirty_regs = lib.KVM_SYNC_X86_REGS
            result = self.kvm.run()
            if result < 0 or run.exit_reason != lib.KVM_EXIT_IO:
                continue  # a stray kick: state unchanged, try again
            port = self.kvm.io.port
            if regs.rip != self.window + exits.get(port, -1):
                break
            self.user_mode = False
            if port == PORT_PARKED:
                self.cr3 = self.kernel_tables.root_gpa
                self.maybe_roots = {self.cr3}
                return
        self.broken = True
        raise OSError(f"vCPU {self.index} could not be parked")

    def close(self) -> None:
        self.kvm.close()


def _segment(seg: object, selector: int, type_: int, long_mode: bool) -> None:
    seg.base = 0
    seg.limit = 0xFFFFFFFF
    seg.selector = selector
    seg.type = type_
    seg.present = 1
    seg.dpl = 0
    seg.db = 0 if long_mode else 1
    seg.s = 1
    seg.l = 1 if long_mode else 0
    seg.g = 1
    seg.avl = 0
    seg.unusable = 0
