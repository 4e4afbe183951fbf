"""Host CPU feature names, derived from raw CPUID the way runsc's `cpu-features` does.

runsc prints gVisor's feature set by Linux `/proc/cpuinfo` name, blocks in
Linux's order (CPUID.1:EDX, 0x80000001:EDX, 1:ECX, 0x80000001:ECX, 7.0:EBX,
0xD.1:EAX, 7.0:ECX, 7.0:EDX) and bits ascending within a block. The tables
below are that naming as data (gVisor's `allFeatures`, including its own
spellings: `pni`, `abm`, `sha_ni`, `rdt_a` and the typo `clfushopt`), so the
output can be compared with runsc's byte for byte. Bits with no name are
reserved or not reported by gVisor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

CpuidFn = Callable[[int, int], tuple[int, int, int, int]]

_REGISTERS = ("eax", "ebx", "ecx", "edx")

# CPUID.0x80000001:EDX repeats these CPUID.1:EDX bits on AMD (reserved on
# Intel); runsc ignores them there so each feature is listed once.
EXT_EDX_DUPLICATE_MASK = 0x0183F3FF

XSAVE_BIT = 26  # CPUID.1:ECX; leaf 0xD is only meaningful when set.


@dataclasses.dataclass(frozen=True)
class Block:
    """32 feature bits read from one register of one CPUID leaf/subleaf."""

    leaf: int
    subleaf: int
    register: str
    names: dict[int, str]
    ignore_mask: int = 0

    def value(self, cpuid: CpuidFn) -> int:
        """The register's bits as runsc sees them (0 when the leaf is unavailable)."""
        if not _leaf_available(cpuid, self.leaf):
            return 0
        if self.leaf == 0xD and not cpuid(1, 0)[2] >> XSAVE_BIT & 1:
            return 0
        return cpuid(self.leaf, self.subleaf)[_REGISTERS.index(self.register)] & ~self.ignore_mask


def _leaf_available(cpuid: CpuidFn, leaf: int) -> bool:
    base = leaf & 0x8000_0000
    return leaf <= cpuid(base, 0)[0]


