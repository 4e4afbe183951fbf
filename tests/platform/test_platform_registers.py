"""Register state: GPRs, RFLAGS, FS/GS base and XMM/YMM survive round trips and Sentry edits."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from platform_harness import MASK64, SIGILL, SYS_EXIT, SYS_REPORT, XMM_OFFSET, H, set_xmm

from kvmsandbox.platform import GPR_NAMES, RFLAGS_FIXED, Access, Fault, Syscall

FLAGS_MASK = H["FLAGS_MASK"]
GPRS = GPR_NAMES


def host_has(flag: str) -> bool:
    """Whether /proc/cpuinfo lists a CPU feature flag."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return flag in line.split()
    return False


def what_name(what: int) -> str:
    if what < 16:
        return GPRS[what]
    names = {H["WHAT_FLAGS"]: "rflags", H["WHAT_FS"]: "fs:[0]"}
    if what in names:
        return names[what]
    low = what & 0xFF
    return f"vector register {low - H['WHAT_VEC']} qword {what >> 8}"


def setup_regs_snippet(app, rng, count):
    seeds = [rng.getrandbits(64) for _ in range(16)]
    app.set_u64(H["R_COUNT"], count)
    app.set_u64(H["R_FSEED"], rng.getrandbits(64))
    app.set_u64(H["R_SEEDS"], *seeds)
    app.set_bytes(H["R_VSEEDS"], rng.randbytes(16 * 32))
    app.set_u64(H["R_FS_EXPECT"], app.fs_value)
    return seeds


def fail_detail(app) -> str:
    it, what, got, exp = app.data_u64s(H["R_FAIL_ITER"], 4)
    return f"iteration {it}: {what_name(what)} is {got:#x}, expected {exp:#x}"


def test_avx_usable_when_the_host_has_it(make_app, rng):
    """Apps built for AVX must run: the app sees OSXSAVE, AVX and XCR0 SSE|AVX state if the host has AVX."""
    app = make_app("regs")
    setup_regs_snippet(app, rng, 0)
    assert app.run() == 0
    use_avx, xcr0 = app.data_u64s(H["R_USE_AVX"], 2)
    if host_has("avx"):
        assert use_avx == 1, f"host has AVX, the app does not (XCR0 {xcr0:#x})"
    assert xcr0 & 1, f"XCR0 {xcr0:#x} lacks x87 state"


def test_registers_survive_1000_round_trips(make_app, rng):
    """All GPRs, RFLAGS, FS/GS base and XMM/YMM survive 1000 syscall round trips.

    The app changes every pattern each iteration and checks after each
    return; the harness checks what the platform reports at each event,
    returns a fresh random rax each time (the app logs what it got), and
    every 100 ticks moves FS base to another page (the app must follow).
    """
    count = 1000
    app = make_app("regs")
    seeds = setup_regs_snippet(app, rng, count)
    fseed = app.data_u64(H["R_FSEED"])
    fs_pages = [(H["FS_VA"], app.fs_value)]
    for i in range(3):
        value = rng.getrandbits(64)
        va = H["TEST_VA"] + i * 0x1000
        app.map_new(va, 1, Access.RW, struct.pack("<Q", value))
        fs_pages.append((va, value))
    tick_return = app.snippet.addr("tick_return")
    returns = []
    fs_index = 0

    def tick(event, regs):
        nonlocal fs_index
        i = len(returns)
        for k, name in enumerate(GPRS):
            if name in ("rax", "rcx", "r11"):
                continue
            want = (H["RSP_BASE"] + ((i * 8) & H["RSP_MASK"])) if name == "rsp" else (seeds[k] + i) & MASK64
            got = getattr(regs, name)
            assert got == want, f"tick {i}: the platform reports {name}={got:#x}, the app set {want:#x}"
        flags = ((fseed + i) & FLAGS_MASK) | RFLAGS_FIXED
        assert regs.rflags & FLAGS_MASK == flags & FLAGS_MASK, f"tick {i}: rflags {regs.rflags:#x}"
        assert regs.r11 == flags, f"tick {i}: r11 {regs.r11:#x}, RFLAGS at SYSCALL was {flags:#x}"
        assert regs.rcx == tick_return == regs.rip, f"tick {i}: rcx {regs.rcx:#x} rip {regs.rip:#x}"
        assert regs.fs_base == fs_pages[fs_index][0], f"tick {i}: fs_base {regs.fs_base:#x}"
        if i % 100 == 99:
            fs_index = (fs_index + 1) % len(fs_pages)
            regs.fs_base = fs_pages[fs_index][0]
            app.set_u64(H["R_FS_EXPECT"], fs_pages[fs_index][1])
        ret = rng.getrandbits(64)
        returns.append(ret)
        return ret

    status = app.run({H["SYS_TICK"]: tick})
    assert status == 0, f"the app found a register changed: {fail_detail(app)}"
    assert app.data_u64(H["R_ITER"]) == count
    assert app.data_u64s(H["R_LOG"], count) == returns, "the app did not get the returned rax values"
    if host_has("avx"):
        assert app.data_u64(H["R_USE_AVX"]) == 1, "YMM upper halves were not tested: no AVX in the app"


