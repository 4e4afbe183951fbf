"""The trace session: at most one, named "Default", as in runsc.

Setting a session up is split in two because the Sentry makes no host
sockets: `setup_sinks` runs outside it (in `create` or `trace create`) and
connects the remote sinks, and `create` runs inside it with the connected
fds and turns the points on (hooks.install). A remote sink that cannot be
reached fails setup unless its `ignore_setup_error` is set; then the session
runs without it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

from google.protobuf.message import Message

from sentry.seccheck import hooks
from sentry.seccheck.config import SessionConfig, load_pod_init_config
from sentry.seccheck.sinks import Sink
from sentry.seccheck.sinks.null import NullSink
from sentry.seccheck.sinks.remote import RemoteSink, SinkSetupError, connect_remote

log = logging.getLogger(__name__)


class SessionError(Exception):
    """A session operation runsc would refuse (one already exists, none by that name)."""


@dataclasses.dataclass(frozen=True)
class Session:
    config: SessionConfig
    sinks: tuple[Sink, ...]

    @property
    def name(self) -> str:
        return self.config.name

    def emit(self, message_type: int, message: Message) -> None:
        for sink in self.sinks:
            sink.emit(message_type, message)

    def describe(self) -> dict[str, Any]:
        """The session as `trace list` shows it (JSON-able, to cross the control channel)."""
        return {"name": self.name, "sinks": [{"name": s.name, "dropped": s.dropped} for s in self.sinks]}

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


PodInitSession = tuple[SessionConfig, list[int | None]]
"""A `--pod-init-config` session with its sinks' fds, ready for `create` (or Sandbox(trace=...))."""

_lock = threading.Lock()
_current: Session | None = None


def setup_sinks(config: SessionConfig) -> list[int | None]:
    """Outside the Sentry: one connected fd per remote sink (None for null and skipped sinks)."""
    fds: list[int | None] = []
    try:
        for sink in config.sinks:
            if sink.remote is None:
                fds.append(None)
                continue
            try:
                fds.append(connect_remote(sink.remote.endpoint))
            except SinkSetupError as e:
                if not sink.ignore_setup_error:
                    raise
                log.warning("%s; continuing without it (ignore_setup_error)", e)
                fds.append(None)
    except BaseException:
        for fd in fds:
            if fd is not None:
                os.close(fd)
        raise
    return fds


def create(config: SessionConfig, fds: Sequence[int | None], *, force: bool = False) -> Session:
    """Inside the Sentry: start the session on the fds from setup_sinks (this takes them over)."""
    global _current
    if len(fds) != len(config.sinks):
        raise ValueError(f"{len(config.sinks)} sinks but {len(fds)} fds")
    with _lock:
        if _current is not None and not force:
            for fd in fds:
                if fd is not None:
                    os.close(fd)
            raise SessionError(f'trace session "{_current.name}" already exists (use --force to replace it)')
        sinks: list[Sink] = []
        for sink, fd in zip(config.sinks, fds, strict=True):
            if sink.remote is None:
                sinks.append(NullSink())
            elif fd is not None:
                r = sink.remote
                sinks.append(RemoteSink(fd, r.retries, r.backoff, r.backoff_max))
        session = Session(config, tuple(sinks))
        old, _current = _current, session
        emit = session.sinks[0].emit if len(session.sinks) == 1 else session.emit
        hooks.install(config.points, emit)
    if old is not None:
        old.close()
    return session


def delete(name: str) -> None:
    """Stop the session called `name` and close its sinks."""
    global _current
    with _lock:
        if _current is None or _current.name != name:
            raise SessionError(f'trace session "{name}" not found')
        old, _current = _current, None
        hooks.uninstall()
    old.close()


def describe_all() -> list[dict[str, Any]]:
    """Every session (zero or one), described for `trace list`."""
    session = _current
    return [] if session is None else [session.describe()]


def list_text(sessions: Sequence[dict[str, Any]]) -> str:
    """What `trace list` prints from `describe_all()`: runsc's SESSIONS listing with each sink's drops."""
    lines = [f"SESSIONS ({len(sessions)})"]
    for s in sessions:
        lines.append(f'"{s["name"]}"')
        lines.extend(f'\tSink: "{sink["name"]}", dropped: {sink["dropped"]}' for sink in s["sinks"])
    return "\n".join(lines) + "\n"


def pod_init_session(path: str) -> PodInitSession | None:
    """Outside the Sentry, at sandbox creation: the `--pod-init-config` session and its sink fds.

    The Sentry must `create` it before the app's first instruction so no early point is lost.
    """
    config = load_pod_init_config(path)
    if config is None:
        return None
    return config, setup_sinks(config)
