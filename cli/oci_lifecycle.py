"""create, start, run, kill, delete, wait, pause, resume."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from bootstrap import container
from bootstrap.errors import OCIError
from bootstrap.signals import parse_signal
from bootstrap.state import ContainerState
from cli.oci_common import report_errors, store

F = TypeVar("F", bound=Callable[..., Any])

# Signals `run` passes on to the container instead of dying of them.
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def _create_options(command: F) -> F:
    """The options runc's create takes; the ones with no meaning in a sandbox are accepted and ignored."""
    for option in reversed(
        [
            click.option("--bundle", "-b", default=".", help="Bundle directory (holding config.json)."),
            click.option("--pid-file", default=None, help="Write the sandbox process's pid here."),
            click.option("--console-socket", default=None, help="Unix socket receiving the pty master."),
            click.option("--no-pivot", is_flag=True, hidden=True),
            click.option("--no-new-keyring", is_flag=True, hidden=True),
            click.option("--preserve-fds", type=int, default=0, hidden=True),
            click.option("--user-log", default=None, hidden=True),
        ]
    ):
        command = option(command)
    return command


def _create(
    ctx: click.Context, container_id: str, bundle: str, pid_file: str | None, console_socket: str | None
) -> ContainerState:
    from bootstrap.launcher import create_container  # only create and run boot a sandbox

    flags = dataclasses.asdict(ctx.find_root().obj)
    return create_container(
        store(ctx), container_id, bundle, pid_file=pid_file, console_socket=console_socket, flags=flags
    )


@click.command("create")
@_create_options
@click.option("--detach", "-d", is_flag=True, hidden=True)  # go-runc may pass it; create never waits
@click.argument("container_id")
@click.pass_context
@report_errors
def create_command(ctx: click.Context, container_id: str, bundle: str, pid_file: str | None,
                   console_socket: str | None, **_ignored: object) -> None:  # fmt: skip
    """Create a container from a bundle; its process waits for `start`."""
    _create(ctx, container_id, bundle, pid_file, console_socket)


@click.command("start")
@click.argument("container_id")
@click.pass_context
@report_errors
def start_command(ctx: click.Context, container_id: str) -> None:
    """Start the process of a created container."""
    container.start(store(ctx), container_id)


@click.command("run")
@_create_options
@click.option("--detach", "-d", is_flag=True, help="Return once started instead of waiting.")
@click.argument("container_id")
@click.pass_context
@report_errors
def run_command(ctx: click.Context, container_id: str, bundle: str, pid_file: str | None,
                console_socket: str | None, detach: bool, **_ignored: object) -> None:  # fmt: skip
    """Create and start a container, then wait for it and delete it (unless --detach)."""
    state = _create(ctx, container_id, bundle, pid_file, console_socket)
    states = store(ctx)
    try:
        container.start(states, container_id)
    except BaseException:
        container.delete(states, container_id, force=True)
        raise
    if detach:
        return

    def forward(signo: int, _frame: object) -> None:
        with contextlib.suppress(OCIError):
            container.kill(states, container_id, signo)

    for signo in _FORWARDED:
        signal.signal(signo, forward)
    # The sandbox process is our own child here, so its exit status is the container's.
    _, status = os.waitpid(state.pid, 0)
    container.delete(states, container_id, force=True)
    code = os.waitstatus_to_exitcode(status)
    sys.exit(code if code >= 0 else 128 - code)


@click.command("kill")
@click.option("--all", "-a", "all_processes", is_flag=True, help="Signal every process of the container.")
@click.option("--pid", type=int, default=0, help="Signal this process (as the sandbox numbers it).")
@click.argument("container_id")
@click.argument("signal_name", default="SIGTERM")
@click.pass_context
@report_errors
def kill_command(
    ctx: click.Context, container_id: str, signal_name: str, all_processes: bool, pid: int
) -> None:
    """Send a signal (number or name: 15, TERM, SIGTERM) to the container's process."""
    container.kill(store(ctx), container_id, parse_signal(signal_name), all_processes=all_processes, pid=pid)


@click.command("delete")
@click.option("--force", "-f", is_flag=True, help="Kill a live container first; a missing one is fine.")
@click.argument("container_ids", nargs=-1, required=True)
@click.pass_context
@report_errors
def delete_command(ctx: click.Context, container_ids: tuple[str, ...], force: bool) -> None:
    """Delete containers and their state."""
    for container_id in container_ids:
        container.delete(store(ctx), container_id, force=force)


@click.command("wait")
@click.argument("container_id")
@click.pass_context
@report_errors
def wait_command(ctx: click.Context, container_id: str) -> None:
    """Wait for the container's process to exit and print its exit status."""
    status = container.wait(store(ctx), container_id)
    click.echo(json.dumps({"id": container_id, "exitStatus": status}))


@click.command("pause")
@click.argument("container_id")
@click.pass_context
@report_errors
def pause_command(ctx: click.Context, container_id: str) -> None:
    """Freeze every process of the container."""
    container.pause(store(ctx), container_id)


@click.command("resume")
@click.argument("container_id")
@click.pass_context
@report_errors
def resume_command(ctx: click.Context, container_id: str) -> None:
    """Thaw a paused container."""
    container.resume(store(ctx), container_id)


LIFECYCLE_COMMANDS = [
    create_command,
    start_command,
    run_command,
    kill_command,
    delete_command,
    wait_command,
    pause_command,
    resume_command,
]
