"""The seccomp filters, run through a small classic-BPF interpreter on synthetic seccomp_data."""

from __future__ import annotations

import struct

import pytest

from kvmsandbox.systrap import layout, seccomp
from kvmsandbox.systrap.ranges import Ranges

TEXT_END = layout.STUB_BASE + 0x1000
STUB_IP = layout.STUB_BASE + 0x40
APP_IP = 0x400000


def run_bpf(prog: bytes, nr: int, ip: int, args=(0,) * 6, arch=seccomp.AUDIT_ARCH_X86_64) -> int:
    data = struct.pack("<iIQ6Q", nr, arch, ip, *args)
    insns = [struct.unpack_from("<HBBI", prog, i) for i in range(0, len(prog), 8)]
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        if code == 0x20:
            acc = struct.unpack_from("<I", data, k)[0]
        elif code in (0x15, 0x35, 0x25):
            taken = {0x15: acc == k, 0x35: acc >= k, 0x25: acc > k}[code]
            pc += jt if taken else jf
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"unknown BPF opcode {code:#x}")


@pytest.fixture(params=[True, False], ids=["fsgsbase", "arch_prctl"])
def worker(request):
    return seccomp.build_filter(seccomp.worker_rules(request.param), TEXT_END), request.param


def test_app_code_traps_on_every_number(worker):
    prog, _ = worker
    process = seccomp.build_filter(seccomp.process_rules(), TEXT_END)
    for f in (prog, process):
        for nr in [*range(512), 0x40000000, 0x40000001, -1]:
            assert run_bpf(f, nr, APP_IP) == seccomp.SECCOMP_RET_TRAP
            assert run_bpf(f, nr, TEXT_END) == seccomp.SECCOMP_RET_TRAP  # just past the stub's code
            assert run_bpf(f, nr, layout.STUB_BASE + (1 << 32)) == seccomp.SECCOMP_RET_TRAP


def test_worker_allows_only_the_handlers_calls(worker):
    prog, fsgsbase = worker

    def allowed(nr, a0, a1):
        if nr == seccomp.NR["futex"]:
            return a1 in (seccomp.FUTEX_WAIT, seccomp.FUTEX_WAKE)
        if nr == seccomp.NR["arch_prctl"]:
            return not fsgsbase and a0 in seccomp.ARCH_FS_GS_OPS
        return nr == seccomp.NR["rt_sigreturn"]

    for nr in range(512):
        for a0, a1 in [(0, 0), (0, 1), (0, 128), (0x1002, 0), (0x1002 | 1 << 32, 0), (0, 1 | 1 << 32)]:
            verdict = run_bpf(prog, nr, STUB_IP, (a0, a1, 0, 0, 0, 0))
            want = seccomp.SECCOMP_RET_ALLOW if allowed(nr, a0, a1) else seccomp.SECCOMP_RET_TRAP
            assert verdict == want, f"nr {nr} args {a0:#x} {a1:#x}"


def test_process_filter_pins_arguments():
    prog = seccomp.build_filter(seccomp.process_rules(), TEXT_END)
    mmap = seccomp.NR["mmap"]
    ok = (0x1000, 0x1000, 3, seccomp.MAP_SHARED_FIXED, layout.STUB_MEMFD, 0)
    assert run_bpf(prog, mmap, STUB_IP, ok) == seccomp.SECCOMP_RET_ALLOW
    for bad in ((0x1000, 0x1000, 3, 0x22, layout.STUB_MEMFD, 0), (0x1000, 0x1000, 3, 0x11, 4, 0)):
        assert run_bpf(prog, mmap, STUB_IP, bad) == seccomp.SECCOMP_RET_TRAP
    write = seccomp.NR["write"]
    assert run_bpf(prog, write, STUB_IP, (layout.STUB_ACKFD, 0, 8, 0, 0, 0)) == seccomp.SECCOMP_RET_ALLOW
    assert run_bpf(prog, write, STUB_IP, (1, 0, 8, 0, 0, 0)) == seccomp.SECCOMP_RET_TRAP
    assert run_bpf(prog, seccomp.NR["clone"], STUB_IP, (0x11, 0, 0, 0, 0, 0)) == seccomp.SECCOMP_RET_TRAP


def test_foreign_arch_is_killed(worker):
    prog, _ = worker
    assert run_bpf(prog, 1, STUB_IP, arch=0x40000003) == seccomp.SECCOMP_RET_KILL_PROCESS


def test_ranges():
    r = Ranges()
    r.add(0x1000, 0x5000)
    r.add(0x8000, 0x9000)
    r.remove(0x2000, 0x3000)
    assert list(r) == [(0x1000, 0x2000), (0x3000, 0x5000), (0x8000, 0x9000)]
    assert r.intersect(0, 0x10000) == [(0x1000, 0x2000), (0x3000, 0x5000), (0x8000, 0x9000)]
    r.add(0x2000, 0x3000)
    assert r.intersect(0x1800, 0x4000) == [(0x1800, 0x4000)]
    assert r.intersect(0x5000, 0x8000) == []
