"""The created -> running -> exited phases of a container, in front of the backend.

The backend only knows a booted sandbox; the OCI rules about when a request
is allowed live here: `start` once, a signal to a container that was never
started ends it as if its root process had died of that signal (runc kills
the waiting init; here nothing has run yet), and `wait` on the root process
works in every phase. A root process that cannot be executed ends the
container with the shell's code (127 not found, 126 not executable).
"""

from __future__ import annotations

import threading
from typing import Any

from bootstrap.backend import ProcessInfo, SandboxBackend
from bootstrap.errors import OCIError, StartError
from bootstrap.spec import Process


class ContainerLifecycle:
    """A SandboxBackend that enforces the OCI phase rules around another one."""

    def __init__(self, backend: SandboxBackend) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._started = False
        self._killed_with = 0
        self._failed_with = 0  # the root process could not be started: the container's exit code
        self._decided = threading.Event()  # started or killed before start

    def start(self) -> None:
        with self._lock:
            if self._started:
                raise OCIError("container already started")
            if self._killed_with or self._failed_with:
                raise OCIError("container already stopped")
            try:
                self.backend.start()
            except StartError as e:
                self._failed_with = e.exit_code
                self._decided.set()
                raise
            self._started = True
        self._decided.set()

    def exec(self, process: Process, stdio: list[int]) -> int:
        return self.backend.exec(process, stdio)

    def signal(self, signo: int, pid: int = 0, all_processes: bool = False) -> None:
        with self._lock:
            if not self._started and pid == 0:
                if signo:
                    self._killed_with = signo
                    self._decided.set()
                return
        self.backend.signal(signo, pid=pid, all_processes=all_processes)

    def processes(self) -> list[ProcessInfo]:
        return self.backend.processes() if self._started else []

    def wait(self, pid: int = 0) -> int:
        if pid:
            return self.backend.wait(pid)
        self._decided.wait()
        if self._killed_with:
            return 128 + self._killed_with
        if self._failed_with:
            return self._failed_with
        return self.backend.wait(0)

    def stats(self) -> dict[str, Any]:
        return self.backend.stats()

    def pause(self) -> None:
        self.backend.pause()

    def resume(self) -> None:
        self.backend.resume()

    def shutdown(self) -> None:
        self.backend.shutdown()
