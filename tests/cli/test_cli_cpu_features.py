"""cpu-features: runsc's names and order, backed by raw CPUID bits on this host."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.main import main
from kvmsandbox import cpuid

# `runsc cpu-features` for the AMD EPYC (family 25) host of facts/gvisor.md §2.6,
# computed there by an independent C re-implementation of runsc's query.
RECORDED_FAMILY = 25
RECORDED_LINE = (
    "fpu,vme,de,pse,tsc,msr,pae,mce,cx8,apic,sep,mtrr,pge,mca,cmov,pat,pse36,clflush,mmx,fxsr,sse,sse2,"
    "ht,syscall,nx,mmxext,fxsr_opt,pdpe1gb,rdtscp,lm,pni,pclmulqdq,ssse3,fma,cx16,pcid,sse4_1,sse4_2,"
    "x2apic,movbe,popcnt,tsc_deadline_timer,aes,xsave,osxsave,avx,f16c,rdrand,hypervisor,lahf_lm,"
    "cmp_legacy,cr8_legacy,abm,sse4a,misalignsse,3dnowprefetch,osvw,topoext,fsgsbase,tsc_adjust,bmi1,"
    "avx2,smep,bmi2,erms,invpcid,rdseed,adx,smap,clfushopt,clwb,sha_ni,xsaveopt,xsavec,xgetbv1,xsaves,"
    "umip,pku,ospke,cet_ss,vaes,vpclmulqdq,rdpid,fsrm"
)

# gVisor spellings that differ from /proc/cpuinfo's.
LINUX_SPELLING = {"clfushopt": "clflushopt"}
# Names runsc prints that /proc/cpuinfo lacks: osxsave and cet_ss (facts/gvisor.md §2.6), and
# rdseed, which Linux clears on AMD family 26 (Zen 5) because of its RDSEED erratum.
NOT_IN_PROC_CPUINFO = {"osxsave", "cet_ss", "rdseed"}


def _family() -> int:
    eax = cpuid.host_cpuid(1, 0)[0]
    family = eax >> 8 & 0xF
    return family + (eax >> 20 & 0xFF) if family == 0xF else family


def _proc_flags() -> list[str]:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return line.split(":", 1)[1].split()
    pytest.skip("/proc/cpuinfo has no flags line")


def _rank() -> dict[str, tuple[int, int]]:
    return {name: (i, bit) for i, block in enumerate(cpuid.BLOCKS) for bit, name in block.names.items()}


def test_command_prints_one_line_equal_to_the_library() -> None:
    result = CliRunner().invoke(main, ["cpu-features"])
    assert result.exit_code == 0, result.output
    assert result.output == cpuid.feature_line() + "\n"
    assert " " not in result.output


def test_recorded_line_uses_our_names_in_our_order() -> None:
    rank = _rank()
    names = RECORDED_LINE.split(",")
    assert all(name in rank for name in names), [n for n in names if n not in rank]
    assert names == sorted(names, key=rank.__getitem__)


def test_equals_recorded_line_on_the_recorded_cpu() -> None:
    if _family() != RECORDED_FAMILY:
        pytest.skip(f"host CPU family {_family()}; the recorded line is from family {RECORDED_FAMILY}")
    assert cpuid.feature_line() == RECORDED_LINE


def test_each_flag_is_backed_by_its_cpuid_bit() -> None:
    listed = list(cpuid.features())
    assert listed
    for block, bit, name in listed:
        regs = cpuid.host_cpuid(block.leaf, block.subleaf)
        value = regs[("eax", "ebx", "ecx", "edx").index(block.register)]
        assert value >> bit & 1, (
            f"{name}: CPUID.{block.leaf:#x}.{block.subleaf}:{block.register} bit {bit} clear"
        )


def test_agrees_with_proc_cpuinfo() -> None:
    """Linux decodes the same bits independently; names both know must agree, in the same order."""
    proc = _proc_flags()
    ours = [LINUX_SPELLING.get(n, n) for n in cpuid.feature_line().split(",")]
    known = {LINUX_SPELLING.get(n, n) for block in cpuid.BLOCKS for n in block.names.values()}
    missing = [n for n in ours if n not in proc and n not in NOT_IN_PROC_CPUINFO]
    assert not missing, f"listed but not in /proc/cpuinfo: {missing}"
    unlisted = [n for n in proc if n in known and n not in ours]
    assert not unlisted, f"in /proc/cpuinfo but not listed: {unlisted}"
    common = [n for n in ours if n in proc]
    assert common == [n for n in proc if n in common]


def _fake_cpuid(regs: dict[tuple[int, int], tuple[int, int, int, int]]) -> cpuid.CpuidFn:
    return lambda leaf, subleaf: regs.get((leaf, subleaf), (0, 0, 0, 0))


def test_gating_and_duplicate_bits() -> None:
    """Leaf 0xD needs XSAVE, leaf 7 needs max leaf >= 7, and 0x80000001:EDX drops CPUID.1 copies."""
    regs = {
        (0, 0): (0xD, 0, 0, 0),
        (1, 0): (0, 0, 1 << 0, 1 << 0),  # pni; fpu
        (7, 0): (0, 1 << 0, 0, 1 << 4),  # fsgsbase; fsrm
        (0xD, 1): (1, 0, 0, 0),  # xsaveopt, but XSAVE is off
        (0x8000_0000, 0): (0x8000_0001, 0, 0, 0),
        (0x8000_0001, 0): (0, 0, 0, (1 << 0) | (1 << 11)),  # duplicate fpu; syscall
    }
    assert cpuid.feature_line(_fake_cpuid(regs)) == "fpu,syscall,pni,fsgsbase,fsrm"
    regs[(0, 0)] = (6, 0, 0, 0)
    regs[(1, 0)] = (0, 0, 1 << cpuid.XSAVE_BIT, 0)
    assert cpuid.feature_line(_fake_cpuid(regs)) == "syscall,xsave"
    regs[(0, 0)] = (0xD, 0, 0, 0)
    assert cpuid.feature_line(_fake_cpuid(regs)) == "syscall,xsave,fsgsbase,xsaveopt,fsrm"
