"""Hooks build runsc's messages from a Sentry task; checked by field number at an independent monitor."""

from __future__ import annotations

import errno
import struct
import types

import pytest
from trace_monitor import decode, one, signed64, wait_for

from sentry.seccheck import hooks, points, session
from sentry.seccheck.config import parse_session
from sentry.seccheck.session import SessionError
from sentry.vfs.stat import Stat

CTX = ["time", "thread_id", "group_id", "container_id", "credentials", "cwd", "process_name"]


def start(monitor, point_list):
    sinks = [{"name": "remote", "config": {"endpoint": monitor.path}}]
    config = parse_session({"name": "Default", "points": point_list, "sinks": sinks})
    return session.create(config, session.setup_sinks(config))


def packets(monitor, n):
    wait_for(lambda: len(monitor.packets) >= n)
    return monitor.packets


def test_no_session_means_empty_tables(task):
    assert session.describe_all() == []
    assert hooks.SYSCALL_ENTER.count(None) == points.RAW_SYSNO_MAX + 1
    assert hooks.SYSCALL_TRACED == [False]  # what the dispatcher tests before anything else
    hooks.syscall_enter(task, 257, (0,) * 6)
    hooks.task_exit(task, 0)  # nothing to send to: returns quietly


def test_openat_enter_exit_with_fd_path_and_context(monitor, task):
    point = {"name": "syscall/openat/enter", "optional_fields": ["fd_path"], "context_fields": CTX}
    start(monitor, [point, {**point, "name": "syscall/openat/exit"}])
    assert hooks.SYSCALL_ENTER[257] is not None and hooks.SYSCALL_ENTER[2] is None
    assert hooks.SYSCALL_TRACED == [True]
    path = task.mm.put_cstring("passwd")
    args = (3, path, 0o2000000, 0o644, 0, 0)
    hooks.syscall_enter(task, 257, args)
    hooks.SYSCALL_EXIT[257](task, args, 4)
    enter, exit_ = packets(monitor, 2)
    assert enter.message_type == exit_.message_type == 7
    f = enter.fields()
    assert (one(f, 3), one(f, 4), one(f, 5), one(f, 6)) == (257, 3, b"/etc", b"passwd")
    assert (one(f, 7), one(f, 8)) == (0o2000000, 0o644)
    assert 2 not in f  # no exit on an enter point
    ctx = decode(one(f, 1))
    assert (one(ctx, 2), one(ctx, 4), one(ctx, 6), one(ctx, 8), one(ctx, 9)) == (
        7,
        5,
        b"ctr-1",
        b"/work",
        b"sh",
    )
    assert decode(one(ctx, 7)) == {1: [1], 2: [2], 3: [3], 4: [4], 5: [5], 6: [6]}
    assert one(ctx, 1) > 1_600_000_000 * 10**9
    assert decode(one(exit_.fields(), 2)) == {1: [4]}


def test_at_fdcwd_is_a_negative_varint(monitor, task):
    start(monitor, [{"name": "syscall/openat/enter", "optional_fields": ["fd_path"]}])
    hooks.syscall_enter(
        task, 257, ((-100) & (2**64 - 1), task.mm.put_cstring("/etc/ld.so.cache"), 0, 0, 0, 0)
    )
    (p,) = packets(monitor, 1)
    f = p.fields()
    assert one(f, 4) == 18446744073709551516 and signed64(one(f, 4)) == -100
    assert 1 not in f and 5 not in f  # no context asked for; no fd_path for AT_FDCWD


def test_raw_points_carry_number_args_and_errno(monitor, task):
    start(monitor, [{"name": "syscall/sysno/39/enter"}, {"name": "syscall/sysno/39/exit"}])
    args = (1, 2, 3, 4, 5, 2**64 - 1)
    hooks.syscall_enter(task, 39, args)
    hooks.syscall_exit(task, 39, args, -errno.ENOENT)
    enter, exit_ = packets(monitor, 2)
    assert enter.message_type == 6
    assert enter.fields() == {4: [39], 5: [1], 6: [2], 7: [3], 8: [4], 9: [5], 10: [2**64 - 1]}
    assert decode(one(exit_.fields(), 2)) == {2: [errno.ENOENT]}


