"""The sandbox side of the trace commands: control-socket operations on this process's session.

The sandbox's control server (bootstrap/control.py) registers `OPERATIONS`
and lets `trace_create` carry fds. A request is the decoded JSON; the fds are
the remote sinks' connections that the CLI made (`fd_sinks` says which sink
each belongs to, since null and skipped sinks have none). Refusals raise one
of `REFUSALS`, which the server reports as the request's error.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from sentry.seccheck import session
from sentry.seccheck.config import ConfigError, parse_session

REFUSALS = (session.SessionError, ConfigError)


def trace_create(request: dict[str, Any], fds: list[int]) -> None:
    """Start the session in `request["config"]` on the donated fds (closed here if it is refused)."""
    try:
        config = parse_session(request.get("config"), where="trace session")
        fd_sinks = request.get("fd_sinks", [])
        if len(fd_sinks) != len(fds) or not all(
            isinstance(i, int) and 0 <= i < len(config.sinks) for i in fd_sinks
        ):
            raise ConfigError(f"trace session: {len(fds)} fds for sinks {fd_sinks!r}")
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    by_sink: list[int | None] = [None] * len(config.sinks)
    for index, fd in zip(fd_sinks, fds, strict=True):
        by_sink[index] = fd
    session.create(config, by_sink, force=bool(request.get("force")))


def trace_delete(request: dict[str, Any], fds: list[int]) -> None:
    session.delete(str(request.get("name")))


def trace_list(request: dict[str, Any], fds: list[int]) -> list[dict[str, Any]]:
    return session.describe_all()


OPERATIONS: dict[str, Callable[[dict[str, Any], list[int]], Any]] = {
    "trace_create": trace_create,
    "trace_delete": trace_delete,
    "trace_list": trace_list,
}
