"""A process's filesystem context: root, working directory and umask (Linux's fs_struct)."""

from __future__ import annotations

import threading

from sentry.vfs.mount import Location


class FSContext:
    def __init__(self, root: Location, cwd: Location, umask: int = 0o022) -> None:
        self.root = root
        self.cwd = cwd
        self.umask = umask
        self.lock = threading.Lock()

    def fork(self) -> FSContext:
        """fork() copies it; CLONE_FS threads share the same object instead."""
        return FSContext(self.root, self.cwd, self.umask)
