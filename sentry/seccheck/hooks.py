"""What the Sentry calls at each trace point; free when no session is active.

Syscall points are per-number tables, `SYSCALL_ENTER[nr]` and
`SYSCALL_EXIT[nr]`, holding None or an emitter built when the session
started. `SYSCALL_TRACED[0]` says whether any syscall point is on. The lists
are updated in place and never rebound, so the dispatcher binds them once and,
with no session, pays one index and one truth test per syscall:

    traced = SYSCALL_TRACED[0]
    if traced:
        syscall_enter(task, nr, args)
    ...  # the syscall
    if traced:
        syscall_exit(task, nr, args, ret)

The process lifecycle hooks (container_start, clone, execve,
exit_notify_parent, task_exit) are rare and check for themselves. No hook
raises into the Sentry: a failure while building a point is logged once and
the point is lost.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from google.protobuf.message import Message

from sentry.seccheck import context, points
from sentry.seccheck.config import PointConfig
from sentry.seccheck.messages import MESSAGE_CLASSES
from sentry.seccheck.proto import common_pb2, container_pb2, sentry_pb2
from sentry.seccheck.syscall_fields import BUILDERS

log = logging.getLogger(__name__)

Emit = Callable[[int, Message], None]
EnterHook = Callable[[Any, Sequence[int]], None]
ExitHook = Callable[[Any, Sequence[int], int], None]

SYSCALL_ENTER: list[EnterHook | None] = [None] * (points.RAW_SYSNO_MAX + 1)
SYSCALL_EXIT: list[ExitHook | None] = [None] * (points.RAW_SYSNO_MAX + 1)
SYSCALL_TRACED: list[bool] = [False]

MAX_ERRNO = 4095


@dataclasses.dataclass(frozen=True)
class _Prepared:
    """A lifecycle point as the session enabled it."""

    message_type: int
    fill: context.Filler | None
    optional: frozenset[str]


_lifecycle: dict[str, _Prepared] = {}
_emit: Emit | None = None
_failures = 0


def install(cfgs: Sequence[PointConfig], emit: Emit) -> None:
    """Turn on exactly the points in `cfgs`, delivering to `emit` (session.create calls this)."""
    global _emit
    enter: list[list[PointConfig]] = [[] for _ in SYSCALL_ENTER]
    exit_: list[list[PointConfig]] = [[] for _ in SYSCALL_EXIT]
    lifecycle: dict[str, _Prepared] = {}
    for cfg in cfgs:
        p = cfg.point
        if p.sysno is None:
            sent = cfg.context_fields - points.UNSENT_CONTEXT_FIELDS.get(p.name, frozenset())
            lifecycle[p.name] = _Prepared(p.message_type, context.filler(sent), cfg.optional_fields)
        else:
            (exit_ if p.exit else enter)[p.sysno].append(cfg)
    _emit = emit
    _lifecycle.clear()
    _lifecycle.update(lifecycle)
    SYSCALL_ENTER[:] = [_enter_hook(nr, c, emit) if c else None for nr, c in enumerate(enter)]
    SYSCALL_EXIT[:] = [_exit_hook(nr, c, emit) if c else None for nr, c in enumerate(exit_)]
    SYSCALL_TRACED[0] = any(enter) or any(exit_)


def uninstall() -> None:
    """Turn every point off."""
    global _emit
    SYSCALL_TRACED[0] = False
    SYSCALL_ENTER[:] = [None] * len(SYSCALL_ENTER)
    SYSCALL_EXIT[:] = [None] * len(SYSCALL_EXIT)
    _lifecycle.clear()
    _emit = None


def syscall_enter(task: Any, nr: int, args: Sequence[int]) -> None:
    """The syscall/*/enter points for `nr` (the dispatcher calls it while SYSCALL_TRACED[0])."""
    if 0 <= nr < len(SYSCALL_ENTER):
        hook = SYSCALL_ENTER[nr]
        if hook is not None:
            hook(task, args)


def syscall_exit(task: Any, nr: int, args: Sequence[int], ret: int) -> None:
    """The syscall/*/exit points for `nr`; `ret` is what the app gets in rax (-errno on failure)."""
    if 0 <= nr < len(SYSCALL_EXIT):
        hook = SYSCALL_EXIT[nr]
        if hook is not None:
            hook(task, args, ret)


def container_start(
    task: Any,
    *,
    container_id: str,
    cwd: str,
    args: Sequence[str | bytes],
    env: Sequence[str | bytes],
    terminal: bool,
) -> None:
    """container/start: the container's init task is about to run its first instruction."""
    p = _lifecycle.get(points.CONTAINER_START)
    if p is None:
        return
    with _guarded():
        m = container_pb2.Start(id=container_id, cwd=cwd, args=_texts(args), terminal=terminal)
        if "env" in p.optional:
            m.env.extend(_texts(env))
        _send(p, m, task)


