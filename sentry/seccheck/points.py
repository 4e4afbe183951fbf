"""The trace point catalogue as data: names, message types, optional and context fields.

Session files name points and fields from here (config.py validates against
it) and `trace metadata` prints it in runsc's format. Names, fields and
message types follow runsc so a session file written for runsc works here.
"""

from __future__ import annotations

import dataclasses

from sentry.seccheck.proto import common_pb2 as pb

# Raw syscall points exist for every number of the Sentry's syscall table
# (sentry/syscalls/table.py MAX_NR; a test keeps the two equal).
RAW_SYSNO_MAX = 450

CONTEXT_FIELDS: tuple[str, ...] = (
    "time",
    "thread_id",
    "task_start_time",
    "group_id",
    "thread_group_start_time",
    "container_id",
    "credentials",
    "cwd",
    "process_name",
    "parent_thread_group_id",
)
# Context fields runsc accepts for a point but never sends: a parent is notified
# after the exiting process released its fs context, so there is no cwd.
UNSENT_CONTEXT_FIELDS: dict[str, frozenset[str]] = {"sentry/exit_notify_parent": frozenset({"cwd"})}

FD_PATH = ("fd_path",)


@dataclasses.dataclass(frozen=True)
class Point:
    """One trace point. `sysno`/`exit` are set for syscall points only."""

    name: str
    message_type: int
    optional_fields: tuple[str, ...] = ()
    context_fields: tuple[str, ...] = CONTEXT_FIELDS
    sysno: int | None = None
    exit: bool = False


# Schematized syscalls: name -> (amd64 number, message type, optional fields).
SCHEMATIZED: dict[str, tuple[int, int, tuple[str, ...]]] = {
    "read": (0, pb.MESSAGE_SYSCALL_READ, FD_PATH),
    "write": (1, pb.MESSAGE_SYSCALL_WRITE, FD_PATH),
    "open": (2, pb.MESSAGE_SYSCALL_OPEN, ()),
    "close": (3, pb.MESSAGE_SYSCALL_CLOSE, FD_PATH),
    "mmap": (9, pb.MESSAGE_SYSCALL_MMAP, FD_PATH),
    "pread64": (17, pb.MESSAGE_SYSCALL_READ, FD_PATH),
    "pwrite64": (18, pb.MESSAGE_SYSCALL_WRITE, FD_PATH),
    "readv": (19, pb.MESSAGE_SYSCALL_READ, FD_PATH),
    "writev": (20, pb.MESSAGE_SYSCALL_WRITE, FD_PATH),
    "pipe": (22, pb.MESSAGE_SYSCALL_PIPE, ()),
    "dup": (32, pb.MESSAGE_SYSCALL_DUP, FD_PATH),
    "dup2": (33, pb.MESSAGE_SYSCALL_DUP, FD_PATH),
    "socket": (41, pb.MESSAGE_SYSCALL_SOCKET, ()),
    "connect": (42, pb.MESSAGE_SYSCALL_CONNECT, FD_PATH),
    "accept": (43, pb.MESSAGE_SYSCALL_ACCEPT, FD_PATH),
    "bind": (49, pb.MESSAGE_SYSCALL_BIND, FD_PATH),
    "listen": (50, pb.MESSAGE_SYSCALL_LISTEN, FD_PATH),
    "socketpair": (53, pb.MESSAGE_SYSCALL_SOCKETPAIR, ()),
    "clone": (56, pb.MESSAGE_SYSCALL_CLONE, ()),
    "fork": (57, pb.MESSAGE_SYSCALL_FORK, ()),
    "vfork": (58, pb.MESSAGE_SYSCALL_FORK, ()),
    "execve": (59, pb.MESSAGE_SYSCALL_EXECVE, ("envv",)),
    "fcntl": (72, pb.MESSAGE_SYSCALL_FCNTL, FD_PATH),
    "chdir": (80, pb.MESSAGE_SYSCALL_CHDIR, ()),
    "fchdir": (81, pb.MESSAGE_SYSCALL_CHDIR, FD_PATH),
    "creat": (85, pb.MESSAGE_SYSCALL_OPEN, FD_PATH),
    "ptrace": (101, pb.MESSAGE_SYSCALL_PTRACE, ()),
    "setuid": (105, pb.MESSAGE_SYSCALL_SETID, ()),
    "setgid": (106, pb.MESSAGE_SYSCALL_SETID, ()),
    "setsid": (112, pb.MESSAGE_SYSCALL_SETID, ()),
    "setresuid": (117, pb.MESSAGE_SYSCALL_SETRESID, ()),
    "setresgid": (119, pb.MESSAGE_SYSCALL_SETRESID, ()),
    "chroot": (161, pb.MESSAGE_SYSCALL_CHROOT, ()),
    "inotify_init": (253, pb.MESSAGE_SYSCALL_INOTIFY_INIT, ()),
    "inotify_add_watch": (254, pb.MESSAGE_SYSCALL_INOTIFY_ADD_WATCH, FD_PATH),
    "inotify_rm_watch": (255, pb.MESSAGE_SYSCALL_INOTIFY_RM_WATCH, FD_PATH),
    "openat": (257, pb.MESSAGE_SYSCALL_OPEN, FD_PATH),
    "signalfd": (282, pb.MESSAGE_SYSCALL_SIGNALFD, FD_PATH),
    "timerfd_create": (283, pb.MESSAGE_SYSCALL_TIMERFD_CREATE, ()),
    "eventfd": (284, pb.MESSAGE_SYSCALL_EVENTFD, ()),
    "timerfd_settime": (286, pb.MESSAGE_SYSCALL_TIMERFD_SETTIME, FD_PATH),
    "timerfd_gettime": (287, pb.MESSAGE_SYSCALL_TIMERFD_GETTIME, FD_PATH),
    "accept4": (288, pb.MESSAGE_SYSCALL_ACCEPT, FD_PATH),
    "signalfd4": (289, pb.MESSAGE_SYSCALL_SIGNALFD, FD_PATH),
    "eventfd2": (290, pb.MESSAGE_SYSCALL_EVENTFD, ()),
    "dup3": (292, pb.MESSAGE_SYSCALL_DUP, FD_PATH),
    "pipe2": (293, pb.MESSAGE_SYSCALL_PIPE, ()),
    "inotify_init1": (294, pb.MESSAGE_SYSCALL_INOTIFY_INIT, ()),
    "preadv": (295, pb.MESSAGE_SYSCALL_READ, FD_PATH),
    "pwritev": (296, pb.MESSAGE_SYSCALL_WRITE, FD_PATH),
    "prlimit64": (302, pb.MESSAGE_SYSCALL_PRLIMIT64, ()),
    "execveat": (322, pb.MESSAGE_SYSCALL_EXECVE, ("fd_path", "envv")),
    "preadv2": (327, pb.MESSAGE_SYSCALL_READ, FD_PATH),
    "pwritev2": (328, pb.MESSAGE_SYSCALL_WRITE, FD_PATH),
}

