"""The memory file: one memfd per sandbox holding every page of app memory.

It is mapped MAP_SHARED once into the Sentry; platforms map ranges of the
same file into app address spaces (KVM registers it as guest-physical
memory, systrap stubs mmap it). Frames are handed out by a simple page
allocator and are zero when handed out.
"""

from __future__ import annotations

import mmap
import os
import threading

from kvmsandbox.platform import PAGE_SIZE

DEFAULT_SIZE = 4 << 30


class OutOfMemory(MemoryError):
    """The memory file has no free frames left."""


class MemoryFile:
    """A memfd, its Sentry mapping, and a frame allocator over it."""

    def __init__(self, size: int = DEFAULT_SIZE, name: str = "kvmsandbox-memory") -> None:
        if size <= 0 or size % PAGE_SIZE:
            raise ValueError(f"memory file size must be a positive multiple of {PAGE_SIZE}: {size}")
        self.size = size
        self.fd = os.memfd_create(name, os.MFD_CLOEXEC)
        os.ftruncate(self.fd, size)
        self.map = mmap.mmap(self.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.view = memoryview(self.map)
        self._lock = threading.Lock()
        self._next = 0
        self._free: list[int] = []

    def allocate(self, npages: int = 1) -> int:
        """Return the file offset of `npages` contiguous zeroed pages."""
        if npages <= 0:
            raise ValueError("npages must be positive")
        with self._lock:
            if npages == 1 and self._free:
                offset = self._free.pop()
            else:
                offset = self._next
                if offset + npages * PAGE_SIZE > self.size:
                    raise OutOfMemory(f"memory file full ({self.size} bytes)")
                self._next += npages * PAGE_SIZE
        self.view[offset : offset + npages * PAGE_SIZE] = bytes(npages * PAGE_SIZE)
        return offset

    def free(self, offset: int, npages: int = 1) -> None:
        """Return pages to the allocator; their contents are dropped on reuse."""
        self._check(offset, npages * PAGE_SIZE)
        with self._lock:
            self._free.extend(offset + i * PAGE_SIZE for i in range(npages))

    def read(self, offset: int, length: int) -> bytes:
        self._check(offset, length)
        return bytes(self.view[offset : offset + length])

    def write(self, offset: int, data: bytes) -> None:
        self._check(offset, len(data))
        self.view[offset : offset + len(data)] = data

    def _check(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ValueError(f"range [{offset:#x}, +{length:#x}) outside the memory file")

    @property
    def allocated_bytes(self) -> int:
        with self._lock:
            return self._next - len(self._free) * PAGE_SIZE

    def close(self) -> None:
        self.view.release()
        self.map.close()
        os.close(self.fd)
