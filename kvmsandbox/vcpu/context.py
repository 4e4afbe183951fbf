"""KVMContext: one app thread on the KVM platform — entry paths, the KVM_RUN loop, exits -> events.

Entry paths (cheapest first; see ring0/pvm_native.S):
* fast: CR3 already this address space's, nothing queued, and RCX/R11 hold
  what SYSCALL left there (a syscall return): RIP=sysret_point.
* utramp: as fast, but RCX/R11 must be restored: the private page holds
  them and the user trampoline reloads them after SYSRETQ.
* slow: queued page-table writes or another address space: slow_entry.

Every exit is validated: it must be one of the trampoline's OUTs, at the
address just after it; anything else is treated as the app's doing.
"""

from __future__ import annotations

import errno
import signal
import struct
import threading

from kvmsandbox.kvm._kvm import lib
from kvmsandbox.memory.address_space import KVMAddressSpace
from kvmsandbox.platform import (
    GPR_NAMES,
    Access,
    Context,
    Event,
    Fault,
    Interrupted,
    PlatformError,
    Regs,
    Syscall,
    is_canonical,
    sanitize_rflags,
)
from kvmsandbox.ring0.layout import LAYOUT, MAX_USER_ADDRESS
from kvmsandbox.ring0.loader import NUM_VECTORS
from kvmsandbox.vcpu import exceptions
from kvmsandbox.vcpu.pool import VCPUPool
from kvmsandbox.vcpu.vcpu import VirtualCPU

KICK_SIGNAL = signal.SIGRTMIN + 2
SUPERVISOR_RFLAGS = 0x2
OP_SCRUB = LAYOUT["OP_SCRUB"]
QUEUE_CAPACITY = (LAYOUT["QUEUE_PAGES"] * 4096 - LAYOUT["Q_OPS"]) // 16
PORT_SYSCALL = LAYOUT["PORT_SYSCALL"]
PORT_APPLIED = LAYOUT["PORT_APPLIED"]
PORT_EXC_BASE = LAYOUT["PORT_EXC_BASE"]
# The slow path saves every GPR but RCX/R11 (SYSRETQ's) in the private page.
PRIV_GPRS = tuple(
    (name, LAYOUT[f"PRIV_{name.upper()}"]) for name in GPR_NAMES if name not in ("rcx", "r11")
)
_FRAME = struct.Struct("<6Q")  # err, rip, cs, rflags, rsp, ss (top of IST1)

_kick_installed = False
_kick_lock = threading.Lock()


def install_kick_handler() -> None:
    """A no-op handler for the kick signal, so it interrupts KVM_RUN without killing us."""
    global _kick_installed
    with _kick_lock:
        if not _kick_installed:
            if lib.kick_install(KICK_SIGNAL) < 0:
                raise OSError("sigaction for the vCPU kick signal failed")
            _kick_installed = True


