"""Loading a program image into a fresh MM: executable, interpreter, vDSO, stack, auxv."""

from __future__ import annotations

import dataclasses
import errno
from collections.abc import Callable
from pathlib import Path

from sentry.errors import Errno
from sentry.kernel.creds import Credentials
from sentry.loader import elf, stack
from sentry.mm.frames import SharedPages
from sentry.mm.mm import MM, page_up
from sentry.mm.vma import PROT_EXEC, PROT_READ, PROT_WRITE, Backing, BytesBacking
from sentry.vfs.stat import Stat

VDSO_DIR = Path(__file__).resolve().parent / "vdso"
_vdso_image: bytes | None = None


def vdso_image() -> bytes:
    """The built vDSO (built from vdso.c on first use if the package build did not)."""
    global _vdso_image
    if _vdso_image is None:
        path = VDSO_DIR / "vdso.so"
        if not path.exists():
            from sentry.loader.vdso.build import build_vdso

            build_vdso(VDSO_DIR)
        _vdso_image = path.read_bytes()
    return _vdso_image


@dataclasses.dataclass(frozen=True)
class Executable:
    """A file to map: its whole contents (shared across execs through the kernel's cache)."""

    data: bytes
    backing: Backing
    path: str
    stat: Stat | None = None  # the file's as this open found it (execve's trace point reports it)


Opener = Callable[[bytes], Executable]


def load(
    mm: MM,
    exe: Executable,
    open_interp: Opener,
    argv: list[bytes],
    envp: list[bytes],
    execfn: bytes,
    creds: Credentials,
    vvar: SharedPages,
    vdso: BytesBacking,
) -> tuple[int, int]:
    """Map everything for a new program; returns (entry, initial rsp)."""
    info = elf.parse(exe.data)
    interp = None
    if info.interp is not None:
        interp = open_interp(info.interp)
        interp_info = elf.parse(interp.data)
        if interp_info.interp is not None:
            raise Errno(errno.ELIBBAD)
    bias = elf.choose_bias(mm, info, False)
    end = elf.load(mm, exe.backing, info, bias, exe.path)
    mm.brk_start = mm.brk = page_up(end)
    entry = info.entry + bias
    base = 0
    if interp is not None:
        base = elf.choose_bias(mm, interp_info, True)
        elf.load(mm, interp.backing, interp_info, base, interp.path)
        entry = interp_info.entry + base
    vdso_len = page_up(len(vdso.data))
    vvar_addr = mm.find_free(4096 + vdso_len)
    mm.map(
        vvar_addr,
        4096,
        PROT_READ,
        fixed=True,
        shared=True,
        shared_pages=vvar,
        name="[vvar]",
        max_prot=PROT_READ,
    )
    vdso_addr = vvar_addr + 4096
    mm.map(
        vdso_addr,
        vdso_len,
        PROT_READ | PROT_EXEC,
        fixed=True,
        backing=vdso,
        name="[vdso]",
    )
    top = mm.max_addr & ~4095
    mm.map(
        top - stack.STACK_INITIAL,
        stack.STACK_INITIAL,
        PROT_READ | PROT_WRITE,
        fixed=True,
        name="[stack]",
        growsdown=True,
    )
    phdr = (info.phdr_vaddr or 0) + bias
    auxv = [
        (stack.AT_SYSINFO_EHDR, vdso_addr),
        (stack.AT_MINSIGSTKSZ, 2048),
        (stack.AT_HWCAP, stack.HWCAP),
        (stack.AT_PAGESZ, 4096),
        (stack.AT_CLKTCK, 100),
        (stack.AT_PHDR, phdr),
        (stack.AT_PHENT, 56),
        (stack.AT_PHNUM, info.phnum),
        (stack.AT_BASE, base),
        (stack.AT_FLAGS, 0),
        (stack.AT_ENTRY, info.entry + bias),
        (stack.AT_UID, creds.ruid),
        (stack.AT_EUID, creds.euid),
        (stack.AT_GID, creds.rgid),
        (stack.AT_EGID, creds.egid),
        (stack.AT_SECURE, 0),
        (stack.AT_HWCAP2, 0),
    ]
    sp = stack.build(mm, top, argv, envp, execfn, auxv)
    return entry, sp
