"""Reference-counted frames of the memory file.

A frame is shared by the page tables of forked processes (copy-on-write)
and by MAP_SHARED mappings; it goes back to the memory file when the last
reference drops, which callers do only after the platform unmap returned.
"""

from __future__ import annotations

import threading

from kvmsandbox.memory.memfile import MemoryFile
from kvmsandbox.platform import PAGE_SIZE


class Frames:
    def __init__(self, memory_file: MemoryFile) -> None:
        self.file = memory_file
        self.view = memory_file.view
        self._refs: dict[int, int] = {}
        self._lock = threading.Lock()

    def alloc(self, npages: int = 1) -> int:
        """`npages` contiguous zeroed frames, each with one reference; returns the first offset."""
        base = self.file.allocate(npages)
        with self._lock:
            for i in range(npages):
                self._refs[base + i * PAGE_SIZE] = 1
        return base

    def ref(self, offset: int) -> None:
        with self._lock:
            self._refs[offset] += 1

    def unref(self, offset: int) -> None:
        with self._lock:
            count = self._refs[offset] - 1
            if count:
                self._refs[offset] = count
                return
            del self._refs[offset]
        self.file.free(offset)

    def ref_many(self, offsets: list[int]) -> None:
        with self._lock:
            refs = self._refs
            for offset in offsets:
                refs[offset] += 1

    def unref_many(self, offsets: list[int]) -> None:
        """Drop one reference on each; frames reaching zero go back to the memory file."""
        dead = []
        with self._lock:
            refs = self._refs
            for offset in offsets:
                count = refs[offset] - 1
                if count:
                    refs[offset] = count
                else:
                    del refs[offset]
                    dead.append(offset)
        for offset in dead:
            self.file.free(offset)

    def count(self, offset: int) -> int:
        return self._refs.get(offset, 0)

    def copy(self, offset: int) -> int:
        """A new private frame holding a copy of `offset`'s contents."""
        new = self.alloc()
        self.view[new : new + PAGE_SIZE] = self.view[offset : offset + PAGE_SIZE]
        return new


class SharedPages:
    """The frames of one MAP_SHARED object (shared anonymous memory, the vvar page).

    Indexed by page offset within the object; every mapping of it, in any
    process, uses the same frames.
    """

    def __init__(self, frames: Frames) -> None:
        self.frames = frames
        self.pages: dict[int, int] = {}
        self._lock = threading.Lock()
        self._users = 0

    def attach(self) -> None:
        """A VMA now refers to this object."""
        with self._lock:
            self._users += 1

    def detach(self) -> None:
        """A VMA referring to this object went away; the last one frees the frames."""
        with self._lock:
            self._users -= 1
            if self._users:
                return
        self.release()

    def frame(self, pgoff: int) -> int:
        with self._lock:
            frame = self.pages.get(pgoff)
            if frame is None:
                frame = self.pages[pgoff] = self.frames.alloc()
            return frame

    def release(self) -> None:
        with self._lock:
            pages, self.pages = self.pages, {}
        for frame in pages.values():
            self.frames.unref(frame)


class PageCache:
    """Read-only frames holding a file's contents, shared by every private mapping of it.

    The cache keeps one reference on each frame, so a mapping always sees a
    count above one and copies the page before any write (COW): cached
    frames never change. Executables and the vDSO use it, so a hundred
    processes running busybox share one copy of its text.
    """

    def __init__(self, frames: Frames, data: bytes) -> None:
        self.frames = frames
        self.data = data
        self.pages: dict[int, int] = {}
        self._lock = threading.Lock()

    def frames_for(self, first: int, count: int) -> list[int]:
        """Frames for file pages [first, first+count), filling missing ones (contiguously) from data."""
        with self._lock:
            missing = [p for p in range(first, first + count) if p not in self.pages]
            if missing:
                base = self.frames.alloc(len(missing))
                view = self.frames.view
                for i, pgoff in enumerate(missing):
                    frame = base + i * 4096
                    chunk = self.data[pgoff * 4096 : (pgoff + 1) * 4096]
                    view[frame : frame + len(chunk)] = chunk
                    self.pages[pgoff] = frame
            out = [self.pages[p] for p in range(first, first + count)]
            for frame in out:
                self.frames.ref(frame)
            return out

    def release(self) -> None:
        """Drop the cache's own references (mappings keep theirs)."""
        with self._lock:
            pages, self.pages = self.pages, {}
        for frame in pages.values():
            self.frames.unref(frame)