def test_successful_exit_with_zero_result_still_has_exit(monitor, task):
    start(monitor, [{"name": "syscall/sysno/39/exit"}])
    hooks.syscall_exit(task, 39, (0,) * 6, 0)
    (p,) = packets(monitor, 1)
    assert p.fields()[2] == [b""]


def test_execve_enter_with_envv(monitor, task):
    start(monitor, [{"name": "syscall/execve/enter", "optional_fields": ["envv"]}])
    mm = task.mm
    args = (
        mm.put_cstring("/bin/ls"),
        mm.put_strings(["ls", "/"]),
        mm.put_strings(["PATH=/bin", "HOME=/"]),
        0,
        0,
        0,
    )
    hooks.syscall_enter(task, 59, args)
    (p,) = packets(monitor, 1)
    f = p.fields()
    assert p.message_type == 11
    assert (one(f, 3), one(f, 6), f[7], f[8]) == (59, b"/bin/ls", [b"ls", b"/"], [b"PATH=/bin", b"HOME=/"])


def test_bad_pointers_leave_fields_empty(monitor, task):
    start(monitor, [{"name": "syscall/execve/enter", "optional_fields": ["envv"]}])
    hooks.syscall_enter(task, 59, (1, 2, 3, 0, 0, 0))
    (p,) = packets(monitor, 1)
    assert p.fields() == {3: [59]}


def test_pipe_exit_reads_the_fds(monitor, task):
    start(monitor, [{"name": "syscall/pipe2/exit"}])
    fds = task.mm.put(struct.pack("<ii", 5, 6))
    hooks.syscall_exit(task, 293, (fds, 0o2000000, 0, 0, 0, 0), 0)
    (p,) = packets(monitor, 1)
    f = p.fields()
    assert (p.message_type, one(f, 4), one(f, 5), one(f, 6)) == (17, 0o2000000, 5, 6)


def test_lifecycle_points(monitor, task):
    ctx = {"context_fields": ["thread_id", "group_id", "process_name"]}
    start(
        monitor,
        [
            {"name": "container/start", "optional_fields": ["env"], **ctx},
            {"name": "sentry/clone", **ctx},
            {"name": "sentry/execve", "optional_fields": ["binary_info", "binary_sha256"], **ctx},
            {"name": "sentry/exit_notify_parent", "context_fields": ["cwd", "thread_id"]},
            {"name": "sentry/task_exit"},
        ],
    )
    assert hooks.SYSCALL_TRACED == [False]  # no syscall point: the dispatcher stays on its fast path
    hooks.container_start(
        task, container_id="c1", cwd="/", args=["sh", "-c", "true"], env=["A=1"], terminal=False
    )
    child = types.SimpleNamespace(tid=8, tg=types.SimpleNamespace(pid=8), start_time_ns=333)
    hooks.clone(task, child, 0x11)
    stat = Stat(mode=0o100755, ino=42, dev=1, size=9, ctime_ns=5_000_000_007)
    hooks.execve(task, binary_path="/bin/true", argv=["true"], env=["A=1"], stat=stat, content=b"\x7fELF")
    hooks.task_exit(task, 0)
    hooks.exit_notify_parent(task, 512)
    start_, clone, execve, task_exit, notify = packets(monitor, 5)
    assert [p.message_type for p in monitor.packets] == [1, 2, 3, 5, 4]
    f = start_.fields()
    assert (one(f, 2), one(f, 3), f[4], f[5], one(f, 6)) == (
        b"c1",
        b"/",
        [b"sh", b"-c", b"true"],
        [b"A=1"],
        None,
    )
    assert decode(one(f, 1)) == {2: [7], 4: [5], 9: [b"sh"]}
    f = clone.fields()
    assert (one(f, 3), one(f, 4), one(f, 5), one(f, 6)) == (8, 8, 333, 0x11)
    f = execve.fields()
    assert (one(f, 2), f[3], f[4], one(f, 5), one(f, 10), one(f, 18)) == (
        b"/bin/true",
        [b"true"],
        [b"A=1"],
        0o100755,
        42,
        9,
    )
    assert decode(one(f, 11)) == {1: [5], 2: [7]}
    assert len(one(f, 8)) == 32
    assert task_exit.payload == b""  # all defaults: runsc sends an empty payload too
    assert notify.fields() == {1: [b"\x10\x07"], 2: [512]}  # cwd is accepted but, as in runsc, not sent