CONTAINER_START = "container/start"
SENTRY_CLONE = "sentry/clone"
SENTRY_EXECVE = "sentry/execve"
SENTRY_EXIT_NOTIFY_PARENT = "sentry/exit_notify_parent"
SENTRY_TASK_EXIT = "sentry/task_exit"


def _catalogue() -> dict[str, Point]:
    points = [
        Point(CONTAINER_START, pb.MESSAGE_CONTAINER_START, ("env",)),
        Point(SENTRY_CLONE, pb.MESSAGE_SENTRY_CLONE),
        Point(SENTRY_EXECVE, pb.MESSAGE_SENTRY_EXEC, ("binary_info", "binary_sha256")),
        Point(SENTRY_EXIT_NOTIFY_PARENT, pb.MESSAGE_SENTRY_EXIT_NOTIFY_PARENT),
        Point(SENTRY_TASK_EXIT, pb.MESSAGE_SENTRY_TASK_EXIT),
    ]
    for phase, is_exit in (("enter", False), ("exit", True)):
        for name, (sysno, message_type, optional) in SCHEMATIZED.items():
            points.append(Point(f"syscall/{name}/{phase}", message_type, optional, sysno=sysno, exit=is_exit))
        for sysno in range(RAW_SYSNO_MAX + 1):
            points.append(
                Point(f"syscall/sysno/{sysno}/{phase}", pb.MESSAGE_SYSCALL_RAW, sysno=sysno, exit=is_exit)
            )
    return {p.name: p for p in sorted(points, key=lambda p: p.name)}


POINTS: dict[str, Point] = _catalogue()
SINK_NAMES: tuple[str, ...] = ("null", "remote")


def metadata_text() -> str:
    """What `trace metadata` prints: runsc's POINTS/SINKS listing."""
    lines = [f"POINTS ({len(POINTS)})"]
    for p in POINTS.values():
        lines.append(
            f"Name: {p.name}, optional fields: [{'|'.join(p.optional_fields)}], "
            f"context fields: [{'|'.join(p.context_fields)}]"
        )
    lines.append("")
    lines.append(f"SINKS ({len(SINK_NAMES)})")
    lines.extend(f"Name: {name}" for name in SINK_NAMES)
    return "\n".join(lines) + "\n"
