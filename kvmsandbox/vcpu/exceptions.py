"""x86 exception vectors -> the signal Linux delivers for them (arch/x86/kernel/traps.c)."""

from __future__ import annotations

import signal

from kvmsandbox.platform import Access

SI_KERNEL = 0x80
SEGV_MAPERR, SEGV_ACCERR = 1, 2
ILL_ILLOPN = 2
FPE_INTDIV, FPE_FLTINV = 1, 7
TRAP_BRKPT, TRAP_TRACE = 1, 2
BUS_ADRALN = 1

PAGE_FAULT = 14
INVALID_OPCODE = 6
BREAKPOINT = 3
INT3_OPCODE = 0xCC
# Vectors whose frame carries an error code.
ERROR_CODE_VECTORS = frozenset({8, 10, 11, 12, 13, 14, 17, 21, 29, 30})

# vector -> (signal, si_code, address is the instruction)
VECTOR_SIGNALS: dict[int, tuple[int, int]] = {
    0: (signal.SIGFPE, FPE_INTDIV),
    1: (signal.SIGTRAP, TRAP_TRACE),
    3: (signal.SIGTRAP, SI_KERNEL),
    4: (signal.SIGSEGV, SI_KERNEL),
    5: (signal.SIGSEGV, SI_KERNEL),
    6: (signal.SIGILL, ILL_ILLOPN),
    7: (signal.SIGFPE, SI_KERNEL),
    10: (signal.SIGSEGV, SI_KERNEL),
    11: (signal.SIGBUS, SI_KERNEL),
    12: (signal.SIGBUS, SI_KERNEL),
    13: (signal.SIGSEGV, SI_KERNEL),
    16: (signal.SIGFPE, FPE_FLTINV),
    17: (signal.SIGBUS, BUS_ADRALN),
    19: (signal.SIGFPE, FPE_FLTINV),
}


def page_fault_access(error_code: int) -> tuple[Access, int]:
    """(kind of access, si_code) from a #PF error code."""
    if error_code & 0x10:
        access = Access.EXEC
    elif error_code & 0x2:
        access = Access.WRITE
    else:
        access = Access.READ
    return access, SEGV_ACCERR if error_code & 0x1 else SEGV_MAPERR


def vector_signal(vector: int) -> tuple[int, int]:
    """Signal and si_code for a non-#PF vector; unknown vectors are SIGSEGV like Linux's default."""
    return VECTOR_SIGNALS.get(vector, (signal.SIGSEGV, SI_KERNEL))
