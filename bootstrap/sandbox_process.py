"""The sandbox process: `python -m bootstrap.sandbox_process STATE_DIR READY_FD`.

`create` spawns it and exits; the shim (a subreaper) inherits it and waits
for it, because its pid is the one in `--pid-file`: its exit status is the
container's (the root process's exit code, 128+signo if a signal killed it).
Its fds 0, 1, 2 are the container's stdio (the shim's pipes, or a pts slave
when process.terminal is set).

It joins the container's host cgroup (bootstrap/cgroups.py) first, so that
everything it starts is in it, enters its host namespaces, boots the backend
(the Sentry, which starts its gofer), binds the control socket, confines
itself (bootstrap.confine), reports readiness (or the error) on READY_FD,
then waits for the root process to exit. Its configuration is
STATE_DIR/sandbox.json, so that its command line (what `docker top` and `ps`
show of it) stays short.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sys
from typing import Any

from bootstrap import backend as backend_mod
from bootstrap import confine, logs, namespaces
from bootstrap.cgroups import Cgroup
from bootstrap.control import ControlServer
from bootstrap.errors import OCIError
from bootstrap.lifecycle import ContainerLifecycle
from bootstrap.spec import load_bundle

log = logging.getLogger("kvmsandbox.sandbox")

CONFIG_NAME = "sandbox.json"


@dataclasses.dataclass(frozen=True)
class SandboxConfig:
    """What `create` tells the sandbox process (as sandbox.json in the state dir)."""

    container_id: str
    bundle: str
    state_dir: str
    platform: str | None = None
    network: str = "none"
    overlay2: str = "root:memory"
    file_access: str = "exclusive"
    log: str | None = None
    log_format: str = "text"
    debug_log: str | None = None
    # --pod-init-config: the file, and per sink the fd `create` connected for it (None: no fd).
    pod_init_config: str | None = None
    trace_fds: list[int | None] = dataclasses.field(default_factory=list)
    userns_fd: int | None = None  # our end of `create`'s user-namespace mapping handshake

    def save(self) -> None:
        with open(os.path.join(self.state_dir, CONFIG_NAME), "w") as f:
            json.dump(dataclasses.asdict(self), f)

    @staticmethod
    def load(state_dir: str) -> SandboxConfig:
        with open(os.path.join(state_dir, CONFIG_NAME)) as f:
            return SandboxConfig(**json.load(f))


def _boot(config: SandboxConfig) -> tuple[ContainerLifecycle, ControlServer]:
    """Everything before readiness, confinement last; raises OCIError for what the user can fix."""
    cgroup = Cgroup.load(config.state_dir)  # the one `create` made and recorded
    if cgroup is not None:
        cgroup.join()  # first: the gofer and platform helpers inherit it
    spec = load_bundle(config.bundle)
    namespaces.enter(spec, config.network, config.userns_fd)
    request = backend_mod.BootRequest(
        container_id=config.container_id,
        spec=spec,
        stdio=(0, 1, 2),
        platform=config.platform,
        network=config.network,
        overlay2=config.overlay2,
        file_access=config.file_access,
        trace=_trace_session(config),
    )
    lifecycle = ContainerLifecycle(backend_mod.boot(request))
    try:
        from sentry.seccheck import control as trace_control

        server = ControlServer(
            os.path.join(config.state_dir, "control.sock"),
            lifecycle,
            extensions=trace_control.OPERATIONS,
            refusals=trace_control.REFUSALS,
        )
        confine.confine_sandbox_process(
            config.network, own_mount_namespace=namespaces.made_mount_namespace(spec)
        )
    except BaseException:
        lifecycle.shutdown()
        raise
    return lifecycle, server


def _trace_session(config: SandboxConfig) -> Any:
    """The --pod-init-config session with the sink fds `create` connected (seccheck's PodInitSession)."""
    if not config.pod_init_config:
        return None
    from sentry.seccheck.config import ConfigError, load_pod_init_config

    try:
        session = load_pod_init_config(config.pod_init_config)
    except ConfigError as e:
        raise OCIError(f"--pod-init-config: {e}") from None
    return None if session is None else (session, list(config.trace_fds))


def run(config: SandboxConfig, ready_fd: int) -> int:
    """Boot, report on ready_fd, serve until the root process exits; returns the exit status."""
    os.set_inheritable(ready_fd, False)  # `create` reads until EOF: no helper we spawn may hold it
    # Opened now: once confined, the state directory is out of reach.
    exit_file = _open_exit_status(config.state_dir)
    with os.fdopen(ready_fd, "w") as ready:
        try:
            lifecycle, server = _boot(config)
        except OCIError as e:
            ready.write(json.dumps({"ok": False, "error": str(e)}))
            return 1
        except Exception as e:
            log.exception("sandbox boot failed")
            ready.write(json.dumps({"ok": False, "error": f"sandbox boot failed: {type(e).__name__}: {e}"}))
            return 1
        server.serve_in_background()
        ready.write(json.dumps({"ok": True}))
    status = lifecycle.wait(0)
    _write_exit_status(exit_file, status)
    # Like the death of a pid namespace's init: everything else dies, which answers pending waits.
    with contextlib.suppress(Exception):
        lifecycle.shutdown()
    server.close()
    return status


def _open_exit_status(state_dir: str) -> int:
    """STATE_DIR/exit_status, empty until the root process exits (readers take empty as not yet)."""
    path = os.path.join(state_dir, "exit_status")
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)


def _write_exit_status(exit_file: int, status: int) -> None:
    """For `wait` and `state` after we are gone: one small write, so a reader sees all or nothing."""
    with contextlib.suppress(OSError):
        os.write(exit_file, str(status).encode())
    os.close(exit_file)


def main() -> None:
    config = SandboxConfig.load(sys.argv[1])
    logs.configure(config.log, config.log_format, config.debug_log)
    status = run(config, int(sys.argv[2]))
    sys.stdout.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
