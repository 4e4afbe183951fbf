"""A process's memory: VMAs, its own page table of memory-file frames, faults, copy-in/out.

The Sentry's page table (`pages`: virtual page number -> frame offset) is
the truth; the platform address space is a cache of it that may lack any
page (a fault maps it lazily). A private page whose frame is referenced
more than once is copy-on-write: it is mapped read-only and copied on the
first write. copy_in/copy_out translate through `pages` and touch the
memory file directly, checking VMA permissions as the MMU would, so an app
pointer can never reach Sentry memory: a bad one is EFAULT.
"""

from __future__ import annotations

import bisect
import errno
import logging
import threading
from collections.abc import Iterator

from kvmsandbox.platform import PAGE_SIZE, Access, AddressSpace
from sentry.errors import Errno
from sentry.mm.frames import Frames, PageCache, SharedPages
from sentry.mm.vma import PROT_EXEC, PROT_READ, PROT_WRITE, VMA, Backing

log = logging.getLogger(__name__)

PAGE_SHIFT = 12
PAGE_MASK = PAGE_SIZE - 1
FAULT_AROUND = 32  # pages populated or mapped per fault (aligned window), to cut fault exits
CACHED_FAULT_AROUND = 256  # for page-cached files (executables): no copying, so a wider window
STACK_GUARD_GAP = 256 * PAGE_SIZE
DEFAULT_STACK_LIMIT = 8 << 20
MAX_MAP_COUNT = 65530  # Linux's vm.max_map_count default


def page_up(value: int) -> int:
    return (value + PAGE_MASK) & ~PAGE_MASK


def page_down(value: int) -> int:
    return value & ~PAGE_MASK


