"""sentry/mm and the ELF loader against a real MemoryFile and a recording fake address space (no platform)."""

from __future__ import annotations

import errno
import struct
from pathlib import Path

import pytest

from kvmsandbox.memory.memfile import MemoryFile
from kvmsandbox.platform import Access, AddressSpace
from sentry.errors import Errno
from sentry.loader import elf, stack
from sentry.mm.frames import Frames
from sentry.mm.mm import MM
from sentry.mm.vma import PROT_READ, PROT_WRITE

RW = PROT_READ | PROT_WRITE
LOW, HIGH = 0x10000, 0x7FFF_FFFF_F000


class FakeAddressSpace(AddressSpace):
    """Records what the platform would hold: page -> (file offset, perms)."""

    def __init__(self) -> None:
        self.pages: dict[int, tuple[int, Access]] = {}
        self.released = False

    def map(self, addr, length, file_offset, perms):
        for i in range(0, length, 4096):
            self.pages[addr + i] = (file_offset + i, perms)

    def unmap(self, addr, length):
        for i in range(0, length, 4096):
            self.pages.pop(addr + i, None)

    def protect(self, addr, length, perms):
        for i in range(0, length, 4096):
            if addr + i in self.pages:
                self.pages[addr + i] = (self.pages[addr + i][0], perms)

    def release(self):
        self.released = True


@pytest.fixture
def frames():
    memfile = MemoryFile(64 << 20)
    yield Frames(memfile)
    memfile.close()


def new_mm(frames: Frames) -> MM:
    return MM(frames, FakeAddressSpace(), LOW, HIGH)


def test_copy_roundtrip_and_efault(frames):
    mm = new_mm(frames)
    addr = mm.map(0, 3 * 4096, RW)
    mm.copy_out(addr + 4000, b"x" * 5000)
    assert mm.copy_in(addr + 4000, 5000) == b"x" * 5000
    assert mm.copy_in(addr, 4) == bytes(4)
    for bad in (0, addr + 3 * 4096, HIGH, (1 << 64) - 8):
        with pytest.raises(Errno) as e:
            mm.copy_in(bad, 8)
        assert e.value.code == errno.EFAULT
    with pytest.raises(Errno):
        mm.copy_in(addr + 3 * 4096 - 4, 8)  # straddles the end


def test_permissions_are_checked(frames):
    mm = new_mm(frames)
    ro = mm.map(0, 4096, PROT_READ)
    with pytest.raises(Errno):
        mm.copy_out(ro, b"no")
    none = mm.map(0, 4096, 0)
    with pytest.raises(Errno):
        mm.copy_in(none, 1)
    assert not mm.handle_fault(ro, Access.WRITE)
    assert mm.handle_fault(ro, Access.READ)


def test_read_cstring(frames):
    mm = new_mm(frames)
    addr = mm.map(0, 2 * 4096, RW)
    mm.copy_out(addr + 4090, b"hello world\0")
    assert mm.read_cstring(addr + 4090) == b"hello world"
    mm.copy_out(addr, b"a" * 8192)
    with pytest.raises(Errno) as e:
        mm.read_cstring(addr, 100)
    assert e.value.code == errno.ENAMETOOLONG
    with pytest.raises(Errno) as e:
        mm.read_cstring(addr, 100000)
    assert e.value.code == errno.EFAULT  # runs off the end of the mapping


def test_fork_is_copy_on_write(frames):
    parent = new_mm(frames)
    addr = parent.map(0, 4096, RW)
    parent.copy_out(addr, b"parent")
    assert parent.handle_fault(addr, Access.WRITE)
    child = parent.fork(FakeAddressSpace())
    assert parent.asp.pages[addr][1] == Access.READ  # write-protected for COW
    child.copy_out(addr, b"child!")
    assert parent.copy_in(addr, 6) == b"parent"
    assert child.copy_in(addr, 6) == b"child!"
    assert parent.handle_fault(addr, Access.WRITE)  # last reference: upgraded in place
    assert parent.asp.pages[addr][1] & Access.WRITE


