"""Signal numbers, default actions, sigaction records, siginfo and pending sets."""

from __future__ import annotations

import dataclasses
import enum
import struct

SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE = range(1, 9)
SIGKILL, SIGUSR1, SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM, SIGSTKFLT = range(9, 17)
SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG, SIGXCPU = range(17, 25)
SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO, SIGPWR, SIGSYS = range(25, 32)
SIGRTMIN = 32
NSIG = 64  # signals are 1..64

SIG_DFL = 0
SIG_IGN = 1

SA_NOCLDSTOP = 0x1
SA_NOCLDWAIT = 0x2
SA_SIGINFO = 0x4
SA_RESTORER = 0x04000000
SA_ONSTACK = 0x08000000
SA_RESTART = 0x10000000
SA_NODEFER = 0x40000000
SA_RESETHAND = 0x80000000

SS_ONSTACK = 1
SS_DISABLE = 2
SS_AUTODISARM = 1 << 31
MINSIGSTKSZ = 2048

# si_code values
SI_USER = 0
SI_KERNEL = 0x80
SI_QUEUE = -1
SI_TIMER = -2
SI_TKILL = -6
CLD_EXITED, CLD_KILLED, CLD_DUMPED, CLD_TRAPPED, CLD_STOPPED, CLD_CONTINUED = range(1, 7)
SEGV_MAPERR, SEGV_ACCERR = 1, 2


class Action(enum.Enum):
    TERM = "term"
    CORE = "core"
    IGNORE = "ignore"
    STOP = "stop"
    CONT = "cont"


_CORE = {SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGXCPU, SIGXFSZ, SIGSYS}
_IGNORE = {SIGCHLD, SIGURG, SIGWINCH}
_STOP = {SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU}


def default_action(signo: int) -> Action:
    if signo in _CORE:
        return Action.CORE
    if signo in _IGNORE:
        return Action.IGNORE
    if signo in _STOP:
        return Action.STOP
    if signo == SIGCONT:
        return Action.CONT
    return Action.TERM


def bit(signo: int) -> int:
    return 1 << (signo - 1)


UNBLOCKABLE = bit(SIGKILL) | bit(SIGSTOP)
ALL_SIGNALS = (1 << NSIG) - 1
# Synchronous signals are dequeued first, as Linux does, so a fault is handled before anything queued.
SYNCHRONOUS = bit(SIGSEGV) | bit(SIGBUS) | bit(SIGILL) | bit(SIGTRAP) | bit(SIGFPE) | bit(SIGSYS)


def valid(signo: int) -> bool:
    return 1 <= signo <= NSIG


@dataclasses.dataclass
class SigAction:
    handler: int = SIG_DFL
    flags: int = 0
    restorer: int = 0
    mask: int = 0

    _FMT = struct.Struct("<QQQQ")

    def pack(self) -> bytes:
        return self._FMT.pack(self.handler, self.flags, self.restorer, self.mask)

    @classmethod
    def unpack(cls, data: bytes) -> SigAction:
        return cls(*cls._FMT.unpack(data))


class Handlers:
    """A thread group's signal dispositions (shared by CLONE_SIGHAND)."""

    def __init__(self, actions: list[SigAction] | None = None) -> None:
        self.actions = actions or [SigAction() for _ in range(NSIG + 1)]

    def copy(self) -> Handlers:
        return Handlers([dataclasses.replace(a) for a in self.actions])

    def reset_for_exec(self) -> None:
        """execve: caught signals go back to default; ignored ones stay ignored."""
        for i, action in enumerate(self.actions):
            if action.handler != SIG_IGN:
                self.actions[i] = SigAction()
            else:
                action.flags, action.restorer, action.mask = 0, 0, 0

    def is_ignored(self, signo: int) -> bool:
        handler = self.actions[signo].handler
        return handler == SIG_IGN or (handler == SIG_DFL and default_action(signo) is Action.IGNORE)


@dataclasses.dataclass
class SigInfo:
    """A siginfo_t: signo, code, errno and the 112-byte union, packed as Linux lays it out."""

    signo: int
    code: int = SI_USER
    errno: int = 0
    fields: bytes = b""

    SIZE = 128

    def pack(self) -> bytes:
        return struct.pack("<iii4x", self.signo, self.errno, self.code) + self.fields.ljust(112, b"\0")[:112]

    @classmethod
    def unpack(cls, data: bytes) -> SigInfo:
        signo, err, code = struct.unpack_from("<iii", data)
        return cls(signo, code, err, bytes(data[16:128]))

    @classmethod
    def kill(cls, signo: int, code: int, pid: int, uid: int) -> SigInfo:
        return cls(signo, code, 0, struct.pack("<iI", pid, uid))

    @classmethod
    def chld(cls, code: int, pid: int, uid: int, status: int) -> SigInfo:
        return cls(SIGCHLD, code, 0, struct.pack("<iIi4xqq", pid, uid, status, 0, 0))

    @classmethod
    def fault(cls, signo: int, code: int, addr: int) -> SigInfo:
        return cls(signo, code, 0, struct.pack("<Q", addr))

    @classmethod
    def timer(cls, signo: int, timer_id: int, overrun: int, value: int) -> SigInfo:
        return cls(signo, SI_TIMER, 0, struct.pack("<iiQ", timer_id, overrun, value))


MAX_QUEUED = 1024  # real-time signals queued per number (RLIMIT_SIGPENDING's role)


class Pending:
    """Pending signals: standard signals coalesce, real-time ones queue."""

    __slots__ = ("mask", "queues")

    def __init__(self) -> None:
        self.mask = 0
        self.queues: dict[int, list[SigInfo]] = {}

    def add(self, info: SigInfo) -> bool:
        """Queue `info`; False if a standard signal of that number was already pending."""
        signo = info.signo
        if signo < SIGRTMIN and self.mask & bit(signo):
            return False
        if len(self.queues.get(signo, ())) >= MAX_QUEUED:
            return False
        self.queues.setdefault(signo, []).append(info)
        self.mask |= bit(signo)
        return True

    def take(self, allowed: int) -> SigInfo | None:
        """Dequeue the lowest-numbered (synchronous first) pending signal in `allowed`."""
        ready = self.mask & allowed
        if not ready:
            return None
        sync = ready & SYNCHRONOUS
        pick = sync or ready
        signo = (pick & -pick).bit_length()
        queue = self.queues[signo]
        info = queue.pop(0)
        if not queue:
            del self.queues[signo]
            self.mask &= ~bit(signo)
        return info

    def discard(self, mask: int) -> None:
        for signo in list(self.queues):
            if mask & bit(signo):
                del self.queues[signo]
        self.mask &= ~mask