def random_gprs(rng):
    values = {name: rng.getrandbits(64) for name in GPRS}
    # canonical, so a platform that has to load it into a real RSP can
    values["rsp"] = rng.randrange(0x10000, 1 << 47) & ~7
    return values


def set_everything(app, rng, rip_symbol):
    """Overwrite every register the interface carries; return what was set."""
    gprs = random_gprs(rng)
    for name, value in gprs.items():
        setattr(app.regs, name, value)
    flags = (rng.getrandbits(64) & FLAGS_MASK) | RFLAGS_FIXED
    app.regs.rflags = flags
    app.regs.rip = app.snippet.addr(rip_symbol)
    fs_value = rng.getrandbits(64)
    fs_va = H["TEST_VA"]
    app.map_new(fs_va, 1, Access.RW, struct.pack("<Q", fs_value))
    app.regs.fs_base = fs_va
    return gprs, flags, fs_value


def check_landing(app, gprs, flags, fs_value):
    saved = dict(zip(GPRS, app.data_u64s(H["R_SAVE"], 16), strict=True))
    for name in GPRS:
        assert saved[name] == gprs[name], (
            f"the app found {name}={saved[name]:#x}, the Sentry set {gprs[name]:#x}"
        )
    got_flags = app.data_u64(H["R_SAVE_FLAGS"])
    assert got_flags & FLAGS_MASK == flags & FLAGS_MASK, f"app RFLAGS {got_flags:#x}, Sentry set {flags:#x}"
    assert app.data_u64(H["D_RESULT"]) == fs_value, "the FS base edit did not reach the app"


def test_sentry_edits_every_register(make_app, rng):
    """What the Sentry writes into every GPR (rcx, r11 too), RFLAGS, RIP and FS base reaches the app."""
    app = make_app("setregs")
    app.set_bytes(H["R_VSEEDS"], rng.randbytes(256))
    app.expect_syscall(SYS_REPORT)
    expected = set_everything(app, rng, "landing")
    assert app.expect_syscall(SYS_EXIT).args[0] == 0
    check_landing(app, *expected)


def test_registers_survive_an_exception(make_app, rng):
    """A fault reports the exact registers and resuming after it restores all of them, rcx and r11 too."""
    app = make_app("setregs")
    app.expect_syscall(SYS_REPORT)
    gprs, flags, fs_value = set_everything(app, rng, "ud_then_land")
    event = app.expect_fault("ud2")
    assert isinstance(event, Fault) and event.signo == SIGILL, app.describe(event)
    for name in GPRS:
        got = getattr(app.regs, name)
        assert got == gprs[name], f"at the fault {name}={got:#x}, it was {gprs[name]:#x}"
    assert app.regs.rflags & FLAGS_MASK == flags & FLAGS_MASK, f"rflags at the fault {app.regs.rflags:#x}"
    app.regs.rip = app.snippet.addr("landing")
    assert app.expect_syscall(SYS_EXIT).args[0] == 0
    check_landing(app, gprs, flags, fs_value)


def test_fpu_state_visible_and_settable(make_app, rng):
    """pull_fpu() shows the app's XMM registers; an image given in regs.fpu is what the app then sees."""
    app = make_app("setregs")
    seeds = rng.randbytes(256)
    app.set_bytes(H["R_VSEEDS"], seeds)
    app.expect_syscall(SYS_REPORT)
    image = app.ctx.pull_fpu()
    assert image is not None and len(image) >= 512, "pull_fpu() gave no XSAVE image"
    got = bytes(image[XMM_OFFSET : XMM_OFFSET + 256])
    for k in range(16):
        assert got[16 * k : 16 * k + 16] == seeds[16 * k : 16 * k + 16], (
            f"pull_fpu: xmm{k} differs from the app's"
        )
    new = rng.randbytes(256)
    image = bytearray(image)
    set_xmm(image, new)
    app.regs.fpu = image
    app.regs.rip = app.snippet.addr("landing")
    app.regs.rsp = H["STACK_TOP"]
    assert app.expect_syscall(SYS_EXIT).args[0] == 0
    saved = app.mf.read(app.data_off + H["R_VSAVE"], 256)
    for k in range(16):
        assert saved[16 * k : 16 * k + 16] == new[16 * k : 16 * k + 16], f"xmm{k} edit did not reach the app"