def clone(task: Any, child: Any, flags: int) -> None:
    """sentry/clone: `task` created `child` (a thread or a process) with clone `flags`."""
    p = _lifecycle.get(points.SENTRY_CLONE)
    if p is None:
        return
    with _guarded():
        m = sentry_pb2.CloneInfo(
            created_thread_id=child.tid,
            created_thread_group_id=child.tg.pid,
            created_thread_start_time_ns=child.start_time_ns,
            flags=flags & ((1 << 64) - 1),
        )
        _send(p, m, task)


def execve(
    task: Any,
    *,
    binary_path: str | bytes,
    argv: Sequence[str | bytes],
    env: Sequence[str | bytes],
    stat: Any = None,
    content: bytes | None = None,
) -> None:
    """sentry/execve: `task` has committed to the new image (its context still names the old one).

    `stat` (a sentry.vfs.stat.Stat: mode uid gid ino size nlink ctime_ns) feeds
    binary_info, `content` (the executable's bytes) binary_sha256. Bytes are
    decoded as UTF-8 with replacement, as protobuf strings must be.
    """
    p = _lifecycle.get(points.SENTRY_EXECVE)
    if p is None:
        return
    with _guarded():
        m = sentry_pb2.ExecveInfo(binary_path=_text(binary_path), argv=_texts(argv), env=_texts(env))
        if "binary_info" in p.optional and stat is not None:
            m.binary_mode, m.binary_uid, m.binary_gid = stat.mode, stat.uid, stat.gid
            m.binary_ino, m.binary_size, m.binary_nlink = stat.ino, stat.size, stat.nlink
            m.binary_ctime.sec, m.binary_ctime.nsec = divmod(stat.ctime_ns, 1_000_000_000)
        if "binary_sha256" in p.optional and content is not None:
            m.binary_sha256 = hashlib.sha256(content).digest()
        _send(p, m, task)


def exit_notify_parent(task: Any, exit_status: int) -> None:
    """sentry/exit_notify_parent: the exiting process `task` tells its parent (wait status)."""
    p = _lifecycle.get(points.SENTRY_EXIT_NOTIFY_PARENT)
    if p is not None:
        with _guarded():
            _send(p, sentry_pb2.ExitNotifyParentInfo(exit_status=exit_status), task)


def task_exit(task: Any, exit_status: int) -> None:
    """sentry/task_exit: the thread `task` is exiting (wait status)."""
    p = _lifecycle.get(points.SENTRY_TASK_EXIT)
    if p is not None:
        with _guarded():
            _send(p, sentry_pb2.TaskExit(exit_status=exit_status), task)


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _texts(values: Sequence[str | bytes]) -> list[str]:
    return [_text(v) for v in values]


def _send(p: _Prepared, m: Message, task: Any) -> None:
    emit = _emit
    if emit is not None:
        if p.fill is not None:
            p.fill(m.context_data, task)
        emit(p.message_type, m)


@contextlib.contextmanager
def _guarded() -> Iterator[None]:
    """Whatever goes wrong while building or sending a point stays here."""
    try:
        yield
    except Exception:
        _failed()


def _failed() -> None:
    """A point could not be built (a Sentry attribute missing or a bug): log the first, count all."""
    global _failures
    _failures += 1
    if _failures == 1:
        log.exception("seccheck: building a trace point failed (later failures are counted, not logged)")


def _raw(m: Message, task: Any, a: Sequence[int], ret: int | None, opt: frozenset[str]) -> None:
    m.arg1, m.arg2, m.arg3, m.arg4, m.arg5, m.arg6 = a


def _parts(cfgs: list[PointConfig]) -> tuple[tuple[type[Message], int, Any, Any, frozenset[str]], ...]:
    parts = []
    for cfg in cfgs:
        p = cfg.point
        build = _raw if p.message_type == common_pb2.MESSAGE_SYSCALL_RAW else BUILDERS[p.name.split("/")[1]]
        cls = MESSAGE_CLASSES[p.message_type]
        parts.append((cls, p.message_type, context.filler(cfg.context_fields), build, cfg.optional_fields))
    return tuple(parts)


def _enter_hook(nr: int, cfgs: list[PointConfig], emit: Emit) -> EnterHook:
    parts = _parts(cfgs)

    def on_enter(task: Any, args: Sequence[int]) -> None:
        try:
            for cls, mtype, fill, build, opt in parts:
                m = cls(sysno=nr)
                if fill is not None:
                    fill(m.context_data, task)
                build(m, task, args, None, opt)
                emit(mtype, m)
        except Exception:
            _failed()

    return on_enter


def _exit_hook(nr: int, cfgs: list[PointConfig], emit: Emit) -> ExitHook:
    parts = _parts(cfgs)

    def on_exit(task: Any, args: Sequence[int], ret: int) -> None:
        try:
            for cls, mtype, fill, build, opt in parts:
                m = cls(sysno=nr)
                if fill is not None:
                    fill(m.context_data, task)
                m.exit.SetInParent()
                if -MAX_ERRNO <= ret < 0:
                    m.exit.errorno = -ret
                else:
                    m.exit.result = ret
                build(m, task, args, ret, opt)
                emit(mtype, m)
        except Exception:
            _failed()

    return on_exit
