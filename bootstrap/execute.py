"""`exec`: another process in a running container.

The shim's form is `exec --process P.json --detach --pid-file F [--console-socket S] ID`;
people type `exec ID cmd args...`, which takes the container's own process
(env, cwd, user) as the template, as runc does.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from bootstrap import console
from bootstrap.control import ControlClient
from bootstrap.errors import OCIError
from bootstrap.launcher import spawn_reporting, write_pid_file
from bootstrap.spec import parse_process
from bootstrap.state import StateStore


def process_from_argv(
    store: StateStore,
    container_id: str,
    argv: list[str],
    *,
    cwd: str | None = None,
    env: tuple[str, ...] = (),
    user: str | None = None,
    tty: bool = False,
) -> dict[str, Any]:
    """A process object for `exec ID cmd...`, based on the container's own."""
    state = store.load(container_id)
    try:
        with open(os.path.join(state.bundle, "config.json")) as f:
            base = dict(json.load(f).get("process") or {})
    except (OSError, ValueError, AttributeError):
        base = {}
    process: dict[str, Any] = {
        "args": list(argv),
        "cwd": cwd or base.get("cwd") or "/",
        "env": list(base.get("env") or []) + list(env),
        "user": dict(base.get("user") or {"uid": 0, "gid": 0}),
        "terminal": tty,
    }
    # runc's exec starts from the container's process, limits and privileges included.
    for key in ("capabilities", "rlimits", "noNewPrivileges", "oomScoreAdj"):
        if key in base:
            process[key] = base[key]
    if user is not None:
        uid, _, gid = user.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise OCIError(f"--user {user!r}: expected UID[:GID]")
        process["user"] = {"uid": int(uid), "gid": int(gid or 0)}
    return process


def exec_process(
    store: StateStore,
    container_id: str,
    process: dict[str, Any],
    *,
    detach: bool = False,
    pid_file: str | None = None,
    console_socket: str | None = None,
) -> int:
    """Run `process` in the container; returns its exit code, or 0 once started with detach."""
    state = store.load(container_id)
    if store.status(state) not in ("created", "running"):
        raise OCIError("container not running")
    spec_process = parse_process(process, "process")
    stdio = console.stdio_for(spec_process.terminal, console_socket, spec_process.console_size)
    try:
        control = store.control_path(container_id)
        if detach:
            pid = _spawn_proxy(control, process, stdio)
            if pid_file:
                write_pid_file(pid_file, pid)
            return 0
        with ControlClient(control) as client:
            in_sandbox = client.exec(process, stdio)
            if pid_file:
                write_pid_file(pid_file, os.getpid())
            return client.wait(in_sandbox)
    finally:
        if stdio[0] != 0:
            os.close(stdio[0])


def _spawn_proxy(control: str, process: dict[str, Any], stdio: tuple[int, int, int]) -> int:
    proxy = spawn_reporting(
        [sys.executable, "-m", "bootstrap.exec_proxy", control, json.dumps(process)],
        stdio,
        died="exec: the exec proxy died",
        failed="exec failed",
    )
    return proxy.pid
