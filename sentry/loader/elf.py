"""ELF executables: parse (pyelftools) and map PT_LOAD segments into an MM.

Static, static-PIE and dynamically linked programs (the interpreter named
by PT_INTERP is loaded the same way). Anything that is not a well-formed
x86-64 ELF executable is ENOEXEC.
"""

from __future__ import annotations

import dataclasses
import errno
import io

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from sentry.errors import Errno
from sentry.mm.mm import MM, page_down, page_up
from sentry.mm.vma import PROT_EXEC, PROT_READ, PROT_WRITE, Backing

PT_LOAD, PT_INTERP, PT_PHDR, PT_GNU_STACK = 1, 3, 6, 0x6474E551
PF_X, PF_W, PF_R = 1, 2, 4
ET_EXEC, ET_DYN = 2, 3
PIE_BASE = 0x5555_5555_4000
MAX_PHNUM = 4096 // 56 * 16


@dataclasses.dataclass(frozen=True)
class Segment:
    vaddr: int
    offset: int
    filesz: int
    memsz: int
    prot: int


@dataclasses.dataclass(frozen=True)
class ElfInfo:
    type: int
    entry: int
    phoff: int
    phnum: int
    phentsize: int
    segments: tuple[Segment, ...]
    interp: bytes | None
    phdr_vaddr: int | None  # from PT_PHDR or the PT_LOAD holding the headers

    @property
    def span(self) -> tuple[int, int]:
        lo = min(page_down(s.vaddr) for s in self.segments)
        hi = max(page_up(s.vaddr + s.memsz) for s in self.segments)
        return lo, hi


def parse(data: bytes) -> ElfInfo:
    """Validate and describe an executable image; ENOEXEC if it is not one we can run."""
    if data[:4] != b"\x7fELF":
        raise Errno(errno.ENOEXEC)
    try:
        elf = ELFFile(io.BytesIO(data))
        header = elf.header
        if elf.elfclass != 64 or not elf.little_endian or header["e_machine"] != "EM_X86_64":
            raise Errno(errno.ENOEXEC)
        etype = {"ET_EXEC": ET_EXEC, "ET_DYN": ET_DYN}.get(header["e_type"])
        if etype is None or header["e_phentsize"] != 56 or not 0 < header["e_phnum"] <= MAX_PHNUM:
            raise Errno(errno.ENOEXEC)
        segments = []
        interp = None
        phdr_vaddr = None
        for i in range(header["e_phnum"]):
            ph = elf.get_segment(i).header
            ptype = ph["p_type"]
            if ptype == "PT_LOAD":
                _check_load(ph, len(data))
                prot = (
                    (PROT_READ if ph["p_flags"] & PF_R else 0)
                    | (PROT_WRITE if ph["p_flags"] & PF_W else 0)
                    | (PROT_EXEC if ph["p_flags"] & PF_X else 0)
                )
                segments.append(Segment(ph["p_vaddr"], ph["p_offset"], ph["p_filesz"], ph["p_memsz"], prot))
            elif ptype == "PT_INTERP":
                raw = data[ph["p_offset"] : ph["p_offset"] + ph["p_filesz"]]
                if not 1 < len(raw) <= 4096 or not raw.endswith(b"\0"):
                    raise Errno(errno.ENOEXEC)
                interp = raw[:-1]
            elif ptype == "PT_PHDR":
                phdr_vaddr = ph["p_vaddr"]
    except (ELFError, ValueError, KeyError, IndexError, TypeError, AssertionError) as e:
        raise Errno(errno.ENOEXEC) from e
    if not segments:
        raise Errno(errno.ENOEXEC)
    if phdr_vaddr is None:
        phoff = header["e_phoff"]
        for s in segments:
            if s.offset <= phoff < s.offset + s.filesz:
                phdr_vaddr = s.vaddr + phoff - s.offset
    return ElfInfo(
        etype,
        header["e_entry"],
        header["e_phoff"],
        header["e_phnum"],
        56,
        tuple(segments),
        interp,
        phdr_vaddr,
    )


def _check_load(ph: dict, size: int) -> None:
    if ph["p_filesz"] > ph["p_memsz"] or ph["p_offset"] + ph["p_filesz"] > size:
        raise Errno(errno.ENOEXEC)
    if (ph["p_vaddr"] - ph["p_offset"]) % 4096 or ph["p_vaddr"] + ph["p_memsz"] >= 1 << 47:
        raise Errno(errno.ENOEXEC)


def choose_bias(mm: MM, info: ElfInfo, is_interp: bool) -> int:
    """Load bias: 0 for ET_EXEC, a fixed PIE base for the program, a free range for ld.so."""
    if info.type == ET_EXEC:
        return 0
    lo, hi = info.span
    if is_interp:
        return mm.find_free(hi - lo) - lo
    return PIE_BASE - lo


def load(mm: MM, backing: Backing, info: ElfInfo, bias: int, name: str) -> int:
    """Map every PT_LOAD at `bias`; returns the end of the highest segment (initial brk)."""
    lo, hi = info.span
    if lo + bias < mm.min_addr or hi + bias > mm.max_addr:
        raise Errno(errno.ENOMEM)
    end = 0
    for seg in info.segments:
        start = page_down(seg.vaddr + bias)
        file_end = seg.vaddr + bias + seg.filesz
        mem_end = page_up(seg.vaddr + bias + seg.memsz)
        if seg.filesz:
            mm.map(
                start,
                page_up(file_end) - start,
                seg.prot,
                fixed=True,
                backing=backing,
                offset=page_down(seg.offset),
                name=name,
            )
            if seg.memsz > seg.filesz and file_end & 4095:
                # The bss starts inside the last file page: that page's tail must read as zero.
                mm.copy_out(file_end, bytes(page_up(file_end) - file_end), force=True)
        anon_start = page_up(file_end) if seg.filesz else start
        if mem_end > anon_start:
            mm.map(anon_start, mem_end - anon_start, seg.prot, fixed=True)
        end = max(end, seg.vaddr + bias + seg.memsz)
    return end