def test_shared_anonymous_memory_survives_fork(frames):
    parent = new_mm(frames)
    addr = parent.map(0, 4096, RW, shared=True)
    child = parent.fork(FakeAddressSpace())
    child.copy_out(addr, b"seen")
    assert parent.copy_in(addr, 4) == b"seen"


def test_unmap_frees_frames_after_platform_unmap(frames):
    mm = new_mm(frames)
    before = frames.file.allocated_bytes
    addr = mm.map(0, 16 * 4096, RW)
    mm.copy_out(addr, b"z" * 16 * 4096)
    assert frames.file.allocated_bytes > before
    mm.unmap(addr + 4096, 4096)
    assert addr + 4096 not in mm.asp.pages
    with pytest.raises(Errno):
        mm.copy_in(addr + 4096, 1)
    mm.unmap(addr, 16 * 4096)
    assert frames.file.allocated_bytes == before
    assert mm.vmas == []


def test_mremap_moves_data_and_madvise_dontneed_zeroes(frames):
    mm = new_mm(frames)
    addr = mm.map(0, 4096, RW)
    mm.copy_out(addr, b"keep")
    mm.map(addr + 4096, 4096, RW, fixed=True)  # blocks growth in place
    new = mm.remap(addr, 4096, 8192, True, None)
    assert new != addr and mm.copy_in(new, 4) == b"keep"
    mm.discard(new, 8192)
    assert mm.copy_in(new, 4) == bytes(4)


def test_brk_and_maps_text(frames):
    mm = new_mm(frames)
    mm.brk_start = mm.brk = 0x600000
    assert mm.set_brk(0x602000) == 0x602000
    mm.copy_out(0x601000, b"heap")
    assert mm.set_brk(0x500000) == 0x602000  # below the start: unchanged
    assert mm.set_brk(0x600000) == 0x600000
    with pytest.raises(Errno):
        mm.copy_in(0x601000, 1)
    mm.map(HIGH - 4096, 4096, RW, fixed=True, name="[stack]", growsdown=True)
    text = mm.maps_text()
    assert "7ffffffff000-7ffffffff000" not in text
    line = text.splitlines()[-1]
    assert line.startswith("7fffffffe000-7ffffffff000 rw-p 00000000 00:00 0 ") and line.endswith(" [stack]")
    assert mm.handle_fault(HIGH - 3 * 4096, Access.WRITE)  # the stack grows down


def test_elf_parse_and_enoexec():
    info = elf.parse(Path("/bin/busybox").read_bytes())
    assert info.type in (elf.ET_EXEC, elf.ET_DYN) and info.segments and info.interp is None
    for junk in (b"", b"#!/bin/sh\n", b"\x7fELF" + bytes(100), b"\x7fELF\x01\x01\x01" + bytes(60)):
        with pytest.raises(Errno) as e:
            elf.parse(junk)
        assert e.value.code == errno.ENOEXEC


def test_initial_stack_layout(frames):
    mm = new_mm(frames)
    top = HIGH
    mm.map(top - 65536, 65536, RW, fixed=True, growsdown=True)
    sp = stack.build(mm, top, [b"prog", b"arg"], [b"A=1"], b"/bin/prog", [(stack.AT_PAGESZ, 4096)])
    assert sp % 16 == 0
    words = struct.unpack("<12Q", mm.copy_in(sp, 96))
    assert words[0] == 2
    assert mm.read_cstring(words[1]) == b"prog" and mm.read_cstring(words[2]) == b"arg" and words[3] == 0
    assert mm.read_cstring(words[4]) == b"A=1" and words[5] == 0
    auxv = dict(zip(words[6::2], words[7::2], strict=False))
    assert auxv[stack.AT_PAGESZ] == 4096
    assert mm.copy_in(mm.arg_start, mm.arg_end - mm.arg_start) == b"prog\0arg\0"
