"""`create`: bundle -> state + a sandbox process waiting for `start`.

Order matters for "a malformed bundle leaves nothing behind": the bundle is
validated before any state exists; once the state directory exists, any
failure kills the sandbox process's session (so its gofer too) and removes the
container's cgroup and the state before the error is reported.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from bootstrap import cgroups, console, namespaces, procinfo, userns
from bootstrap.errors import OCIError
from bootstrap.hooks import IN_CONTAINER, run_hooks
from bootstrap.sandbox_process import SandboxConfig
from bootstrap.spec import Spec, load_bundle
from bootstrap.state import ContainerState, StateStore, oci_state, validate_id

log = logging.getLogger("kvmsandbox")


def create_container(
    store: StateStore,
    container_id: str,
    bundle: str,
    *,
    pid_file: str | None = None,
    console_socket: str | None = None,
    flags: dict[str, object] | None = None,
) -> ContainerState:
    """Validate, record and launch; returns the state as `created`."""
    validate_id(container_id)
    spec = load_bundle(bundle)
    flags = dict(flags or {})
    state = ContainerState.new(container_id, spec.bundle, spec.root.path, spec.annotations)
    state.flags = flags
    state.hooks = {kind: [h.to_json() for h in hooks] for kind, hooks in spec.hooks.items()}
    store.create(state)
    proc = None
    cgroup = None
    trace_fds: list[int | None] = []
    mapper = userns.Mapper(spec) if userns.wanted(spec) else None
    try:
        with store.locked(container_id) as state:
            pod_init = _absolute(flags.get("pod_init_config"))
            trace_fds = connect_trace_sinks(pod_init)
            cgroup = _make_cgroup(spec, container_id, bool(flags.get("systemd_cgroup")), store.root)
            cgroup.save(store.dir(container_id))
            stdio = console.stdio_for(spec.process.terminal, console_socket, spec.process.console_size)
            config = SandboxConfig(
                container_id=container_id,
                bundle=spec.bundle,
                state_dir=store.dir(container_id),
                platform=flags.get("platform"),  # type: ignore[arg-type]
                network=str(flags.get("network", "none")),
                overlay2=str(flags.get("overlay2", "root:memory")),
                file_access=str(flags.get("file_access", "exclusive")),
                log=_absolute(flags.get("log")),
                log_format=str(flags.get("log_format", "text")),
                debug_log=_absolute(flags.get("debug_log")),
                pod_init_config=pod_init,
                trace_fds=trace_fds,
                userns_fd=None if mapper is None else mapper.child_fd,
            )
            with namespaces.pid_namespace_for_children(spec):
                proc = _spawn(config, stdio, mapper)
            if stdio[0] != 0:
                os.close(stdio[0])
            state.pid = proc.pid
            state.pid_start = procinfo.start_time(proc.pid) or 0
            store.save(state)
            run_hooks(
                "createRuntime", state.hooks.get("createRuntime", []), oci_state(store, state), fatal=True
            )
            for kind in IN_CONTAINER:
                if state.hooks.get(kind):
                    log.warning("%s hooks are not run: they would run inside the sandbox", kind)
            state.status = "created"
            store.save(state)
            if pid_file:
                write_pid_file(pid_file, proc.pid)
            return state
    except BaseException:
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if cgroup is not None:
            cgroups.remove(cgroup)
        store.remove(container_id)
        raise
    finally:
        for fd in trace_fds:
            if fd is not None:
                os.close(fd)  # the sandbox process has its own copies
        if mapper is not None:
            mapper.close()


def _make_cgroup(spec: Spec, container_id: str, systemd: bool, state_root: str) -> cgroups.Cgroup:
    """The container's cgroup with linux.resources applied (bootstrap/cgroups.py)."""
    inner = cgroups.inner_path(spec.linux.cgroups_path, container_id, systemd, state_root)
    return cgroups.create(inner, spec.linux.cgroup_writes)


def _spawn(
    config: SandboxConfig, stdio: tuple[int, int, int], mapper: userns.Mapper | None
) -> subprocess.Popen:
    """Start the sandbox process in its own session, map its user namespace if it makes one, and
    wait for its ready report."""
    config.save()
    pass_fds = [fd for fd in config.trace_fds if fd is not None]
    return spawn_reporting(
        [sys.executable, "-m", "bootstrap.sandbox_process", config.state_dir],
        stdio,
        died="the sandbox process died while booting",
        failed="sandbox boot failed",
        pass_fds=pass_fds if mapper is None else [*pass_fds, mapper.child_fd],
        started=None if mapper is None else (lambda proc: mapper.map_when_asked(proc.pid)),
        start_new_session=True,
        env=_sandbox_env(),
    )


def spawn_reporting(
    argv: list[str],
    stdio: tuple[int, int, int],
    *,
    died: str,
    failed: str,
    pass_fds: list[int] | tuple[int, ...] = (),
    started: Callable[[subprocess.Popen], None] | None = None,
    **popen: Any,
) -> subprocess.Popen:
    """Start a helper that reports `{"ok": true}` or `{"ok": false, "error": ...}` as JSON on a
    pipe (its write end's number is appended to argv) and wait for that report.

    started: called once the helper runs, before its report is read; if it raises, the helper
    is killed first.
    """
    ready_r, ready_w = os.pipe()
    try:
        proc = subprocess.Popen(
            [*argv, str(ready_w)],
            stdin=stdio[0],
            stdout=stdio[1],
            stderr=stdio[2],
            pass_fds=[ready_w, *pass_fds],
            close_fds=True,
            cwd="/",
            **popen,
        )
    finally:
        os.close(ready_w)
    with os.fdopen(ready_r) as ready:
        if started is not None:
            try:
                started(proc)
            except BaseException:
                proc.kill()
                proc.wait()
                raise
        text = ready.read()
    try:
        report = json.loads(text)
    except json.JSONDecodeError:
        proc.wait()
        raise OCIError(f"{died} (exit status {proc.returncode})") from None
    if not report.get("ok"):
        proc.wait()
        raise OCIError(report.get("error", failed))
    return proc


def connect_trace_sinks(pod_init_config: str | None) -> list[int | None]:
    """--pod-init-config: connect the session's remote sinks here, in the trusted CLI, as runsc does.

    The sandbox process gets only the connected fds (one per sink, None where
    there is none) and starts the session before the container's first task.
    """
    if not pod_init_config:
        return []
    from sentry.seccheck.config import ConfigError
    from sentry.seccheck.session import pod_init_session
    from sentry.seccheck.sinks.remote import SinkSetupError

    try:
        session = pod_init_session(pod_init_config)
    except ConfigError as e:
        raise OCIError(f"--pod-init-config: {e}") from None
    except SinkSetupError as e:
        raise OCIError(
            f"--pod-init-config: {e} (set the sink's ignore_setup_error to start without it)"
        ) from None
    return [] if session is None else session[1]


def _absolute(path: object) -> str | None:
    """The sandbox process runs in /: relative paths from the caller's cwd (the bundle) must be absolute."""
    return os.path.abspath(str(path)) if path else None


def _sandbox_env() -> dict[str, str]:
    """The sandbox process keeps only what it needs of our environment, not the shim's."""
    keep = ("PATH", "PYTHONPATH", "KVMSANDBOX_BACKEND", "HOME", "LANG")
    return {k: v for k, v in os.environ.items() if k in keep}


def write_pid_file(path: str, pid: int) -> None:
    """Atomically, as runc does: the shim may read it as soon as it exists."""
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.tmp")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.replace(tmp, path)
