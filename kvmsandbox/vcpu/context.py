"""KVMContext: one app thread on the KVM platform — entry paths, the KVM_RUN loop, exits -> events.

Entry paths (cheapest first; see ring0/pvm_native.S):
* fast: CR3 already this address space's, nothing queued, and RCX/R11 hold
  what SYSCALL left there (a syscall return): RIP=sysret_point.
* utramp: as fast, but RCX/R11 must be restored: the private page holds
  them and the user trampoline reloads them after SYSRETQ.
* slow: queued page-table writes or another address space: slow_entry.
* user: the vCPU was kicked while in user mode, so it still is: registers
  are simply loaded and it goes on in user mode. If it needs ring0 work
  first, it is sent through enter_kernel (a SYSCALL) to get there.

Every exit is validated: it must be one of the trampoline's OUTs, at the
address just after it; anything else is treated as the app's doing.
"""

from __future__ import annotations

import errno
import operator
import signal
import struct
import threading
from array import array

from kvmsandbox import xsave
from kvmsandbox.kvm._kvm import ffi, lib
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
PRIV_GPRS = tuple((name, LAYOUT[f"PRIV_{name.upper()}"]) for name in GPR_NAMES if name not in ("rcx", "r11"))
_FRAME = struct.Struct("<6Q")  # err, rip, cs, rflags, rsp, ss (top of IST1)
_UT_RCX = LAYOUT["PRIV_UT_RCX"] >> 3
_UT_R11 = LAYOUT["PRIV_UT_R11"] >> 3
_UT_RIP = LAYOUT["PRIV_UT_RIP"] >> 3
_UT_FRAME = LAYOUT["PRIV_UT_FRAME"] >> 3
USER_CS, USER_SS = 0x33, 0x2B
RFLAGS_TF = 0x100
# Set in kvm_dirty_regs before each entry so KVM loads the sync regs (kvm_valid_regs, set once
# at vCPU creation, makes it store them back on every exit).
SYNC_REGS = lib.KVM_SYNC_X86_REGS
XSAVE_SIZE = ffi.sizeof("struct kvm_xsave")
# struct kvm_regs: the 16 GPRs in GPR_NAMES order, then rip, rflags.
_KVM_REGS = struct.Struct("<18Q")
_KVM_RCX = GPR_NAMES.index("rcx") * 8
_KVM_R11 = GPR_NAMES.index("r11") * 8
_gprs_of = operator.attrgetter(*GPR_NAMES)


def _load_regs(buf, regs: Regs) -> tuple[int, ...]:
    """Copy the vCPU's GPRs into `regs`; returns all 18 values (rip, rflags last)."""
    values = _KVM_REGS.unpack_from(buf)
    regs.__dict__.update(zip(GPR_NAMES, values[:16], strict=True))
    return values


def _store_regs(buf, regs: Regs, rip: int, rflags: int, rcx: int, r11: int) -> None:
    _KVM_REGS.pack_into(buf, 0, *_gprs_of(regs), rip, rflags)
    _Q.pack_into(buf, _KVM_RCX, rcx)
    _Q.pack_into(buf, _KVM_R11, r11)


