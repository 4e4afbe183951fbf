"""The systrap Platform and AddressSpace: one stub process per address space.

Address-space changes are host mmap/munmap/mprotect calls that the stub's
control loop makes on the Sentry's request (stubproc.Stub.request); each
returns only once the kernel has applied it to every thread of the stub,
which is what unmap's "no thread can reach the pages on return" needs.
"""

from __future__ import annotations

import concurrent.futures
import errno
import functools
import os
import threading
from collections.abc import Callable

from elftools.elf.elffile import ELFFile

from kvmsandbox.memory.memfile import DEFAULT_SIZE, MemoryFile
from kvmsandbox.platform import PAGE_SIZE, Access, AddressSpace, Context, Platform, PlatformError
from kvmsandbox.systrap import layout, seccomp
from kvmsandbox.systrap._systrap import lib
from kvmsandbox.systrap.context import FPU_LOCK, SystrapContext
from kvmsandbox.systrap.ranges import Ranges
from kvmsandbox.systrap.stubproc import STUB_PATH, Stub, StubThread

NR_MMAP, NR_MPROTECT, NR_MUNMAP = 9, 10, 11
MAP_SHARED_FIXED = 0x11
HWCAP2_FSGSBASE = 1 << 1


@functools.cache
def stub_text_end() -> int:
    """End of the stub's code, from its ELF symbols: the seccomp filters' IP bound."""
    with open(STUB_PATH, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        (sym,) = symtab.get_symbol_by_name("__stub_text_end")
        return sym["st_value"]


def fsgsbase_usable() -> bool:
    return bool(lib.systrap_hwcap2() & HWCAP2_FSGSBASE)


class SystrapAddressSpace(AddressSpace):
    """An app address space: a stub process and its pool of parked worker threads."""

    def __init__(self, platform: SystrapPlatform) -> None:
        self._platform = platform
        self._mapped = Ranges()
        self._mm_lock = threading.Lock()  # a host change and its record in _mapped happen together
        self._idle: dict[int, StubThread] = {}
        self.stub = Stub(platform.memory_file.fd, platform.spawn, platform.filters, platform.fsgsbase)
        # The first worker now, while no app code has run in the stub: a failure here is the host
        # refusing a thread (a pids cgroup limit), which fork reports as EAGAIN. Made at the first
        # switch instead, the same refusal would kill the new process.
        try:
            first = self.stub.new_thread()
        except PlatformError as e:
            self.stub.close()
            raise BlockingIOError(
                errno.EAGAIN, f"systrap: no worker thread for a new address space ({e})"
            ) from None
        self._idle[first.index] = first

    # -- memory -----------------------------------------------------------

    def map(self, addr: int, length: int, file_offset: int, perms: Access) -> None:
        self._check_range(addr, length)
        if (
            file_offset % PAGE_SIZE
            or file_offset < 0
            or file_offset + length > self._platform.memory_file.size
        ):
            raise ValueError(f"file range [{file_offset:#x}, +{length:#x}) outside the memory file")
        prot = int(perms & Access.RWX)
        with self._mm_lock:
            self._stub.mm(NR_MMAP, addr, length, prot, MAP_SHARED_FIXED, layout.STUB_MEMFD, file_offset)
            self._mapped.add(addr, addr + length)

    def unmap(self, addr: int, length: int) -> None:
        self._check_range(addr, length)
        with self._mm_lock:
            self._stub.mm(NR_MUNMAP, addr, length)
            self._mapped.remove(addr, addr + length)

    def protect(self, addr: int, length: int, perms: Access) -> None:
        self._check_range(addr, length)
        with self._mm_lock:
            for start, end in self._mapped.intersect(addr, addr + length):
                self._stub.mm(NR_MPROTECT, start, end - start, int(perms & Access.RWX))

    def _check_range(self, addr: int, length: int) -> None:
        p = self._platform
        if addr % PAGE_SIZE or length % PAGE_SIZE or length <= 0:
            raise ValueError(f"unaligned or empty range [{addr:#x}, +{length:#x})")
        if addr < p.min_user_address or addr + length > p.max_user_address:
            raise ValueError(f"range [{addr:#x}, +{length:#x}) outside the app address range")

    @property
    def _stub(self) -> Stub:
        if self.stub is None:
            raise PlatformError("systrap address space already released")
        return self.stub

    # -- threads (used by SystrapContext) ---------------------------------

    def acquire_thread(self, preferred: StubThread | None = None) -> StubThread:
        """An idle worker thread: `preferred` (the one holding the caller's FPU state) if idle.

        `_idle` maps thread index -> thread; dict.pop and popitem are atomic
        under the GIL, so two contexts never get the same thread.
        """
        stub = self._stub
        if stub.dead:
            stub.check_alive()
        if preferred is not None and preferred.stub is stub:
            thread = self._idle.pop(preferred.index, None)
            if thread is not None:
                return thread
        try:
            return self._idle.popitem()[1]
        except KeyError:
            return stub.new_thread()

    def release_thread(self, thread: StubThread) -> None:
        if thread.stub is self.stub:
            self._idle[thread.index] = thread

    def release(self) -> None:
        self._platform.forget(self)
        if self.stub is not None:
            with FPU_LOCK:
                for thread in self.stub.threads:
                    if thread.owner is not None:
                        thread.owner.evict_fpu()
            self.stub.close()
            self.stub = None
            self._idle.clear()


class SystrapPlatform(Platform):
    """App code in seccomp-trapped stub processes, syscalls served through shared memory."""

    name = "systrap"

    def __init__(self, memory_size: int = DEFAULT_SIZE, spin_ns: int = 0) -> None:
        self.fsgsbase = fsgsbase_usable()
        self.flavour = flavour()
        self.min_user_address = layout.MIN_USER_ADDRESS
        self.max_user_address = layout.STUB_BASE
        self.spin_ns = spin_ns
        end = stub_text_end()
        self.filters = (
            seccomp.build_filter(seccomp.worker_rules(self.fsgsbase), end),
            seccomp.build_filter(seccomp.process_rules(), end),
        )
        self._spawner = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="systrap-spawner")
        # Strong references: a stub lives until its address space is released or the platform closes.
        self._address_spaces: set[SystrapAddressSpace] = set()
        self.memory_file = MemoryFile(memory_size, name="systrap-memory")

    def spawn(self, fn: Callable[..., int], *args: object) -> int:
        """Run `fn(*args)` on the spawner thread: the stubs' parent, alive as long as the platform."""
        return self._spawner.submit(fn, *args).result()

    def new_address_space(self) -> SystrapAddressSpace:
        asp = SystrapAddressSpace(self)
        self._address_spaces.add(asp)
        return asp

    def forget(self, asp: SystrapAddressSpace) -> None:
        self._address_spaces.discard(asp)

    def new_context(self) -> Context:
        return SystrapContext(spin_ns=self.spin_ns)

    def close(self) -> None:
        for asp in list(self._address_spaces):
            asp.release()
        self._spawner.shutdown(wait=True)
        if self.memory_file is not None:
            self.memory_file.close()
            self.memory_file = None


