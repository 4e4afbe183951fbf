"""Context fields: who did it, when and where, read from the Sentry's task for the fields a point enabled.

What a task must offer (the "context provider"; sentry/CONTRACT.md, seccheck):
`tid`, `start_time_ns`, `comm`, `creds` (ruid euid suid rgid egid sgid),
`fs.cwd`/`fs.root`, `kernel.container_id`, and a thread group `tg` with
`pid`, `start_time_ns` and `parent_pid()`. A filler is built once per point
when a session starts, so an event pays only for the fields it carries.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from sentry.seccheck.points import CONTEXT_FIELDS
from sentry.seccheck.proto.common_pb2 import ContextData
from sentry.vfs.mount import path_of

Filler = Callable[[ContextData, Any], None]


def _time(ctx: ContextData, task: Any) -> None:
    ctx.time_ns = time.time_ns()


def _thread_id(ctx: ContextData, task: Any) -> None:
    ctx.thread_id = task.tid


def _task_start_time(ctx: ContextData, task: Any) -> None:
    ctx.thread_start_time_ns = task.start_time_ns


def _group_id(ctx: ContextData, task: Any) -> None:
    ctx.thread_group_id = task.tg.pid


def _thread_group_start_time(ctx: ContextData, task: Any) -> None:
    ctx.thread_group_start_time_ns = task.tg.start_time_ns


def _container_id(ctx: ContextData, task: Any) -> None:
    ctx.container_id = task.kernel.container_id


def _credentials(ctx: ContextData, task: Any) -> None:
    c, out = task.creds, ctx.credentials
    out.real_uid, out.effective_uid, out.saved_uid = c.ruid, c.euid, c.suid
    out.real_gid, out.effective_gid, out.saved_gid = c.rgid, c.egid, c.sgid


def _cwd(ctx: ContextData, task: Any) -> None:
    fs = task.fs
    ctx.cwd = os.fsdecode(path_of(fs.cwd, fs.root))


def _process_name(ctx: ContextData, task: Any) -> None:
    ctx.process_name = task.comm


def _parent_thread_group_id(ctx: ContextData, task: Any) -> None:
    ctx.parent_thread_group_id = task.tg.parent_pid()


_SETTERS: dict[str, Filler] = {
    "time": _time,
    "thread_id": _thread_id,
    "task_start_time": _task_start_time,
    "group_id": _group_id,
    "thread_group_start_time": _thread_group_start_time,
    "container_id": _container_id,
    "credentials": _credentials,
    "cwd": _cwd,
    "process_name": _process_name,
    "parent_thread_group_id": _parent_thread_group_id,
}


def filler(fields: frozenset[str]) -> Filler | None:
    """A function filling exactly `fields`; None when there are none, so the point sends no context."""
    setters = tuple(_SETTERS[f] for f in CONTEXT_FIELDS if f in fields)
    if not setters:
        return None

    def fill(ctx: ContextData, task: Any) -> None:
        for setter in setters:
            setter(ctx, task)

    return fill