def test_optional_fields_off_by_default(monitor, task):
    start(monitor, [{"name": "container/start"}, {"name": "syscall/openat/enter"}])
    hooks.container_start(task, container_id="c1", cwd="/", args=["sh"], env=["SECRET=1"], terminal=True)
    hooks.syscall_enter(task, 257, (3, task.mm.put_cstring("x"), 0, 0, 0, 0))
    start_, openat = packets(monitor, 2)
    assert 5 not in start_.fields() and one(start_.fields(), 6) == 1
    assert 5 not in openat.fields()


def test_every_schematized_point_builds(task):
    """Each builder decodes zeroed and plausible registers at enter and exit without failing."""
    sent = []
    cfgs = [
        parse_session(
            {"name": "Default", "points": [{"name": n, "optional_fields": list(p.optional_fields)}]}
        ).points[0]
        for n, p in points.POINTS.items()
        if p.sysno is not None and "/sysno/" not in n
    ]
    hooks.install(cfgs, lambda t, m: sent.append((t, m)))
    try:
        buf = task.mm.put(bytes(64))
        for name, (nr, mtype, _) in points.SCHEMATIZED.items():
            for args in ((0,) * 6, (1, buf, 16, buf, buf, 0)):
                before = len(sent)
                hooks.syscall_enter(task, nr, args)
                hooks.syscall_exit(task, nr, args, 0)
                assert [t for t, _ in sent[before:]] == [mtype, mtype], name
                assert all(m.sysno == nr for _, m in sent[before:])
    finally:
        hooks.uninstall()


def test_bad_arguments_never_raise(monitor, task):
    start(monitor, [{"name": "sentry/execve"}, {"name": "container/start"}])
    hooks.execve(task, binary_path=b"/bin/\xff", argv=[b"x"], env=[1])
    hooks.container_start(task, container_id=5, cwd="/", args=[], env=[], terminal=False)
    hooks.execve(task, binary_path=b"/bin/\xff", argv=[b"x"], env=[b"A=\xfe"])
    (p,) = packets(monitor, 1)
    assert (one(p.fields(), 2), p.fields()[4]) == ("/bin/\ufffd".encode(), ["A=\ufffd".encode()])


def test_broken_task_never_raises(monitor):
    start(
        monitor,
        [
            {"name": "syscall/sysno/0/enter", "context_fields": ["cwd"]},
            {"name": "sentry/task_exit", "context_fields": ["thread_id"]},
        ],
    )
    hooks.syscall_enter(object(), 0, (0,) * 6)
    hooks.task_exit(object(), 0)
    assert monitor.packets == []


def test_one_session_unless_forced(monitor, task):
    first = start(monitor, [{"name": "sentry/task_exit"}])
    config = parse_session(
        {"name": "Default", "points": [{"name": "sentry/clone"}], "sinks": [{"name": "null"}]}
    )
    with pytest.raises(SessionError, match='"Default" already exists'):
        session.create(config, [None])
    session.create(config, [None], force=True)
    assert [s["sinks"] for s in session.describe_all()] == [[{"name": "null", "dropped": 0}]]
    wait_for(monitor.closed.is_set)  # the replaced session's sink was closed
    assert first.sinks[0].dropped == 0
    session.delete("Default")
    with pytest.raises(SessionError, match='"Default" not found'):
        session.delete("Default")
