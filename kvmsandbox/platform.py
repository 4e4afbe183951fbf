"""The platform interface both backends implement, a registry, and detection.

A platform runs app code and stops on every system call and fault:
`Context.switch(address_space, regs)` runs until an `Event` happens and
leaves `regs` current. App memory is always pages of the sandbox's
`MemoryFile`; the Sentry reads and writes it through its own mapping, never
through a platform call.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kvmsandbox.memory.memfile import MemoryFile

PAGE_SIZE = 4096
GPR_NAMES = (
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
)  # fmt: skip

# RFLAGS bits user code may hold; everything else (IOPL, NT, VM, VIF...) is
# forced by the platform before resuming, and IF is always set.
RFLAGS_USER_MASK = 0x00000000_00240DD5  # CF PF AF ZF SF TF DF OF AC ID
RFLAGS_FIXED = 0x202  # reserved bit 1 + IF


class Access(enum.IntFlag):
    """Page permissions, and the kind of access that faulted."""

    NONE = 0
    READ = 1
    WRITE = 2
    EXEC = 4
    RW = READ | WRITE
    RX = READ | EXEC
    RWX = READ | WRITE | EXEC


@dataclasses.dataclass
class Regs:
    """Full user register state of one app thread.

    `fpu` is an XSAVE image (legacy area + header + extended state, in the
    host's XSAVE layout). The FPU state lives in the context: a non-None
    `fpu` given to `switch` is loaded into it and reset to None, and
    `Context.pull_fpu()` returns the current image when the Sentry needs it
    (signal frames, fork). A new context starts with the default state.
    """

    rax: int = 0
    rbx: int = 0
    rcx: int = 0
    rdx: int = 0
    rsi: int = 0
    rdi: int = 0
    rsp: int = 0
    rbp: int = 0
    r8: int = 0
    r9: int = 0
    r10: int = 0
    r11: int = 0
    r12: int = 0
    r13: int = 0
    r14: int = 0
    r15: int = 0
    rip: int = 0
    rflags: int = RFLAGS_FIXED
    fs_base: int = 0
    gs_base: int = 0
    fpu: bytearray | None = None

    def syscall_args(self) -> tuple[int, int, int, int, int, int]:
        return (self.rdi, self.rsi, self.rdx, self.r10, self.r8, self.r9)

    def copy(self) -> Regs:
        dup = dataclasses.replace(self)
        if self.fpu is not None:
            dup.fpu = bytearray(self.fpu)
        return dup


def sanitize_rflags(rflags: int) -> int:
    """The RFLAGS value actually loaded for user mode."""
    return (rflags & RFLAGS_USER_MASK) | RFLAGS_FIXED


def is_canonical(addr: int) -> bool:
    return addr < (1 << 47) or addr >= 0xFFFF_8000_0000_0000


class Event:
    """Why `Context.switch` returned."""

    __slots__ = ()


# Events are created on every exit: slotted, not frozen (frozen __init__ is several times slower).
@dataclasses.dataclass(slots=True)
class Syscall(Event):
    """The app executed SYSCALL. regs.rip already points after it."""

    nr: int
    args: tuple[int, ...]


@dataclasses.dataclass(slots=True)
class Fault(Event):
    """A fault or exception in app code; `signo`/`si_code` as Linux would deliver it.

    For SIGSEGV/SIGBUS `addr` is the faulting data address (CR2 for page
    faults) and `access` the kind of access; for other signals `addr` is the
    faulting instruction. regs.rip points at the faulting instruction (after
    it for traps such as int3).
    """

    addr: int
    access: Access
    signo: int
    si_code: int
    vector: int = -1
    error_code: int = 0


@dataclasses.dataclass(slots=True)
class Interrupted(Event):
    """`Context.interrupt()` was called (possibly before this switch began)."""


class PlatformError(Exception):
    """A fatal platform failure for a context (its backing stub died, the vCPU broke)."""


class AddressSpace(abc.ABC):
    """One app memory map: app virtual addresses backed by memory-file pages."""

    @abc.abstractmethod
    def map(self, addr: int, length: int, file_offset: int, perms: Access) -> None:
        """Map [addr, addr+length) to memory-file bytes at file_offset; replaces overlaps."""

    @abc.abstractmethod
    def unmap(self, addr: int, length: int) -> None:
        """Remove mappings; on return no thread of this address space can reach the pages."""

    @abc.abstractmethod
    def protect(self, addr: int, length: int, perms: Access) -> None:
        """Change permissions of mapped pages; takes effect before any thread runs again."""

    @abc.abstractmethod
    def release(self) -> None:
        """Drop the address space; no context may be running in it."""


class Context(abc.ABC):
    """One app thread's execution vehicle."""

    @abc.abstractmethod
    def switch(self, address_space: AddressSpace, regs: Regs) -> Event:
        """Run app code with `regs` until an event; `regs` is updated in place."""

    @abc.abstractmethod
    def pull_fpu(self) -> bytearray:
        """The context's current FPU/XSAVE image (a copy)."""

    @abc.abstractmethod
    def interrupt(self) -> None:
        """Make the running (or next) switch return Interrupted soon; safe from any thread."""

    @abc.abstractmethod
    def release(self) -> None:
        """Free the context's resources."""


class Platform(abc.ABC):
    """A sandbox's way of running app code."""

    name: str = ""
    flavour: str = ""
    memory_file: MemoryFile
    min_user_address: int
    max_user_address: int

    @abc.abstractmethod
    def new_address_space(self) -> AddressSpace: ...

    @abc.abstractmethod
    def new_context(self) -> Context: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Release every host resource (VM, stubs, memory file)."""


@dataclasses.dataclass(frozen=True)
class PlatformInfo:
    """What `help platforms` prints for one platform."""

    name: str
    flavour: str
    usable: bool
    reason: str
    description: str


@dataclasses.dataclass(frozen=True)
class _Entry:
    probe: Callable[[], PlatformInfo]
    factory: Callable[..., Platform]


_REGISTRY: dict[str, _Entry] = {}


def register(name: str, probe: Callable[[], PlatformInfo], factory: Callable[..., Platform]) -> None:
    _REGISTRY[name] = _Entry(probe, factory)


def _load_builtin() -> None:
    # Importing the backends registers them; imported lazily so that a broken
    # backend (say, a missing build artefact) only disables itself.
    import kvmsandbox.kvmplatform  # noqa: F401
    import kvmsandbox.systrap  # noqa: F401


def names() -> list[str]:
    _load_builtin()
    return list(_REGISTRY)


def probe_all() -> list[PlatformInfo]:
    """Detection results for every registered platform."""
    _load_builtin()
    return [entry.probe() for entry in _REGISTRY.values()]


def default_name() -> str:
    """kvm wherever /dev/kvm works, else systrap."""
    for info in probe_all():
        if info.usable:
            return info.name
    raise PlatformError("no usable platform: " + "; ".join(f"{i.name}: {i.reason}" for i in probe_all()))


def create(name: str | None = None, **options: object) -> Platform:
    """Instantiate a platform by name (default: the first usable one)."""
    _load_builtin()
    name = name or default_name()
    entry = _REGISTRY.get(name)
    if entry is None:
        raise PlatformError(f"unknown platform {name!r} (known: {', '.join(_REGISTRY)})")
    info = entry.probe()
    if not info.usable:
        raise PlatformError(f"platform {name} is not usable here: {info.reason}")
    return entry.factory(**options)
