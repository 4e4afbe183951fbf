"""`kvmsandbox trace`: runsc's trace session commands.

`metadata` needs no sandbox. `create`, `delete`, `list` and `procfs` talk to
a running sandbox through its control socket (TraceControl below; the
sandbox side is sentry/seccheck/control.py). `create`
validates the session file and connects the remote sinks here, outside the
sandbox, then hands the connected fds over: the Sentry makes no host sockets.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any, Protocol

import click

from bootstrap.control import ControlClient
from bootstrap.errors import OCIError
from bootstrap.state import NotFound, StateStore
from sentry.seccheck import points, session
from sentry.seccheck.config import ConfigError, load_session_file
from sentry.seccheck.sinks.remote import SinkSetupError


class TraceControlError(Exception):
    """The sandbox refused a trace request; the message is what the user sees."""


class TraceControl(Protocol):
    """What a sandbox's control channel offers the trace commands (runsc's containerManager RPCs).

    A refused request (a session already exists, no session by that name)
    raises TraceControlError.
    """

    def create_trace_session(self, config: dict[str, Any], fds: list[int | None], force: bool) -> None: ...

    def delete_trace_session(self, name: str) -> None: ...

    def list_trace_sessions(self) -> list[dict[str, Any]]: ...

    def procfs_dump(self) -> list[dict[str, Any]]: ...


class _SandboxControl:
    """TraceControl over the sandbox's control socket, one connection per request."""

    def __init__(self, path: str) -> None:
        self._path = path

    def _call(self, op: str, fds: list[int] | tuple[int, ...] = (), **args: Any) -> Any:
        try:
            with ControlClient(self._path) as client:
                return client.call(op, fds=fds, **args)
        except OCIError as e:
            raise TraceControlError(str(e)) from None

    def create_trace_session(self, config: dict[str, Any], fds: list[int | None], force: bool) -> None:
        fd_sinks = [i for i, fd in enumerate(fds) if fd is not None]
        self._call(
            "trace_create",
            [fd for fd in fds if fd is not None],
            config=config,
            force=force,
            fd_sinks=fd_sinks,
        )

    def delete_trace_session(self, name: str) -> None:
        self._call("trace_delete", name=name)

    def list_trace_sessions(self) -> list[dict[str, Any]]:
        return self._call("trace_list")

    def procfs_dump(self) -> list[dict[str, Any]]:
        return self._call("procfs")


def sandbox_control(root: str, container_id: str) -> TraceControl:
    """The control channel of the running sandbox of `container_id` under `root`."""
    store = StateStore(root)
    try:
        state = store.load(container_id)
    except NotFound:
        raise click.ClickException(f'container "{container_id}" not found') from None
    except OCIError as e:
        raise click.ClickException(str(e)) from None
    if not state.sandbox_alive():
        raise click.ClickException(f'container "{container_id}" is not running')
    return _SandboxControl(store.control_path(container_id))


def _root(ctx: click.Context) -> str:
    """The global --root (cli.main's GlobalFlags)."""
    return ctx.find_root().obj.root


@contextlib.contextmanager
def _reported() -> Iterator[None]:
    """A refused request becomes one error line and exit status 1."""
    try:
        yield
    except TraceControlError as e:
        raise click.ClickException(str(e)) from None


@click.group("trace")
def trace() -> None:
    """Manage trace sessions of a sandbox (runtime monitoring)."""


@trace.command("metadata")
def metadata() -> None:
    """List the trace points and sinks a session may use."""
    click.echo(points.metadata_text(), nl=False)


@trace.command("create")
@click.option(
    "--config", "config_path", required=True, help="Session file (JSON; or a pod-init-config file)."
)
@click.option("--force", is_flag=True, help="Replace the session if one exists.")
@click.argument("container_id")
@click.pass_context
def create(ctx: click.Context, config_path: str, force: bool, container_id: str) -> None:
    """Create a trace session in the sandbox of CONTAINER_ID."""
    try:
        config = load_session_file(config_path)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    control = sandbox_control(_root(ctx), container_id)
    try:
        fds = session.setup_sinks(config)
    except SinkSetupError as e:
        raise click.ClickException(f"{e} (set ignore_setup_error to start without it)") from None
    try:
        with _reported():
            control.create_trace_session(config.raw, fds, force)
    finally:
        for fd in fds:
            if fd is not None:
                os.close(fd)
    click.echo(f'Trace session "{config.name}" created.')


@trace.command("delete")
@click.option("--name", required=True, help="Session name (Default).")
@click.argument("container_id")
@click.pass_context
def delete(ctx: click.Context, name: str, container_id: str) -> None:
    """Delete the trace session NAME in the sandbox of CONTAINER_ID."""
    with _reported():
        sandbox_control(_root(ctx), container_id).delete_trace_session(name)
    click.echo(f'Trace session "{name}" deleted.')


@trace.command("list")
@click.argument("container_id")
@click.pass_context
def list_sessions(ctx: click.Context, container_id: str) -> None:
    """List the trace sessions of the sandbox of CONTAINER_ID with each sink's dropped count."""
    with _reported():
        sessions = sandbox_control(_root(ctx), container_id).list_trace_sessions()
    click.echo(session.list_text(sessions), nl=False)


@trace.command("procfs")
@click.argument("container_id")
@click.pass_context
def procfs(ctx: click.Context, container_id: str) -> None:
    """Dump the procfs state of every process in the sandbox of CONTAINER_ID as JSON."""
    with _reported():
        dump = sandbox_control(_root(ctx), container_id).procfs_dump()
    click.echo(json.dumps(dump, indent=2))