def flavour() -> str:
    return "sud+seccomp-trap" + ("+fsgsbase" if fsgsbase_usable() else "")


def seccomp_trap_available() -> str:
    """'' when the host kernel offers seccomp filters with RET_TRAP, else why not."""
    try:
        with open("/proc/sys/kernel/seccomp/actions_avail") as f:
            actions = f.read().split()
    except FileNotFoundError:
        return "the kernel has no seccomp filter support (/proc/sys/kernel/seccomp missing)"
    if "trap" not in actions:
        return f"seccomp RET_TRAP not offered (actions: {' '.join(actions)})"
    return ""


def usable_reason() -> str:
    """'' if systrap can run here, else the first reason it cannot."""
    if not os.access(STUB_PATH, os.X_OK):
        return f"stub not built ({STUB_PATH}); run pip install -e ."
    err = lib.systrap_sud_errno()
    if err:
        return f"no syscall user dispatch (Linux >= 5.11 needed): {os.strerror(err)}"
    return seccomp_trap_available() or selftest()


@functools.cache
def selftest() -> str:
    """'' if a stub starts and a worker parks here, else why not (once per process, ~1 ms).

    The static checks cannot see everything a container runtime may forbid
    (seccomp() itself, close_range, PR_SET_PDEATHSIG...); a stub that fails
    its set-up exits with a status saying which step failed.
    """
    try:
        platform = SystrapPlatform(memory_size=PAGE_SIZE)
        try:
            asp = platform.new_address_space()
            asp.release_thread(asp.acquire_thread())
        finally:
            platform.close()
    except (PlatformError, OSError) as e:
        return f"a test stub failed: {e}"
    return ""
