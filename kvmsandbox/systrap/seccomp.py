"""The stub's seccomp filters, as classic BPF built here in Python.

Two filters, both "RET_TRAP unless the call comes from the stub's own code
and is one the stub needs":

- the process filter, installed by the stub's main thread before it serves
  requests, allows what the control loop and worker set-up do, with
  arguments pinned where they can be (mmap only of the memory file, write
  only to the ack eventfd, clone only with the worker flags);
- the worker filter, stacked on top by each worker thread before it runs app
  code, allows only what the signal handler does: futex WAIT/WAKE,
  rt_sigreturn, and (without FSGSBASE) arch_prctl on FS/GS.

Stacked filters take the strictest verdict, so a worker can do no more than
the worker filter allows. App code never gets ALLOW: its instruction pointer
is outside the stub's text, and jumping into the stub's text only reaches the
worker filter's harmless set. The trap turns every other syscall into a
SIGSYS that the stub reports to the Sentry as a Syscall event.

Seccomp is the second line: each worker also enables syscall user dispatch
for everything outside the stub's text, which traps app syscalls before
seccomp runs. It is needed because the kernel exempts uretprobe (335) and
uprobe (336) from seccomp filtering (Linux >= 6.11 / 6.18): with seccomp
alone an app could execute those two natively.
"""

from __future__ import annotations

import dataclasses
import struct

from kvmsandbox.systrap import layout

AUDIT_ARCH_X86_64 = 0xC000003E
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_TRAP = 0x00030000
SECCOMP_RET_ALLOW = 0x7FFF0000

# seccomp_data offsets
_NR, _ARCH, _IP_LO, _IP_HI = 0, 4, 8, 12


def _arg_lo(i: int) -> int:
    return 16 + 8 * i


def _arg_hi(i: int) -> int:
    return 20 + 8 * i


# classic BPF opcodes
_LD_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JGT = 0x25  # BPF_JMP | BPF_JGT | BPF_K
_RET = 0x06  # BPF_RET | BPF_K

NR = {
    "write": 1,
    "mmap": 9,
    "mprotect": 10,
    "munmap": 11,
    "rt_sigprocmask": 14,
    "rt_sigreturn": 15,
    "clone": 56,
    "sigaltstack": 131,
    "prctl": 157,
    "arch_prctl": 158,
    "futex": 202,
    "exit_group": 231,
    "seccomp": 317,
}
FUTEX_WAIT, FUTEX_WAKE = 0, 1
ARCH_FS_GS_OPS = (0x1001, 0x1002, 0x1003, 0x1004)  # SET_GS SET_FS GET_FS GET_GS
MAP_SHARED_FIXED = 0x11
PR_SET_SYSCALL_USER_DISPATCH = 59
WORKER_CLONE_FLAGS = 0x50F00  # VM|FS|FILES|SIGHAND|THREAD|SYSVSEM, as in stub_entry.S


@dataclasses.dataclass(frozen=True)
class Rule:
    """Allow syscall `name` if every (arg index, allowed values) check passes."""

    name: str
    args: tuple[tuple[int, tuple[int, ...]], ...] = ()


class _Program:
    """A list of BPF instructions with forward jumps to named labels."""

    def __init__(self) -> None:
        self.insns: list[tuple[int, object, object, int]] = []
        self.labels: dict[str, int] = {}

    def emit(self, code: int, k: int, jt: object = 0, jf: object = 0) -> None:
        self.insns.append((code, jt, jf, k))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.insns)

    def assemble(self) -> bytes:
        out = bytearray()
        for pc, (code, jt, jf, k) in enumerate(self.insns):
            out += struct.pack("<HBBI", code, self._offset(pc, jt), self._offset(pc, jf), k)
        return bytes(out)

    def _offset(self, pc: int, target: object) -> int:
        if isinstance(target, int):
            return target
        off = self.labels[target] - pc - 1
        if not 0 <= off <= 255:
            raise ValueError(f"BPF jump to {target} out of range ({off})")
        return off


def build_filter(rules: list[Rule], text_end: int) -> bytes:
    """A filter allowing `rules` only from [STUB_BASE, text_end); RET_TRAP otherwise."""
    base = layout.STUB_BASE
    if base & 0xFFFFFFFF or text_end >> 32 != base >> 32 or text_end <= base:
        raise ValueError("the stub's text must lie in one 4 GiB-aligned window above STUB_BASE")
    p = _Program()
    p.emit(_LD_ABS, _ARCH)
    p.emit(_JEQ, AUDIT_ARCH_X86_64, 0, "kill")
    p.emit(_LD_ABS, _IP_HI)
    p.emit(_JEQ, base >> 32, 0, "trap")
    p.emit(_LD_ABS, _IP_LO)
    p.emit(_JGE, text_end & 0xFFFFFFFF, "trap", 0)
    p.emit(_LD_ABS, _NR)
    for i, rule in enumerate(rules):
        p.emit(_JEQ, NR[rule.name], f"rule{i}", 0)
    p.emit(_RET, SECCOMP_RET_TRAP)
    for i, rule in enumerate(rules):
        p.label(f"rule{i}")
        for j, (arg, values) in enumerate(rule.args):
            p.emit(_LD_ABS, _arg_hi(arg))
            p.emit(_JEQ, 0, 0, "trap")
            p.emit(_LD_ABS, _arg_lo(arg))
            for value in values:
                p.emit(_JEQ, value, f"rule{i}.{j + 1}", 0)
            p.emit(_RET, SECCOMP_RET_TRAP)
            p.label(f"rule{i}.{j + 1}")
        p.emit(_RET, SECCOMP_RET_ALLOW)
    p.label("trap")
    p.emit(_RET, SECCOMP_RET_TRAP)
    p.label("kill")
    p.emit(_RET, SECCOMP_RET_KILL_PROCESS)
    return p.assemble()


_FUTEX = Rule("futex", ((1, (FUTEX_WAIT, FUTEX_WAKE)),))
_ARCH_PRCTL = Rule("arch_prctl", ((0, ARCH_FS_GS_OPS),))


def worker_rules(fsgsbase: bool) -> list[Rule]:
    """What a worker's signal handler needs."""
    rules = [_FUTEX, Rule("rt_sigreturn")]
    if not fsgsbase:
        rules.append(_ARCH_PRCTL)
    return rules


def process_rules() -> list[Rule]:
    """What the control loop and a new worker's set-up need (plus the workers' own set)."""
    return [
        _FUTEX,
        Rule("rt_sigreturn"),
        _ARCH_PRCTL,
        Rule("write", ((0, (layout.STUB_ACKFD,)),)),
        Rule("mmap", ((3, (MAP_SHARED_FIXED,)), (4, (layout.STUB_MEMFD,)))),
        Rule("munmap"),
        Rule("mprotect"),
        Rule("clone", ((0, (WORKER_CLONE_FLAGS,)),)),
        Rule("rt_sigprocmask"),
        Rule("sigaltstack"),
        Rule("prctl", ((0, (PR_SET_SYSCALL_USER_DISPATCH,)),)),
        Rule("seccomp"),
        Rule("exit_group"),
    ]
