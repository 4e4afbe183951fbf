"""Container state under `--root`: one directory per container, guarded by flock.

Every CLI invocation is a fresh process, so all that survives between
`create`, `start`, `kill` and `delete` lives here:

    <root>/<id>/lock          flock(LOCK_EX) serialises commands on one container
    <root>/<id>/state.json    ContainerState (written atomically by rename)
    <root>/<id>/control.sock  the sandbox process's control socket (bootstrap.control)
    <root>/<id>/exit_status   the root process's exit code, written by the sandbox process

The recorded status is what the last command set (created, running, paused);
the status reported is "stopped" as soon as the sandbox process is gone, which
is also what a `kill -9` of it leaves for `delete --force` to clean.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import json
import os
import pwd
import re
import shutil
from collections.abc import Iterator
from typing import Any

from bootstrap import procinfo
from bootstrap.errors import OCIError

# The runtime-spec version whose state JSON we produce (runc 1.1 says the same).
OCI_VERSION = "1.0.2"

# runc's rule: ids become path components, so no slashes, no "..".
_ID_RE = re.compile(r"^[\w+.-]+$")

STATUSES = ("creating", "created", "running", "paused", "stopped")


class NotFound(OCIError):
    """No container with that id under this root."""


@dataclasses.dataclass
class ContainerState:
    id: str
    bundle: str
    rootfs: str
    created: str  # RFC 3339, UTC
    owner: str
    status: str = "creating"  # as last recorded; see StateStore.status()
    pid: int = 0  # the sandbox process (the pid-file pid)
    pid_start: int = 0  # its /proc start time, against pid reuse
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    flags: dict[str, Any] = dataclasses.field(default_factory=dict)  # global flags at create
    hooks: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)  # the spec's, by kind

    @staticmethod
    def new(container_id: str, bundle: str, rootfs: str, annotations: dict[str, str]) -> ContainerState:
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        try:
            owner = pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:
            owner = str(os.geteuid())
        return ContainerState(container_id, bundle, rootfs, now, owner, annotations=annotations)

    def sandbox_alive(self) -> bool:
        return procinfo.is_alive(self.pid, self.pid_start)


def validate_id(container_id: str) -> str:
    """Reject ids that are not safe as a single path component (runc's rule)."""
    if not _ID_RE.match(container_id) or container_id in (".", ".."):
        raise OCIError(f"invalid container id {container_id!r}: use letters, digits and _ + - . only")
    return container_id


class StateStore:
    """The containers under one `--root` directory."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def dir(self, container_id: str) -> str:
        return os.path.join(self.root, validate_id(container_id))

    def create(self, state: ContainerState) -> None:
        """Make the container's directory and first state; fails if the id is taken."""
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        try:
            os.mkdir(self.dir(state.id), 0o711)
        except FileExistsError:
            raise OCIError(f"container {state.id!r} already exists") from None
        with open(os.path.join(self.dir(state.id), "lock"), "w"):
            pass
        self.save(state)

    @contextlib.contextmanager
    def locked(self, container_id: str) -> Iterator[ContainerState]:
        """Hold the container's lock and yield its state (save() changes to keep them)."""
        lock_path = os.path.join(self.dir(container_id), "lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound(f"container {container_id!r} does not exist") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # A delete that held the lock before us removed everything.
            yield self.load(container_id)
        finally:
            os.close(fd)

    def load(self, container_id: str) -> ContainerState:
        path = os.path.join(self.dir(container_id), "state.json")
        try:
            with open(path) as f:
                data = json.load(f)
        except FileNotFoundError:
            raise NotFound(f"container {container_id!r} does not exist") from None
        except (OSError, json.JSONDecodeError) as e:
            raise OCIError(f"container {container_id!r}: unreadable state {path}: {e}") from None
        return ContainerState(**data)

    def save(self, state: ContainerState) -> None:
        path = os.path.join(self.dir(state.id), "state.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(dataclasses.asdict(state), f)
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)

    def remove(self, container_id: str) -> None:
        """Remove the container's directory; a missing one is not an error."""
        shutil.rmtree(self.dir(container_id), ignore_errors=True)

    def ids(self) -> list[str]:
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        return [n for n in names if os.path.exists(os.path.join(self.root, n, "state.json"))]

    def list(self) -> list[ContainerState]:
        """Every container that still has state (one deleted meanwhile is skipped)."""
        out = []
        for container_id in self.ids():
            with contextlib.suppress(NotFound):
                out.append(self.load(container_id))
        return out

    def status(self, state: ContainerState) -> str:
        """The status to report: the recorded one while the sandbox process lives, else stopped."""
        if state.status == "creating" and not state.pid:
            return "creating"
        if state.pid and state.sandbox_alive():
            return state.status
        return "stopped"

    def exit_status(self, container_id: str) -> int | None:
        """The root process's exit code once the sandbox process wrote it."""
        try:
            with open(os.path.join(self.dir(container_id), "exit_status")) as f:
                return int(f.read().strip())
        except (FileNotFoundError, ValueError):
            return None

    def control_path(self, container_id: str) -> str:
        return os.path.join(self.dir(container_id), "control.sock")


def oci_state(store: StateStore, state: ContainerState) -> dict[str, Any]:
    """runc's `state` JSON for a container (pid 0 once stopped, as runc prints)."""
    status = store.status(state)
    out: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "id": state.id,
        "status": status,
        "pid": 0 if status == "stopped" else state.pid,
        "bundle": state.bundle,
        "rootfs": state.rootfs,
        "created": state.created,
        "owner": state.owner,
    }
    if state.annotations:
        out["annotations"] = state.annotations
    return out