_Q = struct.Struct("<Q")

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
        self._interrupt_pending = False
        self._tid_ident: int | None = None
        self._tid = 0
        self._running_on: VirtualCPU | None = None
        self.exit_generation = 0
        self.last_vcpu: VirtualCPU | None = None
        self.fpu_vcpu: VirtualCPU | None = None  # where this context's FPU state is loaded
        self.fpu_image: bytearray | None = None  # saved state while not loaded anywhere
        self.released = False

    # -- interruption -----------------------------------------------------------------------
    # No lock: the switching thread publishes _running_on and then reads the
    # flag, interrupt() sets the flag and then reads _running_on; under the
    # GIL one of the two always sees the other. A late kick at most makes a
    # later KVM_RUN return early, which the run loop treats as spurious.

    def interrupt(self) -> None:
        self._interrupt_pending = True
        self.kick()

    def kick(self) -> None:
        """Make the current KVM_RUN (if any) return soon, without an Interrupted event."""
        vcpu = self._running_on
        if vcpu is not None:
            vcpu.kvm.run_struct.immediate_exit = 1
            lib.kick_thread(vcpu.tid, KICK_SIGNAL)

    def _take_interrupt(self) -> bool:
        if self._interrupt_pending:
            self._interrupt_pending = False
            return True
        return False

    # -- FPU ----------------------------------------------------------------------------------

    def _claim_fpu(self, vcpu: VirtualCPU) -> None:
        """Make `vcpu` hold this context's FPU state (the pool calls this under its lock).

        Claiming together with acquiring means no other context can take the
        vCPU in between and see a stale owner.
        """
        owner = vcpu.fpu_owner
        if owner is self:
            return
        if owner is not None:
            owner.fpu_image = vcpu.kvm.get_xsave()
            owner.fpu_vcpu = None
        image = self.fpu_image
        if self.fpu_vcpu is not None:
            # Still loaded in the vCPU we ran on last (the pool took it away to park it): move it.
            image = self.fpu_vcpu.kvm.get_xsave()
            self.fpu_vcpu.fpu_owner = None
        vcpu.kvm.set_xsave(image if image is not None else self.machine.default_fpu)
        vcpu.fpu_owner = self
        self.fpu_vcpu = vcpu
        self.fpu_image = None

    def pull_fpu(self) -> bytearray:
        with self.pool.lock:
            if self.fpu_vcpu is not None:
                return self.fpu_vcpu.kvm.get_xsave()
            if self.fpu_image is not None:
                return bytearray(self.fpu_image)
            return bytearray(self.machine.default_fpu)

    # -- switch -------------------------------------------------------------------------------

    def switch(self, address_space: KVMAddressSpace, regs: Regs) -> Event:
        if self.released:
            raise PlatformError("context released")
        if self._take_interrupt():
            return Interrupted()
        vcpu = self.pool.acquire(self.last_vcpu, self._claim_fpu)
        try:
            vcpu.tid = self._thread_tid()
            if regs.fpu is not None:
                vcpu.kvm.set_xsave(xsave.sanitize(regs.fpu, XSAVE_SIZE, self.machine.xfeatures))
                regs.fpu = None
            return self._run(vcpu, address_space, regs)
        finally:
            self.last_vcpu = vcpu
            self.pool.release(vcpu)

    def _thread_tid(self) -> int:
        """Host tid of the calling thread (a task keeps its thread, so this is cached)."""
        ident = threading.get_ident()
        if self._tid_ident != ident:
            self._tid_ident, self._tid = ident, lib.current_tid()
        return self._tid

    def _run(self, vcpu: VirtualCPU, asp: KVMAddressSpace, regs: Regs) -> Event:
        while True:
            if regs.rip >= MAX_USER_ADDRESS:
                # SYSRETQ cannot go there (non-canonical addresses are all above it either).
                return Fault(regs.rip, Access.EXEC, signal.SIGSEGV, exceptions.SEGV_MAPERR, -1, 0)
            private = asp.ensure_window(vcpu)
            with asp.lock:
                sent = self._prepare(vcpu, asp, regs, private)
                asp.active.add(self)
                self._running_on = vcpu
                if self._interrupt_pending:
                    vcpu.kvm.run_struct.immediate_exit = 1
            try:
                result = vcpu.kvm.run()
            finally:
                with asp.lock:
                    asp.active.discard(self)
                    self._running_on = None
                    vcpu.kvm.run_struct.immediate_exit = 0
                    self.exit_generation += 1
                    if asp.shootdowns:
                        asp.left.notify_all()
            event = self._exit(vcpu, asp, regs, private, sent, result)
            if event is not None:
                return event

    def _prepare(self, vcpu: VirtualCPU, asp: KVMAddressSpace, regs: Regs, private: int) -> tuple | None:
        """Load the entry state; returns what the slow path was given to apply (None: no slow path)."""
        # The hot path of every switch: kept free of calls that only forward (this is Python's
        # share of the round trip).
        rflags = sanitize_rflags(regs.rflags)
        if regs.fs_base != vcpu.fs_base or regs.gs_base != vcpu.gs_base:
            vcpu.set_bases(regs.fs_base, regs.gs_base)
        ops = asp.tables.pending
        ring0_work = bool(ops) or vcpu.cr3 != asp.tables.root_gpa or self.machine.kmem.has_retired()
        if vcpu.user_mode:
            if ring0_work:
                vcpu.kvm.sync_regs.rip = vcpu.address("enter_kernel")
                vcpu.entering_kernel = True
            else:
                _store_regs(vcpu.kvm.sync_regs_buffer, regs, regs.rip, rflags, regs.rcx, regs.r11)
            vcpu.kvm.run_struct.kvm_dirty_regs = SYNC_REGS
            return None
        if ring0_work:
            return self._prepare_slow(vcpu, asp, regs, private, rflags, dict(ops))
        if regs.rcx != regs.rip or regs.r11 != rflags:
            rcx, rflags = self._write_utramp(vcpu, private, regs, rflags)
        else:
            rcx = regs.rip
        _store_regs(vcpu.kvm.sync_regs_buffer, regs, vcpu.sysret_point, SUPERVISOR_RFLAGS, rcx, rflags)
        vcpu.kvm.run_struct.kvm_dirty_regs = SYNC_REGS
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
        entry, sysret_rflags = self._write_utramp(vcpu, private, regs, rflags)
        qwords[(q + LAYOUT["Q_UT_ENTRY"]) >> 3] = entry
        qwords[(q + LAYOUT["Q_RFLAGS"]) >> 3] = sysret_rflags
        qwords[(q + LAYOUT["Q_MORE"]) >> 3] = 1 if more else 0
        for name, offset in PRIV_GPRS:
            qwords[(private + offset) >> 3] = getattr(regs, name)
        sr = vcpu.kvm.sync_regs
        sr.rip = vcpu.address("slow_entry")
        sr.rflags = SUPERVISOR_RFLAGS
        vcpu.kvm.run_struct.kvm_dirty_regs = SYNC_REGS
        vcpu.cr3 = None  # unknown until the slow path is seen to have finished
        vcpu.maybe_roots.add(asp.tables.root_gpa)
        return dict(items), scrub, more

    def _write_utramp(self, vcpu: VirtualCPU, private: int, regs: Regs, rflags: int) -> tuple[int, int]:
        """Stage RCX/R11/RIP for the user trampoline; returns where SYSRETQ goes and the RFLAGS it loads.

        A single-stepping app (TF) goes through utramp_tf instead, with TF
        clear until its IRETQ frame (staged only then) sets it.
        """
        qwords = self.machine.kmem.qwords
        base = private >> 3
        qwords[base + _UT_RCX] = regs.rcx
        qwords[base + _UT_R11] = regs.r11
        qwords[base + _UT_RIP] = regs.rip
        if rflags & RFLAGS_TF:
            frame = base + _UT_FRAME
            qwords[frame : frame + 5] = array("Q", (regs.rip, USER_CS, rflags, regs.rsp, USER_SS))
            return vcpu.utramp_tf, rflags & ~RFLAGS_TF
        return vcpu.utramp, rflags

    def _load_utramp(self, vcpu: VirtualCPU, private: int, regs: Regs) -> None:
        """A kick landed inside the user trampoline: the app state it was about to restore."""
        qwords = self.machine.kmem.qwords
        base = private >> 3
        regs.rcx = qwords[base + _UT_RCX]
        regs.r11 = qwords[base + _UT_R11]
        if regs.rip >= vcpu.utramp_tf:
            frame = base + _UT_FRAME
            regs.rip, _cs, regs.rflags, regs.rsp, _ss = qwords[frame : frame + 5]
        else:
            regs.rip = qwords[base + _UT_RIP]

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
        vcpu.maybe_roots = {vcpu.cr3}

    def _exit(self, vcpu, asp, regs, private, sent, result) -> Event | None:
        reason = vcpu.kvm.run_struct.exit_reason
        if result == -errno.EINTR or reason == lib.KVM_EXIT_INTR:
            return self._interrupted(vcpu, asp, regs, private, sent)
        if result == -errno.EAGAIN:
            return None
        if reason != lib.KVM_EXIT_IO:
            self._broken(vcpu, f"unexpected exit {reason}")
        sr = vcpu.kvm.sync_regs
        port = vcpu.kvm.io.port
        expected = self.exits.get(port)
        if expected is None or sr.rip != vcpu.window + expected:
            # Not our OUT: the app forged an exit (it cannot, OUT faults in user mode; belt and braces).
            self._capture_user(vcpu, regs)
            return Fault(regs.rip, Access.NONE, signal.SIGSEGV, exceptions.SI_KERNEL, -1, 0)
        vcpu.user_mode = False
        if port == PORT_SYSCALL and vcpu.entering_kernel:
            vcpu.entering_kernel = False
            if sr.rcx == vcpu.address("enter_kernel_ret"):
                return None  # now in ring0; regs still hold the app's state
        if port == PORT_APPLIED:
            ops, scrub, _ = sent
            with asp.lock:
                asp.tables.applied(ops)
            self.machine.kmem.reclaim(scrub)
            return None  # regs untouched: the next slow entry sends the rest
        self._slow_done(vcpu, asp, sent)
        if port == PORT_SYSCALL:
            return self._syscall(vcpu, regs)
        return self._exception(vcpu, asp, regs, private, port - PORT_EXC_BASE)

    @staticmethod
    def _capture_user(vcpu: VirtualCPU, regs: Regs) -> None:
        values = _load_regs(vcpu.kvm.sync_regs_buffer, regs)
        regs.rip, regs.rflags = values[16], values[17]

    @staticmethod
    def _syscall(vcpu: VirtualCPU, regs: Regs) -> Syscall:
        values = _load_regs(vcpu.kvm.sync_regs_buffer, regs)
        regs.rip, regs.rflags = values[2], values[11]  # SYSCALL put them in RCX and R11
        return Syscall(values[0], (values[5], values[4], values[3], values[10], values[8], values[9]))

    def _exception(self, vcpu, asp: KVMAddressSpace, regs: Regs, private: int, vector: int) -> Fault:
        top = private + 4096 - _FRAME.size
        err, rip, cs, rflags, rsp, _ss = _FRAME.unpack_from(self.machine.kmem.view, top)
        if vector not in exceptions.ERROR_CODE_VECTORS:
            err = 0
        if cs & 3 != 3:
            self._broken(vcpu, f"vector {vector} in ring0 at rip {rip:#x} err {err:#x}")
        _load_regs(vcpu.kvm.sync_regs_buffer, regs)
        regs.rip, regs.rflags, regs.rsp = rip, rflags, rsp
        if vector == exceptions.PAGE_FAULT:
            address = vcpu.fault_address()
            access, code = exceptions.page_fault_access(err)
            return Fault(address, access, signal.SIGSEGV, code, vector, err)
        if vector == exceptions.INVALID_OPCODE and self._app_byte(asp, rip) == exceptions.INT3_OPCODE:
            # The hypervisor emulates INT3 and gives up (#UD) when the app's RSP is non-canonical;
            # on Linux it is a breakpoint like any other, reported after the instruction.
            vector, rip = exceptions.BREAKPOINT, rip + 1
            regs.rip = rip
        signo, code = exceptions.vector_signal(vector)
        return Fault(rip, Access.NONE, signo, code, vector, err)

    def _app_byte(self, asp: KVMAddressSpace, address: int) -> int | None:
        """The byte at an app address, if it is mapped."""
        offset = asp.translate(address)
        return None if offset is None else self.machine.memory_file.view[offset]

    def _interrupted(self, vcpu, asp, regs, private, sent) -> Event | None:
        """KVM_RUN returned early (kick or host signal): work out where the guest stood."""
        sr = vcpu.kvm.sync_regs
        rip = sr.rip
        offset = rip - vcpu.window
        symbols = self.image.symbols
        if vcpu.entering_kernel:
            # Kicked before reaching ring0: still in user mode, app state untouched in regs.
            vcpu.entering_kernel = False
            return Interrupted() if self._take_interrupt() else None
        if 0 <= offset < LAYOUT["TEXT_SIZE"]:
            if symbols["utramp"] <= offset < symbols["utramp_end"]:
                vcpu.user_mode = True
                self._slow_done(vcpu, asp, sent)
                self._capture_user(vcpu, regs)
                self._load_utramp(vcpu, private, regs)
            elif offset == symbols["syscall_entry"]:
                self._slow_done(vcpu, asp, sent)
                return self._syscall(vcpu, regs)
            elif offset in self.vector_entries:
                self._slow_done(vcpu, asp, sent)
                return self._exception(vcpu, asp, regs, private, self.vector_entries[offset])
            else:
                # Still in sysret_point or the slow path: regs are exactly what we entered with,
                # and its queue (scrubs included) goes out again.
                vcpu.cr3 = None
                if sent is not None:
                    self.machine.kmem.retire(sent[1])
        else:
            vcpu.user_mode = True
            self._slow_done(vcpu, asp, sent)
            self._capture_user(vcpu, regs)
        return Interrupted() if self._take_interrupt() else None

    def _broken(self, vcpu: VirtualCPU, what: str) -> None:
        """The vCPU is in a state we cannot resume from: the pool replaces it."""
        vcpu.broken = True
        raise PlatformError(f"vCPU {vcpu.index}: {what}")

    def release(self) -> None:
        with self.pool.lock:
            if self.fpu_vcpu is not None and self.fpu_vcpu.fpu_owner is self:
                self.fpu_vcpu.fpu_owner = None
            self.fpu_vcpu = None
        self.released = True
