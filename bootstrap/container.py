"""The OCI operations on an existing container, as the CLI commands call them.

Each takes the container's lock for as long as it changes recorded state,
talks to the sandbox process over the control socket, and raises OCIError
with runc's wording where the shim matches on it ("container not running",
"does not exist").
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import TYPE_CHECKING, Any

from bootstrap import cgroup_stats, cgroups, procinfo
from bootstrap.cgroups import Cgroup
from bootstrap.control import ControlClient
from bootstrap.errors import OCIError
from bootstrap.hooks import run_hooks
from bootstrap.resources import Write
from bootstrap.state import ContainerState, NotFound, StateStore, oci_state

if TYPE_CHECKING:
    from bootstrap.backend import ProcessInfo

# How long delete waits for a SIGKILLed sandbox process to be gone.
KILL_WAIT_S = 5.0


def _client(store: StateStore, state: ContainerState) -> ControlClient:
    if store.status(state) == "stopped":
        raise OCIError("container not running")
    return ControlClient(store.control_path(state.id))


def start(store: StateStore, container_id: str) -> None:
    with store.locked(container_id) as state:
        status = store.status(state)
        if status != "created":
            raise OCIError(f"cannot start a container that is {status}")
        with _client(store, state) as client:
            try:
                run_hooks("prestart", state.hooks.get("prestart", []), oci_state(store, state), fatal=True)
            except OCIError:
                client.signal(signal.SIGKILL)  # the spec: stop the container; delete comes next
                raise
            client.start()
        state.status = "running"
        store.save(state)
        run_hooks("poststart", state.hooks.get("poststart", []), oci_state(store, state), fatal=False)


def kill(
    store: StateStore, container_id: str, signo: int, *, all_processes: bool = False, pid: int = 0
) -> None:
    state = store.load(container_id)
    with _client(store, state) as client:
        client.signal(signo, pid=pid, all_processes=all_processes)


def pause(store: StateStore, container_id: str) -> None:
    _freeze_or_thaw(store, container_id, "pause", "running", "paused")


def resume(store: StateStore, container_id: str) -> None:
    _freeze_or_thaw(store, container_id, "resume", "paused", "running")


def _freeze_or_thaw(store: StateStore, container_id: str, verb: str, before: str, after: str) -> None:
    """Ask the sandbox to `verb` (its control operation of that name) and record the new status."""
    with store.locked(container_id) as state:
        status = store.status(state)
        if status != before:
            raise OCIError(f"cannot {verb} a container that is {status}")
        with _client(store, state) as client:
            getattr(client, verb)()
        state.status = after
        store.save(state)


def processes(store: StateStore, container_id: str, mirrors: bool = False) -> list[ProcessInfo]:
    """The container's processes; with `mirrors`, each with its host stand-in (bootstrap/mirrors)."""
    state = store.load(container_id)
    if store.status(state) == "stopped":
        return []
    with _client(store, state) as client:
        return client.processes(mirrors)


def stats(store: StateStore, container_id: str) -> dict[str, Any]:
    """runc's stats data: the container's cgroup's (bootstrap/cgroup_stats.py), with the backend's
    count of the container's processes as pids.current (the cgroup counts the sandbox's host
    processes: the Sentry's, the gofer, stubs).

    Everything the container runs, the Sentry included, is charged to the
    cgroup, as runsc reports its sandbox's usage. Without a cgroup (a
    container created before cgroups were made), the sandbox process's own
    CPU and memory.
    """
    state = store.load(container_id)
    with _client(store, state) as client:
        data = client.stats()
    cgroup = Cgroup.load(store.dir(container_id))
    if cgroup is not None:
        current = data.get("pids", {}).get("current")
        data.update(cgroup_stats.stats(cgroup))
        if current is not None:
            data.setdefault("pids", {})["current"] = current
        return data
    cpu_ns, rss = procinfo.usage(state.pid)
    data.setdefault("cpu", {"usage": {"total": cpu_ns}})
    data.setdefault("memory", {"usage": {"usage": rss}})
    return data


def update(store: StateStore, container_id: str, writes: tuple[Write, ...]) -> None:
    """Change the container's cgroup limits (runc's `update`)."""
    with store.locked(container_id) as state:
        if store.status(state) == "stopped":
            raise OCIError("container not running")
        cgroup = Cgroup.load(store.dir(container_id))
        if cgroup is None:
            raise OCIError(f"container {container_id!r} has no cgroup to update")
        cgroups.apply(cgroup, writes)


def wait(store: StateStore, container_id: str) -> int:
    """The root process's exit code, waiting for it if the container still runs."""
    state = store.load(container_id)
    if store.status(state) != "stopped":
        try:
            with ControlClient(store.control_path(container_id)) as client:
                return client.wait(0)
        except OCIError:
            pass  # it exited meanwhile: fall through to what it recorded
    status = store.exit_status(container_id)
    if status is None:
        # Killed without a chance to record anything (kill -9 of the sandbox process).
        return 128 + signal.SIGKILL
    return status


def delete(store: StateStore, container_id: str, *, force: bool = False) -> None:
    """Remove a stopped (or, with force, any) container; force on a missing one is not an error."""
    try:
        with store.locked(container_id) as state:
            status = store.status(state)
            if status not in ("stopped", "created") and not force:
                raise OCIError(f"cannot delete container {container_id!r} that is {status}: use --force")
            kill_sandbox(state)
            cgroup = Cgroup.load(store.dir(container_id))
            if cgroup is not None:
                cgroups.remove(cgroup)
            run_hooks("poststop", state.hooks.get("poststop", []), oci_state(store, state), fatal=False)
            store.remove(container_id)
    except NotFound:
        if not force:
            raise


def kill_sandbox(state: ContainerState) -> None:
    """SIGKILL the sandbox process's group (it, the gofer, platform helpers) if it is still ours; wait."""
    if not state.pid:
        return
    if procinfo.kill_if_alive(state.pid, state.pid_start, group=True):
        if not procinfo.wait_gone(state.pid, state.pid_start, KILL_WAIT_S):
            raise OCIError(f"sandbox process {state.pid} survived SIGKILL for {KILL_WAIT_S:g}s")
    elif procinfo.start_time(state.pid) is None:
        # The sandbox process died alone (kill -9): its session id cannot have been reused while
        # no process has that pid, so whatever is left in the session (the gofer) is ours.
        for pid in procinfo.session_members(state.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
