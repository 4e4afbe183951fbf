"""kvm only: the ring0 trampoline cannot be used, written, read for secrets or turned into privilege.

The trampoline text, the per-vCPU CPU/IDT/GDT pages and the private page are
mapped in every address space (this hypervisor needs U/S=1 everywhere), so
the app can read and execute them. These tests check that this is all it can
do: the only writable ring0 page is its own private page, nothing readable
is a page table or a frame the Sentry did not map, and jumping into any
entry or exit point of the trampoline gives a fault, never a forged exit or
privilege.
"""

from __future__ import annotations

import struct

import capstone
import pytest
from platform_harness import (
    DATA_VA,
    HIT_MARKER,
    HIT_READ,
    HIT_TABLE,
    HIT_WRITE,
    SIGILL,
    SIGSEGV,
    STACK_TOP,
    SYS_REPORT,
    TEST_VA,
    AppThreads,
    fake_page_table,
    new_marker,
    open_platform,
    scan,
)

from kvmsandbox.platform import PAGE_SIZE, Access, Fault, Syscall
from kvmsandbox.ring0.layout import LAYOUT, PTMAP_BASE, RING0_BASE, WINDOW_SIZE, window_base
from kvmsandbox.ring0.loader import NUM_VECTORS, Ring0Image

MIB = 1 << 20
JUMP_WATCHDOG_S = 3.0  # a jump into the trampoline must come back as an event at once
WINDOWS = 16  # scanned; far more than the vCPUs a test module creates
READABLE_OFFSETS = {LAYOUT["TEXT_PAGE"] + i * PAGE_SIZE for i in range(LAYOUT["TEXT_SIZE"] // PAGE_SIZE)} | {
    LAYOUT["CPU_PAGE"],
    LAYOUT["IDT_PAGE"],
    LAYOUT["GDT_PAGE"],
    LAYOUT["PRIV_PAGE"],
}
WRITABLE_OFFSETS = {LAYOUT["PRIV_PAGE"]}


@pytest.fixture(scope="module")
def platform():
    yield from open_platform("kvm")


def disassemble(text: bytes):
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.detail = True
    return list(md.disasm(text, 0))


def out_port(insn) -> int | None:
    """The port of an `out imm8, al`, else None."""
    if insn.mnemonic != "out" or not insn.operands or insn.operands[0].type != capstone.x86.X86_OP_IMM:
        return None
    return insn.operands[0].imm


def test_trampoline_exits_are_exactly_the_outs():
    """Capstone over the built blob: each exit point follows an OUT to its own port, syscall_entry and
    every excN start with that OUT, there is no other OUT or IN, sysret_point is SYSRETQ, and no
    IRETQ appears in ring0 code (it would leave the app privileged on this hypervisor): the one
    IRETQ allowed is utramp_tf's, which only ever runs in user mode, after a SYSRETQ."""
    image = Ring0Image.load()
    insns = disassemble(image.text)
    assert sum(i.size for i in insns) == len(image.text), "the blob does not disassemble linearly"
    by_start = {i.address: i for i in insns}
    by_end = {i.address + i.size: i for i in insns}
    exits = image.exit_points()
    for port, offset in exits.items():
        insn = by_end.get(offset)
        what = f"{insn.mnemonic} {insn.op_str}" if insn else "no instruction"
        assert insn is not None and out_port(insn) == port, (
            f"exit point {offset:#x} (port {port:#x}) follows {what}"
        )
    assert out_port(by_start[image.offset("syscall_entry")]) == LAYOUT["PORT_SYSCALL"]
    for vector in range(NUM_VECTORS):
        insn = by_start[image.vector_entry(vector)]
        assert out_port(insn) == LAYOUT["PORT_EXC_BASE"] + vector, f"exc{vector} starts with {insn.mnemonic}"
    outs = {
        i.address + i.size: out_port(i) for i in insns if i.mnemonic in ("out", "outsb", "outsd", "outsw")
    }
    assert outs == {offset: port for port, offset in exits.items()}, "an OUT that is not a known exit point"
    assert not [i for i in insns if i.mnemonic in ("in", "insb", "insw", "insd")], "IN in the trampoline"
    assert by_start[image.offset("sysret_point")].mnemonic == "sysretq"
    user_mode_code = range(image.offset("utramp"), image.offset("utramp_end"))
    irets = [i for i in insns if i.mnemonic.startswith("iret")]
    assert all(i.address in user_mode_code for i in irets), "IRET in ring0 code"
    assert [i.address + i.size for i in irets] == [image.offset("utramp_end")], "utramp_tf ends in IRETQ"


def ring0_ranges():
    # windows page by page; the direct map of kernel memory: its first 8 MiB page by page, then sampled
    return [
        (RING0_BASE, RING0_BASE + WINDOWS * WINDOW_SIZE, PAGE_SIZE),
        (RING0_BASE + WINDOWS * WINDOW_SIZE, RING0_BASE + 64 * MIB, 2 * MIB),
        (PTMAP_BASE, PTMAP_BASE + 8 * MIB, PAGE_SIZE),
        (PTMAP_BASE + 8 * MIB, PTMAP_BASE + 256 * MIB, 64 * 1024),
    ]


def test_ring0_region_holds_no_secret_and_only_the_private_page_is_writable(platform, make_app, rng):
    """Scan the ring0 windows and the kernel direct map from user mode (after the app has made
    syscalls and faults there): readable pages are only trampoline text, CPU/IDT/GDT and the private
    page; only the private page is writable; no page table (the direct map is kernel-tables only)
    and no frame the Sentry did not map (the secret marker) is readable."""
    app = make_app("scan")
    marker = new_marker(rng)
    app.alloc(1, marker * (PAGE_SIZE // 16))  # a frame never mapped for the app
    app.map_new(TEST_VA, 1, Access.READ, fake_page_table(rng))
    app.map_new(TEST_VA + PAGE_SIZE, 1, Access.READ, marker)
    ranges = [(TEST_VA, TEST_VA + 2 * PAGE_SIZE, PAGE_SIZE), *ring0_ranges()]
    result = scan(app, ranges, marker)
    assert result.with_flag(HIT_TABLE) == [TEST_VA], "a page table is readable (or the detector is broken)"
    assert result.with_flag(HIT_MARKER) == [TEST_VA + PAGE_SIZE], "the secret frame is readable"
    ring0 = {p: f for p, f in result.hits.items() if p >= PTMAP_BASE}
    assert not [p for p in ring0 if p < RING0_BASE], f"direct map readable: {[hex(p) for p in ring0][:8]}"
    windows = {(p - RING0_BASE) // WINDOW_SIZE for p in ring0}
    assert windows, "no ring0 window is visible: the scan did not reach the trampoline"
    for page, flags in sorted(ring0.items()):
        offset = (page - RING0_BASE) % WINDOW_SIZE
        assert page < RING0_BASE + WINDOWS * WINDOW_SIZE and offset in READABLE_OFFSETS, (
            f"unexpected readable ring0 page {page:#x} (window offset {offset:#x})"
        )
        if flags & HIT_WRITE:
            assert offset in WRITABLE_OFFSETS, f"ring0 page {page:#x} (offset {offset:#x}) is writable"
    for window in windows:
        base = window_base(window)
        assert ring0.get(base + LAYOUT["TEXT_PAGE"], 0) & HIT_READ, f"window {window} has no text"
        assert ring0[base + LAYOUT["PRIV_PAGE"]] & HIT_WRITE, f"window {window}: private page not writable"


def test_trampoline_text_cannot_be_written(platform, make_app, rng):
    """Writes to the trampoline text, CPU, IDT and GDT pages fault (SEGV_ACCERR) and change nothing."""
    app = make_app("faults")
    image = Ring0Image.load()
    window = visible_window(app)
    base = window_base(window)
    for name in ("TEXT_PAGE", "CPU_PAGE", "IDT_PAGE", "GDT_PAGE"):
        addr = base + LAYOUT[name] + 8 * rng.randrange(16)
        event = app.run_at("write_probe", rdi=addr, rsi=rng.getrandbits(64))
        assert isinstance(event, Fault) and event.signo == SIGSEGV, f"{name}: {app.describe(event)}"
        assert event.addr == addr and event.si_code == 2, f"{name}: {app.describe(event)}"
    for offset in (image.offset("syscall_entry"), image.vector_entry(14), image.offset("sysret_point")):
        event = app.run_at("read_probe", rdi=base + offset)
        assert isinstance(event, Syscall), app.describe(event)
        assert event.args[0] == struct.unpack_from("<Q", image.text, offset)[0], "the trampoline text changed"


def visible_window(app) -> int:
    """A window this app's address space shows (after one syscall, its vCPU's window is mapped)."""
    for window in range(WINDOWS):
        event = app.run_at("read_probe", rdi=window_base(window))
        if isinstance(event, Syscall):
            return window
    pytest.fail("no ring0 window readable after a syscall")


def jump_targets(image):
    """Entry and exit points of the trampoline, and every OUT in it."""
    names = [
        "syscall_entry",
        "syscall_exit",
        "sysret_point",
        "slow_entry",
        "slow_user_cr3",
        "apply_done",
        "apply_last",
        "apply_exit",
        "enter_kernel",
        "enter_kernel_ret",
        "utramp_tf",
    ]
    targets = {name: image.offset(name) for name in names if name in image.symbols}
    for vector in range(NUM_VECTORS):
        targets[f"exc{vector}"] = image.vector_entry(vector)
        targets[f"exc{vector}_exit"] = image.symbols[f"exc{vector}_exit"]
    for insn in disassemble(image.text):
        if insn.mnemonic == "out":
            targets.setdefault(f"out@{insn.address:#x}", insn.address)
    return targets


def run_privileged_chain(app):
    """`mov cr3`, `rdmsr`, `wrmsr`, `hlt` must all still fault; then the app reports."""
    labels = ["chain_cr3_read", "chain_cr3_write", "chain_rdmsr", "chain_wrmsr", "chain_hlt", "chain_end"]
    app.regs.rip = app.snippet.addr("chain")
    app.regs.rsp = STACK_TOP
    for label, following in zip(labels, labels[1:], strict=False):
        event = app.switch()
        assert isinstance(event, Fault) and event.signo == SIGSEGV, (
            f"{label} after the jump: {app.describe(event)}"
        )
        assert app.regs.rip == app.snippet.addr(label), app.describe(event)
        app.regs.rip = app.snippet.addr(following)
    event = app.switch()
    assert isinstance(event, Syscall) and event.nr == SYS_REPORT, app.describe(event)


def test_jumping_into_the_trampoline_gives_nothing(platform, make_app):
    """The app jumps to every entry point, exit point and OUT of the trampoline (its exits, the exit
    instruction itself, SYSRETQ, the CR3 switch...). Each gives SIGSEGV or SIGILL in the trampoline,
    or for the SYSCALL in enter_kernel an honest Syscall event, never a forged exit; afterwards the
    app is as unprivileged as before."""
    image = Ring0Image.load()
    failures = []
    app = None
    for name, offset in sorted(jump_targets(image).items(), key=lambda item: item[1]):
        if app is None:  # a fresh app after a failure: its state is unknown
            app = make_app("faults")
            base = window_base(visible_window(app))
        try:
            jump_into(app, base + offset, base + LAYOUT["TEXT_SIZE"])
        except (AssertionError, pytest.fail.Exception) as exc:
            failures.append(f"{name} (+{offset:#x}): {str(exc).splitlines()[0]}")
            app = None
    assert not failures, "\n".join(failures)


def fault_site_ok(app, target, text_end):
    """A fault after jumping to `target` is reported in the trampoline at or after it, or (a platform
    may attribute it so) at the app's jump itself."""
    return target <= app.regs.rip < text_end or (
        app.regs.rip == app.snippet.addr("jump_probe") and app.regs.r15 == target
    )


def jump_into(app, target, text_end):
    """The app jumps to `target` itself (the platform refuses to start an app at a ring0 address)."""
    app.regs.rip = app.snippet.addr("jump_probe")
    app.regs.r15 = target
    app.regs.rax = 0x1234_5678
    app.regs.rsi = app.regs.rdi = DATA_VA
    app.regs.rcx = app.snippet.addr("chain")  # where a SYSRETQ that worked would go
    app.regs.r11 = 0x202
    app.regs.rsp = STACK_TOP
    event = app.switch(timeout=JUMP_WATCHDOG_S)
    if isinstance(event, Syscall):
        honest = event.nr == 0x1234_5678 and event.args[:2] == (DATA_VA, DATA_VA)
        assert honest, app.describe(event)
        event = app.switch(timeout=JUMP_WATCHDOG_S)
    assert isinstance(event, Fault) and event.signo in (SIGSEGV, SIGILL), app.describe(event)
    assert fault_site_ok(app, target, text_end), f"fault at {app.regs.rip:#x}, not in the trampoline"
    if event.signo == SIGSEGV and event.vector >= 0:
        assert event.vector in (13, 14), f"{app.describe(event)} looks like a forged exception"
    run_privileged_chain(app)


def test_private_page_is_per_address_space(platform, make_app, rng):
    """The private page is app-writable by design; what one address space writes there is not seen by
    another address space on the same context, nor on another context."""
    first = make_app("faults")
    second = make_app("faults", context=first.ctx)
    third = make_app("faults")
    window = visible_window(first)
    addr = window_base(window) + LAYOUT["PRIV_PAGE"] + 0x800
    value = rng.getrandbits(64)
    event = first.run_at("write_probe", rdi=addr, rsi=value)
    assert isinstance(event, Syscall), first.describe(event)
    event = first.run_at("read_probe", rdi=addr)
    assert isinstance(event, Syscall) and event.args[0] == value, first.describe(event)
    for other in (second, third):
        for w in range(WINDOWS):
            event = other.run_at("read_probe", rdi=window_base(w) + LAYOUT["PRIV_PAGE"] + 0x800)
            assert not (isinstance(event, Syscall) and event.args[0] == value), (
                f"window {w}: another address space reads the first one's private page"
            )


def test_concurrent_threads_never_see_kernel_tables(platform, make_app, rng):
    """Two threads of one app scan the kernel direct map, the queue pages and the windows at the same
    time. Every read fault of one goes through the trampoline's slow path (kernel tables, queued
    page-table writes) while the other keeps reading: the kernel-only pages must stay invisible to
    the other vCPU throughout (each vCPU needs its own top-level table for that)."""
    first = make_app("scan")
    second = first.new_thread()
    marker = new_marker(rng)
    first.alloc(1, marker * (PAGE_SIZE // 16))
    window_span = (RING0_BASE, RING0_BASE + WINDOWS * WINDOW_SIZE, PAGE_SIZE)
    ranges = [(PTMAP_BASE, PTMAP_BASE + 2 * MIB, PAGE_SIZE), window_span] * 3
    results = {}

    def body(app):
        # no writes: the two threads would race on each other's private pages
        results[id(app)] = scan(app, ranges, marker, try_write=False)

    AppThreads([first, second], body).join()
    for app in (first, second):
        result = results[id(app)]
        assert not result.with_flag(HIT_MARKER) and not result.with_flag(HIT_TABLE)
        for page in result.with_flag(HIT_READ):
            assert page >= RING0_BASE, f"kernel direct map page {page:#x} readable"
            offset = (page - RING0_BASE) % WINDOW_SIZE
            assert offset in READABLE_OFFSETS, f"ring0 page {page:#x} (offset {offset:#x}) readable"
        assert result.read_faults >= 3 * 512, "the scan did not fault on the direct map"


def test_app_port_io_to_exit_ports_is_sigsegv(platform, make_app):
    """The app's own OUT/IN to every port the host treats as an exit (and to 0x80, which this
    hypervisor swallows in supervisor mode) is a #GP: SIGSEGV at the instruction, never an exit."""
    app = make_app("faults")
    ports = sorted(set(Ring0Image.load().exit_points()) | {0x80})
    for port in ports:
        for probe in ("out_probe", "in_probe"):
            event = app.run_at(probe, rdx=port, rax=0)
            assert isinstance(event, Fault) and event.signo == SIGSEGV, (
                f"{probe} {port:#x}: {app.describe(event)}"
            )
            assert app.regs.rip == app.snippet.addr(probe), f"{probe} {port:#x}: {app.describe(event)}"


@pytest.mark.parametrize("cs", [0x10, 0x33], ids=["kernel-frame", "user-frame"])
def test_app_crafted_frame_for_the_user_iretq(platform, make_app, cs):
    """utramp_tf ends in an IRETQ from a frame in the app-writable private page. The app writes its
    own frame there (ring-0 CS, or user CS with IOPL=3) and jumps in: a ring-0 frame is SIGSEGV at
    the IRETQ, a user frame just continues, and either way the app stays unprivileged."""
    image = Ring0Image.load()
    if "utramp_tf" not in image.symbols:
        pytest.skip("this ring0 flavour has no utramp_tf")
    app = make_app("faults")
    base = window_base(visible_window(app))
    frame = base + LAYOUT["PRIV_PAGE"] + LAYOUT["PRIV_UT_FRAME"]
    target = app.snippet.addr("chain_cr3_read")
    ss = 0x18 if cs == 0x10 else 0x2B
    for i, word in enumerate((target, cs, 0x3202, STACK_TOP, ss)):
        event = app.run_at("write_probe", rdi=frame + 8 * i, rsi=word)
        assert isinstance(event, Syscall), app.describe(event)
    app.regs.rip = app.snippet.addr("jump_probe")
    app.regs.r15 = base + image.offset("utramp_tf")
    app.regs.rcx = 0xC000_0080
    event = app.switch(timeout=JUMP_WATCHDOG_S)
    if cs == 0x10:
        assert isinstance(event, Fault) and event.signo == SIGSEGV, app.describe(event)
        utramp_tf = base + image.offset("utramp_tf")
        assert fault_site_ok(app, utramp_tf, base + LAYOUT["TEXT_SIZE"]), f"fault at {app.regs.rip:#x}"
        app.regs.rip = target
        event = app.switch()
    assert isinstance(event, Fault) and event.signo == SIGSEGV, app.describe(event)
    assert app.regs.rip == target, app.describe(event)
    event = app.run_at("out_probe", rdx=0x80)
    assert isinstance(event, Fault) and event.signo == SIGSEGV, f"IOPL=3 took: {app.describe(event)}"
    run_privileged_chain(app)