class KVMContext(Context):
    def __init__(self, pool: VCPUPool) -> None:
        self.pool = pool
        self.machine = pool.machine
        self.image = self.machine.image
        self.exits = self.image.exit_points()
        self.vector_entries = {self.image.vector_entry(v): v for v in range(NUM_VECTORS)}
        self._lock = threading.Lock()
        self._interrupt_pending = False
        self._running_on: VirtualCPU | None = None
        self.exit_generation = 0
        self.last_vcpu: VirtualCPU | None = None
        self.fpu_vcpu: VirtualCPU | None = None  # where this context's FPU state is loaded
        self.fpu_image: bytearray | None = None  # saved state while not loaded anywhere
        self.released = False

    # -- interruption -----------------------------------------------------------------------

    def interrupt(self) -> None:
        with self._lock:
            self._interrupt_pending = True
            self._kick_locked()

    def kick(self) -> None:
        """Make the current KVM_RUN (if any) return soon, without an Interrupted event."""
        with self._lock:
            self._kick_locked()

    def _kick_locked(self) -> None:
        vcpu = self._running_on
        if vcpu is not None:
            vcpu.kvm.run_struct.immediate_exit = 1
            lib.kick_thread(vcpu.tid, KICK_SIGNAL)

    def _take_interrupt(self) -> bool:
        with self._lock:
            pending, self._interrupt_pending = self._interrupt_pending, False
            return pending

    # -- FPU ----------------------------------------------------------------------------------

    def _load_fpu(self, vcpu: VirtualCPU, regs: Regs) -> None:
        with self.pool.lock:
            owner = vcpu.fpu_owner
            if owner is not self:
                if owner is not None:
                    owner.fpu_image = vcpu.kvm.get_xsave()
                    owner.fpu_vcpu = None
                vcpu.kvm.set_xsave(self.fpu_image if self.fpu_image is not None else vcpu.default_fpu)
                vcpu.fpu_owner = self
                self.fpu_vcpu = vcpu
                self.fpu_image = None
        if regs.fpu is not None:
            vcpu.kvm.set_xsave(regs.fpu)
            regs.fpu = None

    def pull_fpu(self) -> bytearray:
        with self.pool.lock:
            if self.fpu_vcpu is not None:
                return self.fpu_vcpu.kvm.get_xsave()
            if self.fpu_image is not None:
                return bytearray(self.fpu_image)
            return bytearray(self.machine.vcpus[0].default_fpu)

    # -- switch -------------------------------------------------------------------------------

    def switch(self, address_space: KVMAddressSpace, regs: Regs) -> Event:
        if self.released:
            raise PlatformError("context released")
        if self._take_interrupt():
            return Interrupted()
        vcpu = self.pool.acquire(self.last_vcpu)
        try:
            vcpu.tid = lib.current_tid()
            self._load_fpu(vcpu, regs)
            return self._run(vcpu, address_space, regs)
        finally:
            self.last_vcpu = vcpu
            self.pool.release(vcpu)

    def _run(self, vcpu: VirtualCPU, asp: KVMAddressSpace, regs: Regs) -> Event:
        while True:
            if not is_canonical(regs.rip) or regs.rip >= MAX_USER_ADDRESS:
                # SYSRETQ cannot go there; the app jumped out of user space.
                return Fault(regs.rip, Access.EXEC, signal.SIGSEGV, exceptions.SEGV_MAPERR, -1, 0)
            private = asp.ensure_window(vcpu)
            with asp.lock:
                sent = self._prepare(vcpu, asp, regs, private)
                asp.active.add(self)
                with self._lock:
                    self._running_on = vcpu
                    if self._interrupt_pending:
                        vcpu.kvm.run_struct.immediate_exit = 1
            try:
                result = vcpu.kvm.run()
            finally:
                with asp.lock:
                    asp.active.discard(self)
                    with self._lock:
                        self._running_on = None
                        vcpu.kvm.run_struct.immediate_exit = 0
                    self.exit_generation += 1
                    asp.lock.notify_all()
            event = self._exit(vcpu, asp, regs, private, sent, result)
            if event is not None:
                return event

    def _prepare(self, vcpu: VirtualCPU, asp: KVMAddressSpace, regs: Regs, private: int) -> tuple | None:
        """Load the entry state; returns what the slow path was given to apply (None: no slow path)."""
        kmem = self.machine.kmem
        rflags = sanitize_rflags(regs.rflags)
        vcpu.set_bases(regs.fs_base, regs.gs_base)
        sr = vcpu.kvm.sync_regs
        ops = asp.tables.take_pending()
        root = asp.tables.root_gpa
        if ops or vcpu.cr3 != root or kmem.has_retired():
            return self._prepare_slow(vcpu, asp, regs, private, rflags, ops)
        for name in GPR_NAMES:
            setattr(sr, name, getattr(regs, name))
        if regs.rcx != regs.rip or regs.r11 != rflags:
            self._write_utramp(kmem, private, regs)
            sr.rcx = vcpu.address("utramp")
        else:
            sr.rcx = regs.rip
        sr.r11 = rflags
        sr.rip = vcpu.address("sysret_point")
        sr.rflags = SUPERVISOR_RFLAGS
        self._mark_dirty(vcpu)
        return None

    def _prepare_slow(self, vcpu, asp, regs, private, rflags, ops) -> tuple:
        kmem = self.machine.kmem
        items = list(ops.items())[:QUEUE_CAPACITY]
        room = QUEUE_CAPACITY - len(items)
        scrub = kmem.take_retired(room) if room > 0 else []
        more = len(items) < len(ops)
        q = vcpu.queue
        qwords = kmem.qwords
        base = (q + LAYOUT["Q_OPS"]) >> 3
        i = base
        for entry, value in items:
            qwords[i] = self.machine.direct_map_address(entry)
            qwords[i + 1] = value
            i += 2
        for page in scrub:
            qwords[i] = self.machine.direct_map_address(page) | OP_SCRUB
            qwords[i + 1] = 0
            i += 2
        qwords[(q + LAYOUT["Q_COUNT"]) >> 3] = (i - base) // 2
        qwords[(q + LAYOUT["Q_TARGET_CR3"]) >> 3] = asp.tables.root_gpa
        qwords[(q + LAYOUT["Q_RFLAGS"]) >> 3] = rflags
        qwords[(q + LAYOUT["Q_MORE"]) >> 3] = 1 if more else 0
        for name, offset in PRIV_GPRS:
            qwords[(private + offset) >> 3] = getattr(regs, name)
        self._write_utramp(kmem, private, regs)
        sr = vcpu.kvm.sync_regs
        sr.rip = vcpu.address("slow_entry")
        sr.rflags = SUPERVISOR_RFLAGS
        self._mark_dirty(vcpu)
        vcpu.cr3 = None  # unknown until the slow path is seen to have finished
        return dict(items), scrub, more

    @staticmethod
    def _write_utramp(kmem, private: int, regs: Regs) -> None:
        qwords = kmem.qwords
        qwords[(private + LAYOUT["PRIV_UT_RCX"]) >> 3] = regs.rcx
        qwords[(private + LAYOUT["PRIV_UT_R11"]) >> 3] = regs.r11
        qwords[(private + LAYOUT["PRIV_UT_RIP"]) >> 3] = regs.rip

    @staticmethod
    def _mark_dirty(vcpu: VirtualCPU) -> None:
        run = vcpu.kvm.run_struct
        run.kvm_valid_regs = lib.KVM_SYNC_X86_REGS
        run.kvm_dirty_regs = lib.KVM_SYNC_X86_REGS

    # -- exits --------------------------------------------------------------------------------

    def _slow_done(self, vcpu: VirtualCPU, asp: KVMAddressSpace, sent: tuple | None) -> None:
        """The slow path ran to completion: its ops are in the guest tables and CR3 is the target."""
        if sent is None:
            return
        ops, scrub, _ = sent
        with asp.lock:
            asp.tables.applied(ops)
        self.machine.kmem.reclaim(scrub)
        vcpu.cr3 = asp.tables.root_gpa

    def _exit(self, vcpu, asp, regs, private, sent, result) -> Event | None:
        run = vcpu.kvm.run_struct
        if result == -errno.EINTR or run.exit_reason == lib.KVM_EXIT_INTR:
            return self._interrupted(vcpu, asp, regs, private, sent)
        if result == -errno.EAGAIN:
            return None
        reason = run.exit_reason
        if reason != lib.KVM_EXIT_IO:
            self._broken(vcpu, f"unexpected exit {reason}")
        sr = vcpu.kvm.sync_regs
        port = vcpu.kvm.io.port
        expected = self.exits.get(port)
        if expected is None or sr.rip != vcpu.window + expected:
            # Not our OUT: the app forged an exit (it cannot, OUT faults in user mode; belt and braces).
            self._capture_user(sr, regs)
            return Fault(regs.rip, Access.NONE, signal.SIGSEGV, exceptions.SI_KERNEL, -1, 0)
        if port == PORT_APPLIED:
            ops, scrub, _ = sent
            with asp.lock:
                asp.tables.applied(ops)
            self.machine.kmem.reclaim(scrub)
            return None  # regs untouched: the next slow entry sends the rest
        self._slow_done(vcpu, asp, sent)
        if port == PORT_SYSCALL:
            return self._syscall(sr, regs)
        return self._exception(vcpu, sr, regs, private, port - PORT_EXC_BASE)

    @staticmethod
    def _capture_user(sr, regs: Regs) -> None:
        for name in GPR_NAMES:
            setattr(regs, name, getattr(sr, name))
        regs.rip = sr.rip
        regs.rflags = sr.rflags

    def _syscall(self, sr, regs: Regs) -> Syscall:
        for name in GPR_NAMES:
            setattr(regs, name, getattr(sr, name))
        regs.rip = sr.rcx
        regs.rflags = sr.r11
        return Syscall(regs.rax, (regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9))

    def _exception(self, vcpu, sr, regs: Regs, private: int, vector: int) -> Fault:
        top = private + 4096 - _FRAME.size
        err, rip, cs, rflags, rsp, _ss = _FRAME.unpack_from(self.machine.kmem.view, top)
        if vector not in exceptions.ERROR_CODE_VECTORS:
            err = 0
        if cs & 3 != 3:
            self._broken(vcpu, f"vector {vector} in ring0 at rip {rip:#x} err {err:#x}")
        for name in GPR_NAMES:
            setattr(regs, name, getattr(sr, name))
        regs.rip, regs.rflags, regs.rsp = rip, rflags, rsp
        if vector == exceptions.PAGE_FAULT:
            address = vcpu.kvm.get_sregs().cr2
            access, code = exceptions.page_fault_access(err)
            return Fault(address, access, signal.SIGSEGV, code, vector, err)
        signo, code = exceptions.vector_signal(vector)
        return Fault(rip, Access.NONE, signo, code, vector, err)

    def _interrupted(self, vcpu, asp, regs, private, sent) -> Event | None:
        """KVM_RUN returned early (kick or host signal): work out where the guest stood."""
        sr = vcpu.kvm.sync_regs
        rip = sr.rip
        offset = rip - vcpu.window
        symbols = self.image.symbols
        if 0 <= offset < LAYOUT["TEXT_SIZE"]:
            if symbols["utramp"] <= offset < symbols["utramp_end"]:
                self._slow_done(vcpu, asp, sent)
                self._capture_user(sr, regs)
                kmem = self.machine.kmem.qwords
                regs.rcx = kmem[(private + LAYOUT["PRIV_UT_RCX"]) >> 3]
                regs.r11 = kmem[(private + LAYOUT["PRIV_UT_R11"]) >> 3]
                regs.rip = kmem[(private + LAYOUT["PRIV_UT_RIP"]) >> 3]
            elif offset == symbols["syscall_entry"]:
                self._slow_done(vcpu, asp, sent)
                return self._syscall(sr, regs)
            elif offset in self.vector_entries:
                self._slow_done(vcpu, asp, sent)
                return self._exception(vcpu, sr, regs, private, self.vector_entries[offset])
            else:
                # Still in sysret_point or the slow path: regs are exactly what we entered with.
                vcpu.cr3 = None
        else:
            self._slow_done(vcpu, asp, sent)
            self._capture_user(sr, regs)
        return Interrupted() if self._take_interrupt() else None

    def _broken(self, vcpu: VirtualCPU, what: str) -> None:
        vcpu.cr3 = None
        raise PlatformError(f"vCPU {vcpu.index}: {what}")

    def release(self) -> None:
        with self.pool.lock:
            if self.fpu_vcpu is not None and self.fpu_vcpu.fpu_owner is self:
                self.fpu_vcpu.fpu_owner = None
            self.fpu_vcpu = None
        self.released = True