def test_fpu_state_is_per_context(make_app, rng):
    """Two contexts' XMM state stays apart while they take turns running."""
    apps = [make_app("setregs") for _ in range(2)]
    seeds = [rng.randbytes(256) for _ in apps]
    for app, seed in zip(apps, seeds, strict=True):
        app.set_bytes(H["R_VSEEDS"], seed)
    for app in apps:
        app.expect_syscall(SYS_REPORT)
    for _ in range(3):
        for app, seed in zip(apps, seeds, strict=True):
            app.regs.rip = app.snippet.addr("set_return")
            event = app.expect_fault("ud2")
            assert event.signo == SIGILL, app.describe(event)
            image = app.ctx.pull_fpu()
            assert bytes(image[XMM_OFFSET : XMM_OFFSET + 256]) == seed, (
                "another context's XMM state leaked in"
            )
    for app in apps:
        app.regs.rip = app.snippet.addr("landing")
        app.regs.rsp = H["STACK_TOP"]
        assert app.expect_syscall(SYS_EXIT).args[0] == 0
    for app, seed in zip(apps, seeds, strict=True):
        assert app.mf.read(app.data_off + H["R_VSAVE"], 256) == seed


def test_fs_and_gs_base(make_app, rng):
    """fs:[0] and gs:[0] read through the bases the Sentry sets, and follow each change at once."""
    app = make_app("faults")
    pages = []
    for i in range(4):
        value = rng.getrandbits(64)
        va = H["TEST_VA"] + i * 0x2000
        app.map_new(va, 1, Access.READ, struct.pack("<Q", value))
        pages.append((va, value))
    for base in ("fs_base", "gs_base"):
        for va, value in pages:
            setattr(app.regs, base, va)
            event = app.run_at(base[:2] + "_read_probe")
            assert event == Syscall(SYS_REPORT, event.args) and event.args[0] == value, (
                f"with {base}={va:#x} the app read {app.describe(event)}, the page holds {value:#x}"
            )
            assert getattr(app.regs, base) == va, f"{base} reported as {getattr(app.regs, base):#x}"


def test_fs_and_gs_base_survive_round_trips(make_app, rng):
    """FS and GS base stay what the Sentry set across syscalls and faults it does not touch them in."""
    app = make_app("faults")
    for base, probe, want in (
        ("fs_base", "fs_read_probe", app.fs_value),
        ("gs_base", "gs_read_probe", app.gs_value),
    ):
        for trip in range(4):
            event = app.run_at(probe)
            assert isinstance(event, Syscall) and event.args[0] == want, (
                f"round trip {trip}: {base}={getattr(app.regs, base):#x}, read {app.describe(event)}, "
                f"the page holds {want:#x}"
            )
        event = app.run_at("ud_probe")
        assert isinstance(event, Fault) and event.signo == SIGILL, app.describe(event)
        event = app.run_at(probe)
        assert isinstance(event, Syscall) and event.args[0] == want, f"after a fault: {app.describe(event)}"


def test_avx512_state_survives_round_trips(make_app, rng):
    """ZMM0-31 and k0-7 survive 200 round trips (glibc's string functions use ymm16-31 and opmasks
    on CPUs that have them); skipped only where the host has no AVX-512."""
    if not (host_has("avx512f") and host_has("avx512bw")):
        pytest.skip("the host has no AVX-512F/BW")
    count = 200
    app = make_app("avx512")
    zseeds = rng.randbytes(32 * 64)
    kseeds = rng.randbytes(8 * 8)
    app.set_u64(H["Z_COUNT"], count)
    app.set_bytes(H["Z_SEEDS"], zseeds)
    app.set_bytes(H["Z_KSEEDS"], kseeds)
    event = app.expect_syscall(SYS_REPORT)
    assert event.args[0] == 1, f"AVX-512 not usable in the app (XCR0 {event.args[1]:#x})"
    ticks = 0

    def check(i):
        saved = app.mf.read(app.data_off + H["Z_SAVE"], 32 * 64)
        for k in range(32):
            j = (k + i) % 32
            assert saved[64 * k : 64 * k + 64] == zseeds[64 * j : 64 * j + 64], (
                f"iteration {i}: zmm{k} changed"
            )
        ksaved = app.mf.read(app.data_off + H["Z_KSAVE"], 64)
        for k in range(8):
            j = (k + i) % 8
            assert ksaved[8 * k : 8 * k + 8] == kseeds[8 * j : 8 * j + 8], f"iteration {i}: k{k} changed"

    def tick(event, regs):
        nonlocal ticks
        if ticks:
            check(ticks - 1)
        ticks += 1
        return rng.getrandbits(64)

    assert app.run({H["SYS_TICK"]: tick}) == 0
    assert ticks == count
    check(count - 1)


def test_fpu_image_given_to_the_first_switch(make_app, rng):
    """A new context's first switch loads the FPU image in regs.fpu (a new thread or exec'd process
    starts with the state the Sentry gives it, e.g. the parent's on clone)."""
    app = make_app("setregs")
    image = app.ctx.pull_fpu()
    xmm = rng.randbytes(256)
    set_xmm(image, xmm)
    app.regs.fpu = image
    app.regs.rip = app.snippet.addr("landing")
    assert app.expect_syscall(SYS_EXIT).args[0] == 0
    assert app.mf.read(app.data_off + H["R_VSAVE"], 256) == xmm, "the first switch ignored regs.fpu"
