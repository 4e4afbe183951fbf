"""The x86-64 signal frame (struct rt_sigframe) and rt_sigreturn.

Layout as Linux builds it: [pretcode][ucontext (uc_flags, uc_link, stack_t,
sigcontext, sigmask)][siginfo] at a 16-byte aligned address minus 8, and
the FPU/XSAVE image 64-byte aligned above it, pointed to by
sigcontext.fpstate. rt_sigreturn trusts nothing read back: flags, segment
state and FPU control words are sanitized before they reach the platform.
"""

from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING

from kvmsandbox.platform import is_canonical, sanitize_rflags
from sentry.errors import Errno
from sentry.kernel import signals as sig
from sentry.kernel.signals import SigAction, SigInfo

if TYPE_CHECKING:
    from sentry.kernel.task import Task

UC_FP_XSTATE, UC_SIGCONTEXT_SS, UC_STRICT_RESTORE_SS = 1, 2, 4
XFEATURE_YMM, YMM_OFFSET, YMM_SIZE = 1 << 2, 576, 256  # standard-format XSAVE layout of AVX state
FP_XSTATE_MAGIC1, FP_XSTATE_MAGIC2 = 0x46505853, 0x46505845
USER_CS, USER_SS = 0x33, 0x2B
UCONTEXT_SIZE = 304
SIGCONTEXT_OFF = 40
FRAME_SIZE = 8 + UCONTEXT_SIZE + 128
RED_ZONE = 128
RFLAGS_CLEAR_ON_ENTRY = 0x100 | 0x400 | 0x10000  # TF, DF, RF
_GPRS = (
    "r8",
    "r9",
    "r10",
    "r11",
    "r12",
    "r13",
    "r14",
    "r15",
    "rdi",
    "rsi",
    "rbp",
    "rbx",
    "rdx",
    "rax",
    "rcx",
    "rsp",
)
_SC = struct.Struct(
    "<16QQQHHHHQQQQQ8Q"
)  # gprs, rip, eflags, cs gs fs ss, err trapno oldmask cr2 fpstate, reserved
_STACK = struct.Struct("<Qi4xQ")

DEFAULT_FXSAVE = struct.pack("<HHBxHQQII", 0x37F, 0, 0, 0, 0, 0, 0x1F80, 0xFFFF).ljust(512, b"\0")


def on_altstack(task: Task, sp: int) -> bool:
    ss_sp, flags, size = task.altstack
    return not flags & sig.SS_DISABLE and ss_sp < sp <= ss_sp + size


def altstack_flags(task: Task) -> int:
    _sp, flags, _size = task.altstack
    if flags & sig.SS_DISABLE:
        return sig.SS_DISABLE
    return (sig.SS_ONSTACK if on_altstack(task, task.regs.rsp) else 0) | (flags & sig.SS_AUTODISARM)


def setup(task: Task, info: SigInfo, action: SigAction, old_mask: int) -> None:
    """Push a frame for `info` and point the registers at the handler; SIGSEGV-worthy errors raise Errno."""
    regs = task.regs
    mm = task.mm
    ss_sp, ss_flags, ss_size = task.altstack
    sp = regs.rsp
    if action.flags & sig.SA_ONSTACK and not ss_flags & sig.SS_DISABLE and not on_altstack(task, sp):
        sp = ss_sp + ss_size
    else:
        sp -= RED_ZONE
    # The FPU state lives in the platform context; regs.fpu is only set to load a new image.
    if regs.fpu is not None:
        fpu = bytes(regs.fpu)
    elif task.ctx is not None:
        fpu = bytes(task.ctx.pull_fpu())
    else:
        fpu = DEFAULT_FXSAVE
    xsave = len(fpu) > 512
    fp_total = len(fpu) + (4 if xsave else 0)
    sp = (sp - fp_total) & ~63
    fp_addr = sp
    sp = ((sp - FRAME_SIZE) & ~15) - 8
    frame = sp
    uc = frame + 8
    if xsave:
        xfeatures = struct.unpack_from("<Q", fpu, 512)[0]
        sw = struct.pack("<IIQI", FP_XSTATE_MAGIC1, fp_total, xfeatures, len(fpu))
        fpu = fpu[:464] + sw.ljust(48, b"\0") + fpu[512:] + struct.pack("<I", FP_XSTATE_MAGIC2)
    trapno, err, cr2 = (
        task.fault_info if info.signo in (sig.SIGSEGV, sig.SIGBUS, sig.SIGFPE, sig.SIGILL) else (0, 0, 0)
    )
    sigcontext = _SC.pack(
        *(getattr(regs, name) for name in _GPRS),
        regs.rip,
        regs.rflags,
        USER_CS,
        0,
        0,
        USER_SS,
        err,
        trapno,
        old_mask,
        cr2,
        fp_addr,
        *([0] * 8),
    )
    stack = _STACK.pack(ss_sp, altstack_flags(task), ss_size)
    flags = UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS | (UC_FP_XSTATE if xsave else 0)
    ucontext = struct.pack("<QQ", flags, 0) + stack + sigcontext + struct.pack("<Q", old_mask)
    mm.copy_out(fp_addr, fpu)
    mm.copy_out(frame, struct.pack("<Q", action.restorer) + ucontext + info.pack())
    if ss_flags & sig.SS_AUTODISARM and action.flags & sig.SA_ONSTACK:
        task.altstack = (0, sig.SS_DISABLE, 0)
    regs.rdi = info.signo
    regs.rsi = uc + UCONTEXT_SIZE
    regs.rdx = uc
    regs.rax = 0
    regs.rsp = frame
    regs.rip = action.handler
    regs.rflags = sanitize_rflags(regs.rflags & ~RFLAGS_CLEAR_ON_ENTRY)


