"""Host namespaces of the sandbox process, as the spec's linux.namespaces ask.

What the app sees (its pids, hostname, mounts, IPC) is the Sentry's own
emulation whatever happens here; these are the host namespaces the sandbox
process, its gofer and platform helpers live in, so that host tools and the
OCI validation suite find what the spec asked for: a namespace listed without
a path is new, one with a path is joined, one not listed is the caller's.
The network namespace also follows `--network`: `host` keeps the caller's
(host sockets are passed through), anything else takes the spec's.

pid is special: unshare(CLONE_NEWPID) applies to children, so `create`
spawns the sandbox process inside `pid_namespace_for_children()`; the sandbox
process is then pid 1 of its namespace, and when it dies (even by kill -9)
the kernel kills everything left in it, the gofer included. With its own
mount namespace it also mounts its own /proc, so that no host pid can be
named from it: it cannot signal or trace host processes even as uid 0.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator

from bootstrap.errors import OCIError
from bootstrap.spec import Spec

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# Unshared (or joined) by the sandbox process itself, in this order.
_OWN = {
    "mount": CLONE_NEWNS,
    "ipc": CLONE_NEWIPC,
    "uts": CLONE_NEWUTS,
    "network": CLONE_NEWNET,
    "cgroup": CLONE_NEWCGROUP,
}

MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)


def _fail(what: str) -> OCIError:
    return OCIError(f"{what}: {os.strerror(ctypes.get_errno())}")


def enter(spec: Spec, network: str) -> None:
    """In the sandbox process: unshare or join its namespaces; nothing without root (rootless)."""
    if os.geteuid() != 0:
        return
    flags = 0
    joins = []
    for kind, flag in _OWN.items():
        ns = spec.linux.namespace(kind)
        if ns is None or (kind == "network" and network == "host"):
            continue
        if ns.path:
            joins.append((ns.path, flag, kind))
        else:
            flags |= flag
    if flags and _libc.unshare(flags) != 0:
        raise _fail(f"unshare(0x{flags:x})")
    if flags & CLONE_NEWNS and _libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise _fail("making / private in the sandbox mount namespace")
    for path, flag, kind in joins:
        _join(path, flag, kind)
    if flags & CLONE_NEWNS and os.getpid() == 1:
        _mount_own_proc()


def _mount_own_proc() -> None:
    """Our pid namespace's /proc: host processes are neither listed nor reachable through
    /proc/<pid> fds (pidfd_send_signal), only this sandbox's."""
    if _libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None) != 0:
        raise _fail("mounting the sandbox's /proc")


@contextlib.contextmanager
def pid_namespace_for_children(spec: Spec) -> Iterator[None]:
    """In `create`: processes started inside the block are in the spec's pid namespace."""
    ns = spec.linux.namespace("pid")
    if ns is None or os.geteuid() != 0:
        yield
        return
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if ns.path:
            _join(ns.path, CLONE_NEWPID, "pid")
        elif _libc.unshare(CLONE_NEWPID) != 0:
            raise _fail("unshare(CLONE_NEWPID)")
        try:
            yield
        finally:
            if _libc.setns(own, CLONE_NEWPID) != 0:
                raise _fail("returning to our pid namespace")
    finally:
        os.close(own)


def _join(path: str, flag: int, kind: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise OCIError(f"linux.namespaces: {kind} path {path}: {e.strerror}") from None
    try:
        if _libc.setns(fd, flag) != 0:
            raise _fail(f"joining {kind} namespace {path}")
    finally:
        os.close(fd)