class MM:
    """One address space as the Sentry sees it; shared by the threads of a process."""

    def __init__(self, frames: Frames, asp: AddressSpace, min_addr: int, max_addr: int) -> None:
        self.frames = frames
        self.view = frames.view
        self.asp = asp
        self.min_addr = min_addr
        self.max_addr = max_addr
        self.mmap_base = page_down(max_addr - (1 << 30))
        self.vmas: list[VMA] = []
        self._starts: list[int] = []
        self.pages: dict[int, int] = {}
        self.dirty: set[int] = set()  # pages of MAP_SHARED file mappings stored to since mapped
        self.lock = threading.RLock()
        self.brk_start = 0
        self.brk = 0
        self.stack_limit = DEFAULT_STACK_LIMIT
        self.as_limit = 1 << 64
        self.users = 1
        self.arg_start = self.arg_end = self.env_start = self.env_end = 0
        self.auxv = b""
        self._spurious = (0, 0, 0)

    # ---- VMA bookkeeping ------------------------------------------------

    def _reindex(self) -> None:
        self._starts = [v.start for v in self.vmas]

    def find_vma(self, addr: int) -> VMA | None:
        """The VMA containing addr, or None."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0:
            vma = self.vmas[i]
            if addr < vma.end:
                return vma
        return None

    def _next_vma(self, addr: int) -> VMA | None:
        i = bisect.bisect_right(self._starts, addr)
        return self.vmas[i] if i < len(self.vmas) else None

    def _insert(self, vma: VMA) -> None:
        if len(self.vmas) >= MAX_MAP_COUNT:
            vma.drop()
            raise Errno(errno.ENOMEM)
        i = bisect.bisect_left(self._starts, vma.start)
        self.vmas.insert(i, vma)
        self._merge()

    def _merge(self) -> None:
        merged: list[VMA] = []
        for vma in self.vmas:
            if merged and merged[-1].can_merge(vma):
                merged[-1].end = vma.end
                vma.drop()
            else:
                merged.append(vma)
        self.vmas = merged
        self._reindex()

    def _split_at(self, addr: int) -> None:
        vma = self.find_vma(addr)
        if vma is not None and vma.start < addr:
            if len(self.vmas) >= MAX_MAP_COUNT:
                raise Errno(errno.ENOMEM)
            upper = vma.split(addr)
            self.vmas.insert(self.vmas.index(vma) + 1, upper)
            self._reindex()

    def _vmas_in(self, start: int, end: int) -> list[VMA]:
        return [v for v in self.vmas if v.start < end and v.end > start]

    def mapped_bytes(self) -> int:
        return sum(v.length for v in self.vmas)

    def range_mapped(self, start: int, end: int) -> bool:
        """Whether [start, end) is covered by VMAs without holes."""
        addr = start
        for vma in self._vmas_in(start, end):
            if vma.start > addr:
                return False
            addr = vma.end
        return addr >= end

    def is_free(self, start: int, end: int) -> bool:
        return self.min_addr <= start < end <= self.max_addr and not self._vmas_in(start, end)

    def find_free(self, length: int, hint: int = 0) -> int:
        """A free range of `length` bytes: at `hint` if free, else top-down below mmap_base."""
        if hint and self.is_free(page_down(hint), page_down(hint) + length):
            return page_down(hint)
        top = self.mmap_base
        for vma in reversed(self.vmas):
            if vma.start >= top:
                continue
            if vma.end <= top - length:
                return top - length
            top = vma.start - (STACK_GUARD_GAP if vma.growsdown else 0)
        if top - length >= self.min_addr:
            return top - length
        # Nothing below the base: try above it (below the stack).
        addr = self.mmap_base
        for vma in self.vmas:
            if vma.end <= addr:
                continue
            if vma.start >= addr + length:
                break
            addr = vma.end
        if addr + length <= self.max_addr and self.is_free(addr, addr + length):
            return addr
        raise Errno(errno.ENOMEM)

    # ---- page table -----------------------------------------------------

    def _pages_in(self, start: int, end: int) -> Iterator[int]:
        first, last = start >> PAGE_SHIFT, end >> PAGE_SHIFT
        if last - first <= len(self.pages):
            return (v for v in range(first, last) if v in self.pages)
        return (v for v in list(self.pages) if first <= v < last)

    def _asp_reduced(self) -> None:
        """The platform's view lost rights: a fault on a mapped page is legitimate again."""
        self._spurious = (0, 0, 0)

    def _present_runs(self, start: int, end: int) -> list[tuple[int, int]]:
        """Maximal address ranges within [start, end) whose pages all have frames."""
        runs: list[tuple[int, int]] = []
        for vpn in sorted(self._pages_in(start, end)):
            addr = vpn << PAGE_SHIFT
            if runs and runs[-1][1] == addr:
                runs[-1] = (runs[-1][0], addr + PAGE_SIZE)
            else:
                runs.append((addr, addr + PAGE_SIZE))
        return runs

    def _write_back(self, start: int, end: int) -> None:
        """Store the pages of MAP_SHARED file mappings in [start, end) back into their files.

        Shared file mappings hold private copies of the file's pages (a partial
        implementation: two processes mapping one file do not see each other's
        stores), so their contents are written back when the pages go (munmap,
        MADV_DONTNEED, exit) and on msync.
        """
        for vma in self._vmas_in(start, end):
            if not vma.writeback or vma.backing is None:
                continue
            lo, hi = max(start, vma.start), min(end, vma.end)
            for vpn in sorted(v for v in self._pages_in(lo, hi) if v in self.dirty):
                frame = self.pages[vpn]
                offset = vma.offset + (vpn << PAGE_SHIFT) - vma.start
                vma.backing.write(offset, bytes(self.view[frame : frame + PAGE_SIZE]))

    def sync(self, start: int, end: int) -> None:
        """msync: write shared file mappings in the range back."""
        with self.lock:
            self._write_back(start, end)

    def _drop_pages(self, start: int, end: int) -> None:
        """Remove pages in [start, end) from the platform and the page table, then free them."""
        self._asp_reduced()
        victims = list(self._pages_in(start, end))
        if not victims:
            return
        self._write_back(start, end)
        self.asp.unmap(start, end - start)
        self.frames.unref_many([self.pages.pop(vpn) for vpn in victims])
        self.dirty.difference_update(victims)

    def _asp_perms(self, vma: VMA, frame: int, vpn: int = -1) -> Access:
        prot = vma.prot
        if prot & PROT_WRITE and not vma.shared and self.frames.count(frame) > 1:
            prot &= ~PROT_WRITE
        elif vma.writeback and vpn not in self.dirty:
            prot &= ~PROT_WRITE  # the first store faults, so we know the page needs writing back
        if prot:
            prot |= PROT_READ
        return Access(prot)

    def _populate(self, vma: VMA, vpn: int) -> None:
        """Give vpn (and its not-present neighbours in an aligned window) frames, and map them."""
        cache = self._cache_of(vma)
        window = CACHED_FAULT_AROUND if cache is not None else FAULT_AROUND
        lo, hi = self._window(vma, vpn, window)
        first = vpn
        while first > lo and first - 1 not in self.pages:
            first -= 1
        last = vpn + 1
        while last < hi and last not in self.pages:
            last += 1
        if vma.shared_pages is not None:
            for v in range(first, last):
                frame = vma.shared_pages.frame(vma.shared_pgoff + v - (vma.start >> PAGE_SHIFT))
                self.frames.ref(frame)
                self.pages[v] = frame
                self.asp.map(v << PAGE_SHIFT, PAGE_SIZE, frame, self._asp_perms(vma, frame))
            return
        count = last - first
        if cache is not None:
            pgoff = (vma.offset + (first << PAGE_SHIFT) - vma.start) >> PAGE_SHIFT
            for i, frame in enumerate(cache.frames_for(pgoff, count)):
                self.pages[first + i] = frame
            self._map_present(vma, vpn, window)
            return
        base = self.frames.alloc(count)
        if vma.backing is not None:
            offset = vma.offset + (first << PAGE_SHIFT) - vma.start
            data = vma.backing.read(offset, count * PAGE_SIZE)
            self.view[base : base + len(data)] = data
        for i in range(count):
            self.pages[first + i] = base + i * PAGE_SIZE
        self.asp.map(first << PAGE_SHIFT, count * PAGE_SIZE, base, self._asp_perms(vma, base, first))

    @staticmethod
    def _cache_of(vma: VMA) -> PageCache | None:
        """The shared page cache a read-only private file mapping is served from (writable ones copy)."""
        if vma.prot & PROT_WRITE or vma.shared:
            return None
        return getattr(vma.backing, "cache", None)

    @staticmethod
    def _window(vma: VMA, vpn: int, size: int) -> tuple[int, int]:
        """The aligned window of `size` pages around vpn, clipped to the VMA."""
        base = vpn & ~(size - 1)
        return max(vma.start >> PAGE_SHIFT, base), min(vma.end >> PAGE_SHIFT, base + size)

    def _map_present(self, vma: VMA, vpn: int, window: int = 0) -> None:
        """Map vpn and the present pages around it (aligned window, same VMA) that the platform lacks.

        After fork the child's platform address space starts empty; mapping neighbours
        together, in runs of contiguous frames, saves a fault exit per page.
        """
        lo, hi = self._window(vma, vpn, window or FAULT_AROUND)
        pages = self.pages
        # Rights differ per page only for private writable mappings (COW pages stay read-only).
        fixed = None if vma.prot & PROT_WRITE and not vma.shared else self._asp_perms(vma, 0)
        run_start = run_frame = -1
        run_perms = Access.NONE
        run_len = 0
        for v in range(lo, hi + 1):
            frame = pages.get(v) if v < hi else None
            if frame is None:
                perms = Access.NONE
            else:
                perms = fixed if fixed is not None else self._asp_perms(vma, frame, v)
            if run_len and frame == run_frame + run_len * PAGE_SIZE and perms == run_perms:
                run_len += 1
                continue
            if run_len:
                self.asp.map(run_start << PAGE_SHIFT, run_len * PAGE_SIZE, run_frame, run_perms)
            if frame is None:
                run_len = 0
            else:
                run_start, run_frame, run_perms, run_len = v, frame, perms, 1

    def _break_cow(self, vma: VMA, vpn: int, frame: int) -> int:
        """A store to vpn is about to happen: give it a private frame and map it writable."""
        if vma.writeback:
            self.dirty.add(vpn)
        if self.frames.count(frame) > 1:
            new = self.frames.copy(frame)
            self.asp.map(vpn << PAGE_SHIFT, PAGE_SIZE, new, self._asp_perms(vma, new, vpn))
            self.pages[vpn] = new
            self.frames.unref(frame)
            return new
        self.asp.map(vpn << PAGE_SHIFT, PAGE_SIZE, frame, self._asp_perms(vma, frame, vpn))
        return frame

    def _grow_stack(self, addr: int) -> VMA | None:
        vma = self._next_vma(addr)
        if vma is None or not vma.growsdown or vma.start <= addr:
            return None
        new_start = page_down(addr)
        if vma.end - new_start > self.stack_limit:
            return None
        i = self.vmas.index(vma)
        if i > 0 and self.vmas[i - 1].end > new_start - PAGE_SIZE:
            return None
        vma.start = new_start
        self._reindex()
        return vma

    def handle_fault(self, addr: int, access: Access) -> bool:
        """Resolve an app page fault; False means the app gets SIGSEGV."""
        with self.lock:
            if not self.min_addr <= addr < self.max_addr:
                return False
            vma = self.find_vma(addr) or self._grow_stack(addr)
            if vma is None or not vma.prot:
                return False
            if access & Access.WRITE and not vma.prot & PROT_WRITE:
                return False
            if access & Access.EXEC and not vma.prot & PROT_EXEC:
                return False
            vpn = addr >> PAGE_SHIFT
            frame = self.pages.get(vpn)
            try:
                if frame is None:
                    self._populate(vma, vpn)
                elif access & Access.WRITE and not vma.shared and self.frames.count(frame) > 1:
                    self._break_cow(vma, vpn, frame)
                else:
                    # Present in our table but not in the platform's (fork, mprotect): map it.
                    # Guard against a platform that keeps faulting on a page we mapped: the same
                    # fault again with no permission-reducing change in between means it is stuck.
                    last_vpn, last_access, count = self._spurious
                    count = count + 1 if (last_vpn, last_access) == (vpn, int(access)) else 1
                    self._spurious = (vpn, int(access), count)
                    if count > 3:
                        log.error("page %#x faults repeatedly (%s) although mapped", addr, access)
                        return False
                    if access & Access.WRITE and vma.writeback:
                        self.dirty.add(vpn)
                    window = CACHED_FAULT_AROUND if self._cache_of(vma) is not None else FAULT_AROUND
                    self._map_present(vma, vpn, window)
            except MemoryError:
                log.error("out of memory-file frames at %#x", addr)
                return False
            return True

    # ---- copy-in/out ----------------------------------------------------

    def _frame(self, addr: int, write: bool, force: bool = False) -> int:
        vma = self.find_vma(addr) or self._grow_stack(addr)
        if vma is None:
            raise Errno(errno.EFAULT)
        if not force and (not vma.prot or (write and not vma.prot & PROT_WRITE)):
            raise Errno(errno.EFAULT)
        vpn = addr >> PAGE_SHIFT
        frame = self.pages.get(vpn)
        try:
            if frame is None:
                self._populate(vma, vpn)
                frame = self.pages[vpn]
            if (
                write
                and not vma.shared
                and (self.frames.count(frame) > 1 or vma.writeback and vpn not in self.dirty)
            ):
                frame = self._break_cow(vma, vpn, frame)
        except MemoryError:
            raise Errno(errno.ENOMEM) from None
        return frame

    def _check_range(self, addr: int, length: int) -> None:
        if addr < 0 or length < 0 or addr + length > self.max_addr or addr < self.min_addr and length:
            raise Errno(errno.EFAULT)

    def copy_in(self, addr: int, length: int) -> bytes:
        """Read app memory; EFAULT if any byte is not readable."""
        if length <= 0:
            if length < 0:
                raise Errno(errno.EFAULT)
            return b""
        self._check_range(addr, length)
        with self.lock:
            off = addr & PAGE_MASK
            if off + length <= PAGE_SIZE:
                frame = self._frame(addr, False) + off
                return bytes(self.view[frame : frame + length])
            out = bytearray()
            end = addr + length
            while addr < end:
                chunk = min(end - addr, PAGE_SIZE - (addr & PAGE_MASK))
                frame = self._frame(addr, False) + (addr & PAGE_MASK)
                out += self.view[frame : frame + chunk]
                addr += chunk
            return bytes(out)

    def copy_out(self, addr: int, data: bytes | bytearray | memoryview, force: bool = False) -> None:
        """Write app memory; EFAULT if any byte is not writable (`force`: ignore VMA permissions)."""
        length = len(data)
        if not length:
            return
        self._check_range(addr, length)
        with self.lock:
            pos = 0
            while pos < length:
                chunk = min(length - pos, PAGE_SIZE - (addr & PAGE_MASK))
                frame = self._frame(addr, True, force) + (addr & PAGE_MASK)
                self.view[frame : frame + chunk] = data[pos : pos + chunk]
                addr += chunk
                pos += chunk

    def read_cstring(self, addr: int, limit: int = 4096) -> bytes:
        """A NUL-terminated string (without the NUL); ENAMETOOLONG if longer than `limit`."""
        out = bytearray()
        with self.lock:
            while len(out) < limit:
                self._check_range(addr, 1)
                chunk = min(PAGE_SIZE - (addr & PAGE_MASK), limit - len(out))
                frame = self._frame(addr, False) + (addr & PAGE_MASK)
                piece = bytes(self.view[frame : frame + chunk])
                nul = piece.find(b"\0")
                if nul >= 0:
                    out += piece[:nul]
                    return bytes(out)
                out += piece
                addr += chunk
        raise Errno(errno.ENAMETOOLONG)

    def read_u64(self, addr: int) -> int:
        return int.from_bytes(self.copy_in(addr, 8), "little")

    def write_u64(self, addr: int, value: int) -> None:
        self.copy_out(addr, (value & ((1 << 64) - 1)).to_bytes(8, "little"))

    def read_u32(self, addr: int) -> int:
        return int.from_bytes(self.copy_in(addr, 4), "little")

    def write_u32(self, addr: int, value: int) -> None:
        self.copy_out(addr, (value & 0xFFFFFFFF).to_bytes(4, "little"))

    def read_iovec(self, addr: int, count: int) -> list[tuple[int, int]]:
        """An iovec array: list of (base, len); EINVAL for a bad count or a length over ssize_t."""
        if count < 0 or count > 1024:
            raise Errno(errno.EINVAL)
        raw = self.copy_in(addr, 16 * count)
        out = []
        total = 0
        for i in range(count):
            base = int.from_bytes(raw[16 * i : 16 * i + 8], "little")
            length = int.from_bytes(raw[16 * i + 8 : 16 * i + 16], "little")
            total += length
            if length >= 1 << 63 or total >= 1 << 63:
                raise Errno(errno.EINVAL)
            out.append((base, length))
        return out

    def frame_of(self, addr: int) -> int:
        """Memory-file offset backing addr (faulting it in): shared futex keys."""
        with self.lock:
            return self._frame(addr, False) + (addr & PAGE_MASK)

    # ---- mapping operations ---------------------------------------------

    def map(
        self,
        addr: int,
        length: int,
        prot: int,
        *,
        fixed: bool = False,
        noreplace: bool = False,
        shared: bool = False,
        backing: Backing | None = None,
        offset: int = 0,
        shared_pages: SharedPages | None = None,
        name: str = "",
        growsdown: bool = False,
        max_prot: int = PROT_READ | PROT_WRITE | PROT_EXEC,
        writeback: bool = False,
    ) -> int:
        """Create a mapping (mmap's core); returns its address."""
        length = page_up(length)
        with self.lock:
            if fixed or noreplace:
                if addr & PAGE_MASK or addr < self.min_addr or addr + length > self.max_addr:
                    raise Errno(errno.EPERM if addr < self.min_addr else errno.EINVAL)
                if noreplace and self._vmas_in(addr, addr + length):
                    raise Errno(errno.EEXIST)
            else:
                addr = self.find_free(length, addr)
            if self.mapped_bytes() + length > self.as_limit:
                raise Errno(errno.ENOMEM)
            if fixed:
                self._unmap_locked(addr, addr + length)
            if shared and shared_pages is None and backing is None:
                shared_pages = SharedPages(self.frames)
            if shared_pages is not None:
                shared_pages.attach()
            if backing is not None:
                backing.attach()
            vma = VMA(
                addr,
                addr + length,
                prot,
                shared=shared,
                backing=backing,
                offset=offset,
                shared_pages=shared_pages,
                name=name,
                growsdown=growsdown,
                max_prot=max_prot,
                writeback=writeback,
            )
            self._insert(vma)
            return addr

    def _unmap_locked(self, start: int, end: int) -> None:
        if not self._vmas_in(start, end):
            return
        self._split_at(start)
        self._split_at(end)
        self._drop_pages(start, end)
        keep = []
        for vma in self.vmas:
            if vma.start >= start and vma.end <= end:
                vma.drop()
            else:
                keep.append(vma)
        self.vmas = keep
        self._reindex()

    def unmap(self, start: int, length: int) -> None:
        with self.lock:
            self._unmap_locked(start, start + page_up(length))

    def protect(self, start: int, length: int, prot: int) -> None:
        """mprotect: ENOMEM if any page in the range is unmapped, EACCES beyond the mapping's max."""
        end = start + page_up(length)
        with self.lock:
            if not self.range_mapped(start, end):
                raise Errno(errno.ENOMEM)
            for vma in self._vmas_in(start, end):
                if prot & ~vma.max_prot:
                    raise Errno(errno.EACCES)
            self._split_at(start)
            self._split_at(end)
            for vma in self._vmas_in(start, end):
                vma.prot = prot
            self._asp_reduced()
            for run_start, run_end in self._present_runs(start, end):
                if prot & PROT_WRITE or not prot:
                    # Lazily re-mapped with the right per-page rights (COW pages stay read-only).
                    self.asp.unmap(run_start, run_end - run_start)
                else:
                    self.asp.protect(run_start, run_end - run_start, Access(prot | PROT_READ))
            self._merge()

    def set_brk(self, new: int) -> int:
        with self.lock:
            if new < self.brk_start:
                return self.brk
            old_end, new_end = page_up(self.brk), page_up(new)
            if new_end > old_end:
                if (
                    not self.is_free(old_end, new_end)
                    or self.mapped_bytes() + new_end - old_end > self.as_limit
                ):
                    return self.brk
                self._insert(VMA(old_end, new_end, PROT_READ | PROT_WRITE, name="[heap]"))
            elif new_end < old_end:
                self._unmap_locked(new_end, old_end)
            self.brk = new
            return self.brk

    def remap(self, old: int, old_len: int, new_len: int, may_move: bool, fixed_addr: int | None) -> int:
        """mremap of a range inside one VMA."""
        old_len, new_len = page_up(old_len), page_up(new_len)
        with self.lock:
            vma = self.find_vma(old)
            if vma is None or old + old_len > vma.end:
                raise Errno(errno.EFAULT)
            if old_len == 0:
                raise Errno(errno.EINVAL)
            if fixed_addr is None:
                if new_len <= old_len:
                    self._unmap_locked(old + new_len, old + old_len)
                    return old
                if old + old_len == vma.end and self.is_free(vma.end, old + new_len):
                    if self.mapped_bytes() + new_len - old_len > self.as_limit:
                        raise Errno(errno.ENOMEM)
                    vma.end = old + new_len
                    self._merge()
                    return old
                if not may_move:
                    raise Errno(errno.ENOMEM)
                new = self.find_free(new_len)
            else:
                new = fixed_addr
                if new & PAGE_MASK or new < self.min_addr or new + new_len > self.max_addr:
                    raise Errno(errno.EINVAL)
                if new < old + old_len and old < new + new_len:
                    raise Errno(errno.EINVAL)
                self._unmap_locked(new, new + new_len)
            return self._move(old, old_len, new, new_len)

    def _move(self, old: int, old_len: int, new: int, new_len: int) -> int:
        self._split_at(old)
        self._split_at(old + old_len)
        vma = self.find_vma(old)
        assert vma is not None
        moved = vma.copy()
        moved.start, moved.end = new, new + new_len
        delta = (new - old) >> PAGE_SHIFT
        present = list(self._pages_in(old, old + min(old_len, new_len)))
        if present:
            self.asp.unmap(old, old_len)
        for vpn in present:
            self.pages[vpn + delta] = self.pages.pop(vpn)
            if vpn in self.dirty:
                self.dirty.discard(vpn)
                self.dirty.add(vpn + delta)
        self._unmap_locked(old, old + old_len)
        self._insert(moved)
        return new

    def discard(self, start: int, length: int) -> None:
        """MADV_DONTNEED: private pages read back as zero (or file contents); shared ones keep data."""
        end = start + page_up(length)
        with self.lock:
            if not self.range_mapped(start, end):
                raise Errno(errno.ENOMEM)
            if any(v.locked for v in self._vmas_in(start, end)):
                raise Errno(errno.EINVAL)
            self._drop_pages(start, end)

    def resident(self, start: int, length: int) -> bytes:
        """mincore: one byte per page, 1 if the page has a frame."""
        end = start + page_up(length)
        with self.lock:
            if not self.range_mapped(start, end):
                raise Errno(errno.ENOMEM)
            return bytes(1 if v in self.pages else 0 for v in range(start >> PAGE_SHIFT, end >> PAGE_SHIFT))

    # ---- whole address space --------------------------------------------

    def fork(self, asp: AddressSpace) -> MM:
        """A copy-on-write copy of this address space in `asp`."""
        with self.lock:
            child = MM(self.frames, asp, self.min_addr, self.max_addr)
            child.mmap_base = self.mmap_base
            child.vmas = [v.copy() for v in self.vmas]
            child._reindex()
            child.pages = dict(self.pages)
            self.frames.ref_many(list(self.pages.values()))
            self._asp_reduced()
            for vma in self.vmas:
                if vma.prot & PROT_WRITE and not vma.shared:
                    for start, end in self._present_runs(vma.start, vma.end):
                        self.asp.protect(start, end - start, Access((vma.prot & ~PROT_WRITE) | PROT_READ))
            child.brk_start, child.brk = self.brk_start, self.brk
            child.stack_limit, child.as_limit = self.stack_limit, self.as_limit
            child.arg_start, child.arg_end = self.arg_start, self.arg_end
            child.env_start, child.env_end = self.env_start, self.env_end
            child.auxv = self.auxv
            return child

    def release(self) -> None:
        """Drop every mapping and the platform address space (no thread may run in it)."""
        with self.lock:
            self._write_back(self.min_addr, self.max_addr)
            self.asp.release()
            pages, self.pages = self.pages, {}
            self.frames.unref_many(list(pages.values()))
            for vma in self.vmas:
                vma.drop()
            self.vmas = []
            self._reindex()

    def maps_text(self) -> str:
        """/proc/<pid>/maps."""
        lines = []
        with self.lock:
            for vma in self.vmas:
                dev, ino = 0, 0
                offset = 0
                if vma.backing is not None:
                    dev, ino, offset = vma.backing.dev, vma.backing.ino, vma.offset
                head = (
                    f"{vma.start:08x}-{vma.end:08x} {vma.perms_text()} {offset:08x} "
                    f"{dev >> 8 & 0xFFF:02x}:{dev & 0xFF:02x} {ino} "
                )
                name = vma.name or (vma.backing.name if vma.backing is not None else "")
                lines.append(head.ljust(73) + name if name else head)
        return "".join(line + "\n" for line in lines)
