"""The stub layout constants, read from layout.h (shared with the stub's C and assembly)."""

from __future__ import annotations

from pathlib import Path

from kvmsandbox.ring0.layout import parse_header

LAYOUT = parse_header(Path(__file__).with_name("layout.h"))

# addresses and sizes
MIN_USER_ADDRESS = LAYOUT["MIN_USER_ADDRESS"]
STUB_BASE = LAYOUT["STUB_BASE"]
SHARED_BASE = LAYOUT["SHARED_BASE"]
SHARED_SIZE = LAYOUT["SHARED_SIZE"]
CTL_RO_SIZE = LAYOUT["CTL_RO_SIZE"]
THREADS_OFFSET = LAYOUT["THREADS_OFFSET"]
THREAD_SIZE = LAYOUT["THREAD_SIZE"]
THREAD_MSG_SIZE = LAYOUT["THREAD_MSG_SIZE"]
MAX_THREADS = LAYOUT["MAX_THREADS"]
STACK_T_SIZE = LAYOUT["STACK_T_SIZE"]

# fds the stub starts with
STUB_MEMFD = LAYOUT["STUB_MEMFD"]
STUB_SHAREDFD = LAYOUT["STUB_SHAREDFD"]
STUB_ACKFD = LAYOUT["STUB_ACKFD"]

# control area
REQ_SEQ = LAYOUT["REQ_SEQ"]
REQ_OP = LAYOUT["REQ_OP"]
RO_FLAGS = LAYOUT["RO_FLAGS"]
RO_ACK_OK = LAYOUT["RO_ACK_OK"]
RO_ACK_FAIL = LAYOUT["RO_ACK_FAIL"]
RO_SIGMASK_WORKER = LAYOUT["RO_SIGMASK_WORKER"]
RO_FPROG_WORKER = LAYOUT["RO_FPROG_WORKER"]
RO_FPROG_PROCESS = LAYOUT["RO_FPROG_PROCESS"]
RO_ALTSTACKS = LAYOUT["RO_ALTSTACKS"]
RO_FILTER_WORKER = LAYOUT["RO_FILTER_WORKER"]
RO_FILTER_PROCESS = LAYOUT["RO_FILTER_PROCESS"]
RO_FILTER_MAX = LAYOUT["RO_FILTER_MAX"]
RW_RESULT = LAYOUT["RW_RESULT"]
FLAG_FSGSBASE = LAYOUT["FLAG_FSGSBASE"]
OP_SYSCALL = LAYOUT["OP_SYSCALL"]
OP_CLONE = LAYOUT["OP_CLONE"]

# per-thread message
MSG_STATE = LAYOUT["MSG_STATE"]
MSG_SIGNO = LAYOUT["MSG_SIGNO"]
MSG_REGS = LAYOUT["MSG_REGS"]
MSG_NREGS = LAYOUT["MSG_NREGS"]
MSG_FPU = LAYOUT["MSG_FPU"]
STATE_NONE = LAYOUT["STATE_NONE"]
STATE_APP = LAYOUT["STATE_APP"]
STATE_EVENT = LAYOUT["STATE_EVENT"]
# stub set-up failures
DEATH_REPORT = LAYOUT["DEATH_REPORT"]
EXIT_REASONS = {
    LAYOUT["EXIT_SIGACTION"]: "installing its signal handlers failed",
    LAYOUT["EXIT_PDEATHSIG"]: "PR_SET_PDEATHSIG failed",
    LAYOUT["EXIT_PARENT"]: "its parent is not the Sentry (the Sentry died while it started?)",
    LAYOUT["EXIT_SHARED_RO"]: "mapping the control area failed",
    LAYOUT["EXIT_SHARED_RW"]: "mapping the shared region failed",
    LAYOUT["EXIT_CLOSE_FDS"]: "close_range failed (Linux >= 5.9 needed)",
    LAYOUT["EXIT_NO_NEW_PRIVS"]: "PR_SET_NO_NEW_PRIVS failed",
    LAYOUT["EXIT_SECCOMP"]: "installing its seccomp filter failed (seccomp blocked here?)",
    LAYOUT["EXIT_SIGMASK"]: "blocking signals failed",
    LAYOUT["EXIT_UNMAP"]: "clearing the kernel's mappings (vDSO) out of the app and stub ranges failed",
    LAYOUT["EXIT_WORKER_SETUP"]: "a worker's set-up failed (sigaltstack, syscall user dispatch or seccomp)",
}

assert SHARED_SIZE == THREADS_OFFSET + MAX_THREADS * THREAD_SIZE, "layout.h: SHARED_SIZE is stale"


def thread_offset(index: int) -> int:
    """Offset of stub thread `index`'s area (message, then signal stack) in the shared region."""
    return THREADS_OFFSET + index * THREAD_SIZE
