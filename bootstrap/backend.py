"""What the sandbox process needs from the Sentry: the `SandboxBackend` interface.

The OCI side (state, control socket, CLI) is independent of how processes
run. bootstrap/sentry_backend.py implements it over sentry.sandbox; tests of the
OCI layer plug in a fake through `KVMSANDBOX_BACKEND=module:factory`, which is
read only by the sandbox process and can only name importable code, so it
grants nothing the runtime's caller (root) does not already have.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # annotations only: `start`, `delete`, ... (via bootstrap.control) never parse a spec
    from bootstrap.spec import Process, Spec

BACKEND_ENV = "KVMSANDBOX_BACKEND"


@dataclasses.dataclass(frozen=True)
class ProcessInfo:
    """One process of the container, for `ps`."""

    pid: int  # as the sandbox sees it
    ppid: int
    uid: int
    cmd: str
    argv: tuple[str, ...] = ()  # its command line, split (os.fsdecode'd)
    mirror_pid: int = 0  # its host stand-in (bootstrap/mirrors), as the sandbox process numbers it; 0: none
    tty: str = "?"
    start_time: float = 0.0  # seconds since the epoch
    cpu_seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class BootRequest:
    """Everything a backend is booted from, after the bootstrap has set the process up."""

    container_id: str
    spec: Spec
    stdio: tuple[int, int, int]  # host fds for the root process's 0, 1, 2 (a pts slave when terminal)
    platform: str | None
    network: str
    overlay2: str
    file_access: str
    trace: Any = None  # sentry.seccheck.session.PodInitSession from --pod-init-config, or None


class SandboxBackend(Protocol):
    """A booted sandbox whose root process has not started yet."""

    def start(self) -> None:
        """Start the root process (spec.process)."""

    def exec(self, process: Process, stdio: list[int]) -> int:
        """Start another process in the container; owns `stdio` (three fds); returns its pid."""

    def signal(self, signo: int, pid: int = 0, all_processes: bool = False) -> None:
        """Signal the root process, or `pid`, or every process of the container."""

    def processes(self) -> list[ProcessInfo]:
        """The container's live processes."""

    def wait(self, pid: int = 0) -> int:
        """Block until the root process (or `pid`) exits: its exit code, 128+signo if killed."""

    def stats(self) -> dict[str, Any]:
        """runc's `events --stats` data object (cpu, memory, pids)."""

    def pause(self) -> None:
        """Stop every task from running until resume()."""

    def resume(self) -> None:
        """Undo pause()."""

    def shutdown(self) -> None:
        """Kill whatever still runs and free the platform; the sandbox process exits next."""


def boot(request: BootRequest) -> SandboxBackend:
    """Boot the Sentry for a container (or the test backend named in the environment)."""
    override = os.environ.get(BACKEND_ENV)
    if override:
        module_name, _, attr = override.partition(":")
        return getattr(importlib.import_module(module_name), attr)(request)
    from bootstrap.sentry_backend import SentryBackend

    return SentryBackend(request)
