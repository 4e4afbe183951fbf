"""Harness for the platform conformance suite: run machine-code snippets on a platform.

A snippet is a `.S` file in snippets/, assembled once per session (linked at
0, loaded at CODE_VA). An `App` is one fresh address space holding a snippet's
code, a data region, a stack and FS/GS pages, plus a context to run it; its
`run()` is a miniature Sentry loop serving Syscall events from a dict of
handlers until the snippet calls SYS_EXIT.

Every `Context.switch` runs under a watchdog: if it has not returned after a
few seconds the watchdog calls `Context.interrupt()` and the test fails, so a
platform bug shows up as a failure instead of a hung suite (the per-test hard
timeout in conftest.py is the last resort if even `interrupt()` is broken).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import random
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kvmsandbox import platform as plat
from kvmsandbox.platform import PAGE_SIZE, Access, Event, Fault, Regs, Syscall
from kvmsandbox.ring0.build import RING0_DIR, assemble
from kvmsandbox.ring0.layout import parse_header

SNIPPET_DIR = Path(__file__).resolve().with_name("snippets")
H = parse_header(SNIPPET_DIR / "harness.h")

CODE_VA = H["CODE_VA"]
DATA_VA = H["DATA_VA"]
STACK_TOP = H["STACK_TOP"]
TEST_VA = H["TEST_VA"]
SYS_EXIT = H["SYS_EXIT"]
SYS_REPORT = H["SYS_REPORT"]
SYS_SIGRETURN = H["SYS_SIGRETURN"]
HIT_READ, HIT_MARKER, HIT_TABLE, HIT_WRITE = H["HIT_READ"], H["HIT_MARKER"], H["HIT_TABLE"], H["HIT_WRITE"]
MASK64 = (1 << 64) - 1

# Linux signal numbers and si_codes, as the platform must report them.
SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV = 4, 5, 7, 8, 11
SEGV_MAPERR, SEGV_ACCERR = 1, 2
ILL_ILLOPN = 2
FPE_INTDIV = 1
SI_KERNEL = 0x80

# A switch that has not returned after this long is a hang.
WATCHDOG_S = float(os.environ.get("KVMSB_TEST_WATCHDOG_S", "10"))

BACKEND_MODULES = {"kvm": "kvmsandbox.kvmplatform", "systrap": "kvmsandbox.systrap"}


# --------------------------------------------------------------------------- snippets


@dataclasses.dataclass(frozen=True)
class Snippet:
    """An assembled snippet: its text (linked at 0) and symbol offsets."""

    name: str
    code: bytes
    symbols: dict[str, int]

    def addr(self, symbol: str) -> int:
        """Where `symbol` is once the snippet is loaded at CODE_VA."""
        return CODE_VA + self.symbols[symbol]

    def name_of(self, addr: int) -> str:
        """The nearest symbol at or below `addr`, for failure messages."""
        best = None
        for name, off in self.symbols.items():
            va = CODE_VA + off
            if va <= addr and (best is None or va > best[1]):
                best = (name, va)
        if best is None or addr - best[1] > PAGE_SIZE:
            return f"{addr:#x}"
        return f"{best[0]}+{addr - best[1]:#x}"


def build_snippets(out_dir: Path) -> dict[str, Snippet]:
    """Assemble every snippets/*.S (with harness.h and the ring0 layout.h on the include path)."""
    snippets = {}
    for source in sorted(SNIPPET_DIR.glob("*.S")):
        binary = assemble(source, out_dir, include_dirs=(SNIPPET_DIR, RING0_DIR))
        symbols = json.loads(binary.with_suffix(".sym.json").read_text())
        code = binary.read_bytes()
        assert len(code) <= H["CODE_PAGES"] * PAGE_SIZE, f"{source.name} does not fit CODE_PAGES"
        snippets[source.stem] = Snippet(source.stem, code, symbols)
    return snippets


# --------------------------------------------------------------------------- platforms


def platform_names() -> list[str]:
    """The backends the suite runs on: the known two plus anything else registered."""
    names = list(BACKEND_MODULES)
    # A backend that does not import yet fails in open_platform, with the reason.
    with contextlib.suppress(Exception):
        names += [n for n in plat.names() if n not in names]
    return names


def probe(name: str) -> plat.PlatformInfo:
    """Import one backend and probe it (a broken backend fails here, loudly)."""
    module = BACKEND_MODULES.get(name)
    if module is not None:
        try:
            importlib.import_module(module)
        except Exception as exc:
            pytest.fail(f"platform {name}: importing {module} failed: {exc!r}")
    entry = plat._REGISTRY.get(name)  # probe one backend, not all
    if entry is None:
        pytest.fail(f"platform {name} did not register itself (registered: {sorted(plat._REGISTRY)})")
    return entry.probe()


def open_platform(name: str) -> Iterator[plat.Platform]:
    """Fixture body: the platform, or a skip saying why it cannot run on this host."""
    info = probe(name)
    if not info.usable:
        pytest.skip(f"platform {name} is not usable on this host: {info.reason}")
    platform = plat.create(name)
    try:
        yield platform
    finally:
        platform.close()


# --------------------------------------------------------------------------- watchdog


class Watchdog:
    """One thread per App that interrupts a switch running past its deadline."""

    def __init__(self, ctx: plat.Context) -> None:
        self._ctx = ctx
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._closed = False
        self.fired = False
        self._thread = threading.Thread(target=self._run, name="switch-watchdog", daemon=True)
        self._thread.start()

    def arm(self, seconds: float) -> None:
        with self._cond:
            self.fired = False
            self._deadline = time.monotonic() + seconds
            self._cond.notify()

    def disarm(self) -> None:
        with self._cond:
            self._deadline = None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(5)

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                self.fired = True
                self._deadline = None
                self._ctx.interrupt()


# --------------------------------------------------------------------------- apps


def describe(event: Event, regs: Regs, snippet: Snippet | None = None) -> str:
    where = snippet.name_of(regs.rip) if snippet else f"{regs.rip:#x}"
    if isinstance(event, Syscall):
        args = ", ".join(f"{a:#x}" for a in event.args)
        return f"Syscall(nr={event.nr}, args=({args})) at {where}"
    if isinstance(event, Fault):
        return (
            f"Fault(signo={event.signo}, si_code={event.si_code:#x}, addr={event.addr:#x}, "
            f"access={event.access!r}, vector={event.vector}) at {where}"
        )
    return f"{event!r} at {where}"


class App:
    """A snippet loaded into a fresh address space, with a context to run it.

    Layout (harness.h): code at CODE_VA (RX), data at DATA_VA (RW), stack,
    and one RW page each at FS_VA and GS_VA whose first qword is random; FS
    and GS base point at them.
    """

    def __init__(
        self,
        platform: plat.Platform,
        snippet: Snippet,
        *,
        context: plat.Context | None = None,
        address_space: plat.AddressSpace | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.platform = platform
        self.mf = platform.memory_file
        self.snippet = snippet
        self.rng = rng or random.Random()
        self._frames: list[tuple[int, int]] = []
        self._own_asp = address_space is None
        self._own_ctx = context is None
        self.asp = address_space if address_space is not None else platform.new_address_space()
        self.ctx = context if context is not None else platform.new_context()
        self.watchdog = Watchdog(self.ctx)
        self.code_off = self.map_new(CODE_VA, H["CODE_PAGES"], Access.RX, snippet.code)
        self.data_off = self.map_new(DATA_VA, H["DATA_PAGES"], Access.RW)
        self.stack_off = self.map_new(H["STACK_VA"], H["STACK_PAGES"], Access.RW)
        self.fs_value = self.rng.getrandbits(64)
        self.gs_value = self.rng.getrandbits(64)
        self.fs_off = self.map_new(H["FS_VA"], 1, Access.RW, struct.pack("<Q", self.fs_value))
        self.gs_off = self.map_new(H["GS_VA"], 1, Access.RW, struct.pack("<Q", self.gs_value))
        self.regs = Regs(rip=snippet.addr("_start"), rsp=STACK_TOP, fs_base=H["FS_VA"], gs_base=H["GS_VA"])

    def new_thread(self) -> App:
        """Another thread of this app: same address space and mappings, its own context and registers."""
        other = object.__new__(App)
        other.__dict__.update(self.__dict__)
        other._frames = []
        other._own_asp = False
        other._own_ctx = True
        other.ctx = self.platform.new_context()
        other.watchdog = Watchdog(other.ctx)
        other.regs = Regs(
            rip=self.snippet.addr("_start"), rsp=STACK_TOP, fs_base=H["FS_VA"], gs_base=H["GS_VA"]
        )
        return other

    # memory ---------------------------------------------------------------

    def alloc(self, npages: int = 1, data: bytes = b"") -> int:
        """Memory-file pages owned by this app (freed by close)."""
        off = self.mf.allocate(npages)
        self._frames.append((off, npages))
        if data:
            self.mf.write(off, data)
        return off

    def map_new(self, va: int, npages: int, perms: Access, data: bytes = b"") -> int:
        off = self.alloc(npages, data)
        self.asp.map(va, npages * PAGE_SIZE, off, perms)
        return off

    def data_u64(self, offset: int) -> int:
        return struct.unpack("<Q", self.mf.read(self.data_off + offset, 8))[0]

    def data_u64s(self, offset: int, count: int) -> list[int]:
        return list(struct.unpack(f"<{count}Q", self.mf.read(self.data_off + offset, 8 * count)))

    def set_u64(self, offset: int, *values: int) -> None:
        self.mf.write(self.data_off + offset, struct.pack(f"<{len(values)}Q", *(v & MASK64 for v in values)))

    def set_bytes(self, offset: int, data: bytes) -> None:
        self.mf.write(self.data_off + offset, data)

    # running --------------------------------------------------------------

    def switch(self, timeout: float = WATCHDOG_S) -> Event:
        """One Context.switch under the watchdog."""
        self.watchdog.arm(timeout)
        try:
            event = self.ctx.switch(self.asp, self.regs)
        finally:
            self.watchdog.disarm()
        if self.watchdog.fired:
            pytest.fail(
                f"watchdog: switch did not return within {timeout}s (interrupted; "
                f"now {describe(event, self.regs, self.snippet)})"
            )
        return event

    def describe(self, event: Event) -> str:
        return describe(event, self.regs, self.snippet)

    def expect_syscall(self, nr: int | None = None) -> Syscall:
        event = self.switch()
        assert isinstance(event, Syscall), f"expected a syscall, got {self.describe(event)}"
        if nr is not None:
            assert event.nr == nr, f"expected syscall {nr}, got {self.describe(event)}"
        return event

    def expect_fault(self, what: str = "") -> Fault:
        event = self.switch()
        assert isinstance(event, Fault), f"{what}: expected a fault, got {self.describe(event)}"
        return event

    def run_at(self, symbol: str, **regs: int) -> Event:
        """Point RIP at a snippet symbol, set registers, switch once."""
        self.regs.rip = self.snippet.addr(symbol)
        for name, value in regs.items():
            setattr(self.regs, name, value & MASK64)
        return self.switch()

    def run(
        self,
        handlers: dict[int, Callable[[Syscall, Regs], int]] | None = None,
        on_fault: Callable[[Fault, Regs], None] | None = None,
        max_events: int = 1_000_000,
    ) -> int:
        """Serve events until SYS_EXIT; return its status.

        A handler's return value becomes rax. `on_fault` may fix up regs to
        resume; without it any fault fails the test.
        """
        handlers = handlers or {}
        for _ in range(max_events):
            event = self.switch()
            if isinstance(event, Syscall):
                if event.nr == SYS_EXIT:
                    return event.args[0]
                handler = handlers.get(event.nr)
                if handler is None:
                    pytest.fail(f"unexpected {self.describe(event)}")
                self.regs.rax = handler(event, self.regs) & MASK64
            elif isinstance(event, Fault):
                if on_fault is None:
                    pytest.fail(f"unexpected {self.describe(event)}")
                on_fault(event, self.regs)
            else:
                pytest.fail(f"unexpected {self.describe(event)}")
        pytest.fail(f"snippet {self.snippet.name} did not exit after {max_events} events")

    def close(self) -> None:
        self.watchdog.close()
        if self._own_ctx:
            self.ctx.release()
        if self._own_asp:
            self.asp.release()
        for off, npages in self._frames:
            self.mf.free(off, npages)
        self._frames.clear()


class AppThreads:
    """body(app) in one thread per app; join() re-raises the first failure in the test's thread."""

    def __init__(self, apps, body):
        self.errors = []
        self.threads = [threading.Thread(target=self._target, args=(body, app)) for app in apps]
        for thread in self.threads:
            thread.start()

    def _target(self, body, app):
        try:
            body(app)
        except BaseException as exc:  # noqa: BLE001 - pytest.fail raises a BaseException
            self.errors.append(exc)

    def join(self, timeout=60):
        for thread in self.threads:
            thread.join(timeout)
            assert not thread.is_alive(), f"an app thread is still running after {timeout} s"
        if self.errors:
            raise self.errors[0]


@dataclasses.dataclass
class ScanResult:
    """What scan.S found: page -> HIT_* flags, for every page it could read."""

    hits: dict[int, int]
    read_faults: int

    def with_flag(self, flag: int) -> list[int]:
        return sorted(page for page, flags in self.hits.items() if flags & flag)


def scan(
    app: App,
    ranges: list[tuple[int, int, int]],
    marker: bytes,
    *,
    try_write: bool = True,
    allow_sigbus: bool = False,
) -> ScanResult:
    """Run scan.S in `app` over `ranges`; read faults skip the page, write faults skip the write."""
    assert app.snippet.name == "scan"
    assert len(marker) == 16
    m0, m1 = struct.unpack("<QQ", marker)
    app.set_u64(H["S_NRANGES"], len(ranges))
    app.set_u64(H["S_TRY_WRITE"], int(try_write))
    app.set_u64(H["S_NMARK0"], ~m0, ~m1)
    assert len(ranges) * 24 <= H["D_LOG_SIZE"]
    app.set_u64(H["S_RANGES"], *(v for triple in ranges for v in triple))
    scan_read = app.snippet.addr("scan_read")
    scan_write = app.snippet.addr("scan_write")
    hits: dict[int, int] = {}
    read_faults = 0

    def report(event: Syscall, regs: Regs) -> int:
        hits[event.args[0]] = event.args[1]
        return 0

    def on_fault(event: Fault, regs: Regs) -> None:
        nonlocal read_faults
        page = regs.r12
        signals = (SIGSEGV, SIGBUS) if allow_sigbus else (SIGSEGV,)
        assert event.signo in signals, f"scanning {page:#x}: {app.describe(event)}"
        if regs.rip == scan_read:
            if event.signo == SIGSEGV and event.si_code != SI_KERNEL:
                assert event.addr == page, f"scanning {page:#x}: fault address {event.addr:#x}"
                assert event.access & Access.READ, f"scanning {page:#x}: {app.describe(event)}"
            read_faults += 1
            regs.rip = app.snippet.addr("scan_skip")
        elif regs.rip == scan_write:
            assert event.addr == page, f"writing {page:#x}: fault address {event.addr:#x}"
            assert event.access & Access.WRITE, f"writing {page:#x}: {app.describe(event)}"
            assert event.si_code == SEGV_ACCERR, f"readable page {page:#x}: write {app.describe(event)}"
            regs.rip = app.snippet.addr("scan_report")
        else:
            pytest.fail(f"scan faulted outside its probes: {app.describe(event)}")

    status = app.run({SYS_REPORT: report}, on_fault)
    assert status == len(ranges), f"scan.S exited with {status}, expected {len(ranges)} ranges done"
    return ScanResult(hits, read_faults)


def fake_page_table(rng: random.Random) -> bytes:
    """A page that looks like a page-table page (the scan's positive control)."""
    entries = [0] * 512
    for index in rng.sample(range(512), 8):
        entries[index] = (rng.randrange(1, 1 << 20) << 12) | 0x67
    return struct.pack("<512Q", *entries)


XMM_OFFSET = 160  # XMM0 in the XSAVE legacy area
XSTATE_BV_OFFSET = 512  # XSAVE header: which components the image holds
XFEATURE_SSE = 1 << 1


def set_xmm(image: bytearray, xmm: bytes) -> None:
    """Put XMM0-15 into an XSAVE image and mark the SSE component present (with its XSTATE_BV bit
    clear, XRSTOR would load the init state, zeros, whatever the legacy area says)."""
    assert len(xmm) == 256
    image[XMM_OFFSET : XMM_OFFSET + 256] = xmm
    bv = struct.unpack_from("<Q", image, XSTATE_BV_OFFSET)[0]
    struct.pack_into("<Q", image, XSTATE_BV_OFFSET, bv | XFEATURE_SSE)


def new_marker(rng: random.Random) -> bytes:
    return rng.getrandbits(128).to_bytes(16, "little")