def restore(task: Task) -> int:
    """rt_sigreturn: registers, mask, altstack and FPU from the frame at rsp; returns the restored rax."""
    regs = task.regs
    mm = task.mm
    uc = regs.rsp
    raw = mm.copy_in(uc, UCONTEXT_SIZE)
    _flags, _link = struct.unpack_from("<QQ", raw)
    ss_sp, ss_flags, ss_size = _STACK.unpack_from(raw, 16)
    fields = _SC.unpack_from(raw, SIGCONTEXT_OFF)
    (mask,) = struct.unpack_from("<Q", raw, SIGCONTEXT_OFF + _SC.size)
    rip, rflags = fields[16], fields[17]
    fp_addr = fields[26]
    if not is_canonical(rip):
        raise Errno(errno.EFAULT)
    for name, value in zip(_GPRS, fields[:16], strict=True):
        setattr(regs, name, value)
    regs.rip = rip
    regs.rflags = sanitize_rflags(rflags)
    _restore_fpu(task, fp_addr)
    with task.kernel.lock:
        task.signal_mask = mask & ~sig.UNBLOCKABLE
    if not on_altstack(task, regs.rsp):
        if ss_flags & sig.SS_DISABLE:
            task.altstack = (0, sig.SS_DISABLE, 0)
        elif ss_size >= sig.MINSIGSTKSZ:
            task.altstack = (ss_sp, ss_flags & sig.SS_AUTODISARM, ss_size)
    return regs.rax


def _restore_fpu(task: Task, fp_addr: int) -> None:
    """Load the frame's FPU image into regs.fpu (applied at the next switch), never trusting it."""
    regs = task.regs
    if not fp_addr or task.ctx is None:
        return
    if fp_addr & 63:
        raise Errno(errno.EFAULT)
    current = regs.fpu if regs.fpu is not None else task.ctx.pull_fpu()
    legacy = bytearray(task.mm.copy_in(fp_addr, 512))
    mxcsr_mask = struct.unpack_from("<I", current, 28)[0] or 0xFFBF
    mxcsr = struct.unpack_from("<I", legacy, 24)[0] & mxcsr_mask
    struct.pack_into("<II", legacy, 24, mxcsr, mxcsr_mask)
    current[:464] = legacy[:464]
    if len(current) > 512:
        # The legacy area only counts if XSTATE_BV says x87/SSE are not in their init state.
        cur_bv = struct.unpack_from("<Q", current, 512)[0]
        struct.pack_into("<Q", current, 512, cur_bv | 0x3)
        magic1, extended, _xfeat, xsize = struct.unpack_from("<IIQI", legacy, 464)
        if magic1 == FP_XSTATE_MAGIC1 and xsize == len(current) > 576 and extended == xsize + 4:
            ext = task.mm.copy_in(fp_addr + 512, xsize - 512 + 4)
            if struct.unpack_from("<I", ext, xsize - 512)[0] == FP_XSTATE_MAGIC2:
                # Only the AVX upper halves come back from the frame; other components
                # (AVX-512, PKRU...) keep their current state rather than trust app bytes.
                user_bv = struct.unpack_from("<Q", ext, 0)[0]
                if cur_bv & XFEATURE_YMM and not user_bv & XFEATURE_YMM:
                    struct.pack_into("<Q", current, 512, (cur_bv | 0x3) & ~XFEATURE_YMM)
                elif user_bv & XFEATURE_YMM:
                    start = YMM_OFFSET - 512
                    current[YMM_OFFSET : YMM_OFFSET + YMM_SIZE] = ext[start : start + YMM_SIZE]
                    struct.pack_into("<Q", current, 512, cur_bv | 0x3 | XFEATURE_YMM)
    regs.fpu = current


def initial_fpu(current: bytearray | None) -> bytearray | None:
    """The FPU image a new program starts with (execve), in the layout of `current`."""
    if current is None:
        return None
    image = bytearray(len(current))
    image[:512] = DEFAULT_FXSAVE
    struct.pack_into("<I", image, 28, struct.unpack_from("<I", current, 28)[0] or 0xFFFF)
    if len(current) > 512:
        image[520:528] = current[520:528]  # XCOMP_BV: keep the format; XSTATE_BV 0 = all init
    return image