# Linux's block order; every table is {bit: name}.
BLOCKS: tuple[Block, ...] = (
    Block(1, 0, "edx", {
        0: "fpu", 1: "vme", 2: "de", 3: "pse", 4: "tsc", 5: "msr", 6: "pae", 7: "mce",
        8: "cx8", 9: "apic", 11: "sep", 12: "mtrr", 13: "pge", 14: "mca", 15: "cmov",
        16: "pat", 17: "pse36", 18: "pn", 19: "clflush", 21: "dts", 22: "acpi", 23: "mmx",
        24: "fxsr", 25: "sse", 26: "sse2", 27: "ss", 28: "ht", 29: "tm", 30: "ia64", 31: "pbe",
    }),
    Block(0x8000_0001, 0, "edx", {
        11: "syscall", 20: "nx", 22: "mmxext", 25: "fxsr_opt", 26: "pdpe1gb", 27: "rdtscp",
        29: "lm", 30: "3dnowext", 31: "3dnow",
    }, ignore_mask=EXT_EDX_DUPLICATE_MASK),
    Block(1, 0, "ecx", {
        0: "pni", 1: "pclmulqdq", 2: "dtes64", 3: "monitor", 4: "ds_cpl", 5: "vmx", 6: "smx",
        7: "est", 8: "tm2", 9: "ssse3", 10: "cid", 11: "sdbg", 12: "fma", 13: "cx16",
        14: "xtpr", 15: "pdcm", 17: "pcid", 18: "dca", 19: "sse4_1", 20: "sse4_2",
        21: "x2apic", 22: "movbe", 23: "popcnt", 24: "tsc_deadline_timer", 25: "aes",
        26: "xsave", 27: "osxsave", 28: "avx", 29: "f16c", 30: "rdrand", 31: "hypervisor",
    }),
    Block(0x8000_0001, 0, "ecx", {
        0: "lahf_lm", 1: "cmp_legacy", 2: "svm", 3: "extapic", 4: "cr8_legacy", 5: "abm",
        6: "sse4a", 7: "misalignsse", 8: "3dnowprefetch", 9: "osvw", 10: "ibs", 11: "xop",
        12: "skinit", 13: "wdt", 15: "lwp", 16: "fma4", 17: "tce", 21: "tbm", 22: "topoext",
        23: "perfctr_core", 24: "perfctr_nb", 26: "bpext", 27: "ptsc", 28: "perfctr_llc",
        29: "mwaitx", 30: "ad_mask_extn",
    }),
    Block(7, 0, "ebx", {
        0: "fsgsbase", 1: "tsc_adjust", 3: "bmi1", 4: "hle", 5: "avx2", 6: "fdp_excptn_only",
        7: "smep", 8: "bmi2", 9: "erms", 10: "invpcid", 11: "rtm", 12: "cqm", 13: "fpcsds",
        14: "mpx", 15: "rdt_a", 16: "avx512f", 17: "avx512dq", 18: "rdseed", 19: "adx",
        20: "smap", 23: "clfushopt", 24: "clwb", 25: "ipt", 26: "avx512pf",
        27: "avx512er", 28: "avx512cd", 29: "sha_ni", 30: "avx512bw", 31: "avx512vl",
    }),
    Block(0xD, 1, "eax", {0: "xsaveopt", 1: "xsavec", 2: "xgetbv1", 3: "xsaves"}),
    Block(7, 0, "ecx", {
        0: "prefetchwt1", 1: "avx512vbmi", 2: "umip", 3: "pku", 4: "ospke", 5: "waitpkg",
        6: "avx512_vbmi2", 7: "cet_ss", 8: "gfni", 9: "vaes", 10: "vpclmulqdq",
        11: "avx512_vnni", 12: "avx512_bitalg", 13: "tme", 14: "avx512_vpopcntdq", 16: "la57",
        22: "rdpid", 25: "cldemote", 27: "movdiri", 28: "movdir64b",
    }),
    Block(7, 0, "edx", {
        2: "avx512_4vnniw", 3: "avx512_4fmaps", 4: "fsrm", 8: "avx512_vp2intersect",
        9: "srbds_ctrl", 10: "md_clear", 11: "rtm_always_abort", 13: "tsx_force_abort",
        14: "serialize", 15: "hybrid_cpu", 16: "tsxldtrk", 18: "pconfig", 19: "arch_lbr",
        20: "ibt", 22: "amx_bf16", 23: "avx512_fp16", 24: "amx_tile", 25: "amx_int8",
        26: "spec_ctrl", 27: "intel_stibp", 28: "flush_l1d", 29: "arch_capabilities",
        30: "core_capabilities", 31: "spec_ctrl_ssbd",
    }),
)  # fmt: skip


def host_cpuid(leaf: int, subleaf: int) -> tuple[int, int, int, int]:
    """Raw CPUID on the host CPU: (eax, ebx, ecx, edx)."""
    from kvmsandbox.kvm._kvm import ffi, lib

    out = ffi.new("unsigned int[4]")
    lib.host_cpuid(leaf, subleaf, out)
    return (out[0], out[1], out[2], out[3])


def features(cpuid: CpuidFn = host_cpuid) -> Iterator[tuple[Block, int, str]]:
    """(block, bit, name) of every named feature the CPU has, in runsc's order."""
    for block in BLOCKS:
        value = block.value(cpuid)
        for bit in sorted(block.names):
            if value >> bit & 1:
                yield block, bit, block.names[bit]


def feature_line(cpuid: CpuidFn = host_cpuid) -> str:
    """The line `runsc cpu-features` prints (without the newline)."""
    return ",".join(name for _, _, name in features(cpuid))
