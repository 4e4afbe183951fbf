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

user: a new one is made before the namespaces unshared with it, so that they
are owned by it, and `create` maps it (bootstrap.userns); one named by path is
joined. Every path is checked to be a namespace of its entry's type.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
from collections.abc import Iterator

from bootstrap import code_root, userns
from bootstrap.errors import OCIError
from bootstrap.spec import Spec

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = userns.CLONE_NEWUSER
CLONE_NEWTIME = 0x00000080
NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3): the CLONE_NEW* flag of a namespace fd

_KINDS = {
    CLONE_NEWNS: "mount",
    CLONE_NEWCGROUP: "cgroup",
    CLONE_NEWUTS: "uts",
    CLONE_NEWIPC: "ipc",
    CLONE_NEWUSER: "user",
    CLONE_NEWPID: "pid",
    CLONE_NEWNET: "network",
    CLONE_NEWTIME: "time",
}
_PROC_NAMES = {**_KINDS, CLONE_NEWNS: "mnt", CLONE_NEWNET: "net"}

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


def enter(spec: Spec, network: str, userns_sync: int | None = None) -> None:
    """In the sandbox process: unshare or join its namespaces; nothing without root (rootless).

    As runc orders it: namespaces given by path are joined first, while we still
    hold the host's capabilities (one the host's user namespace owns cannot be
    joined from inside another); then the user namespace is joined or made
    (userns_sync: our end of `create`'s mapping handshake, see bootstrap.userns),
    so that the namespaces unshared last are owned by it.
    """
    if os.geteuid() != 0:
        return
    flags = 0
    joins: list[tuple[int, int, str]] = []  # (fd, flag, path)
    try:
        for kind, flag in _OWN.items():
            ns = spec.linux.namespace(kind)
            if ns is None or (kind == "network" and network == "host"):
                continue
            if ns.path:
                joins.append((open_namespace(ns.path, flag, kind), flag, ns.path))
            else:
                flags |= flag
        user = spec.linux.namespace("user")
        if user is not None and user.path:
            joins.append((open_namespace(user.path, CLONE_NEWUSER, "user"), CLONE_NEWUSER, user.path))
        own_proc = bool(flags & CLONE_NEWNS) and os.getpid() == 1
        if user is not None:
            # Confinement's root is built after boot, when we are unmapped in the user namespace.
            code_root.prepare_staging()
        if user is not None and own_proc:
            # Mounting proc takes CAP_SYS_ADMIN over our pid namespace's owner, the host's user
            # namespace: done now, in a mount namespace that the one unshared below copies (and locks).
            _unshare(CLONE_NEWNS)
            _mount_own_proc()
            own_proc = False
        for fd, flag, path in joins:
            _setns(fd, flag, path)
        if user is not None and user.path:
            userns.check_joined(spec)
        if user is not None and not user.path:
            userns.unshare_and_wait(userns_sync)
    finally:
        for fd, _, _ in joins:
            os.close(fd)
        if userns_sync is not None:
            os.close(userns_sync)
    if flags:
        _unshare(flags)
    if own_proc:
        _mount_own_proc()


def _unshare(flags: int) -> None:
    """unshare(2); a new mount namespace is made private at once, so that nothing we mount leaks out."""
    if _libc.unshare(flags) != 0:
        raise _fail(f"unshare(0x{flags:x})")
    if flags & CLONE_NEWNS and _libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise _fail("making / private in the sandbox mount namespace")


def made_mount_namespace(spec: Spec) -> bool:
    """Whether enter() gave the sandbox process a mount namespace of its own (new, not joined).

    enter() ran as root, though in a user namespace our euid no longer reads 0: code_root is
    available exactly then."""
    ns = spec.linux.namespace("mount")
    return code_root.available() and ns is not None and not ns.path


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
            fd = open_namespace(ns.path, CLONE_NEWPID, "pid")
            try:
                _setns(fd, CLONE_NEWPID, ns.path)
            finally:
                os.close(fd)
        elif _libc.unshare(CLONE_NEWPID) != 0:
            raise _fail("unshare(CLONE_NEWPID)")
        try:
            yield
        finally:
            if _libc.setns(own, CLONE_NEWPID) != 0:
                raise _fail("returning to our pid namespace")
    finally:
        os.close(own)


def open_namespace(path: str, flag: int, kind: str) -> int:
    """An fd for joining `path`, checked to be a namespace of `kind` (setns would say only EINVAL)."""
    where = f"linux.namespaces: {kind} path {path}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise OCIError(f"{where}: {e.strerror}") from None
    try:
        actual = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError:
        os.close(fd)
        raise OCIError(f"{where}: not a namespace file (/proc/PID/ns/{_PROC_NAMES[flag]})") from None
    if actual != flag:
        os.close(fd)
        raise OCIError(f"{where}: is of type {_KINDS.get(actual, hex(actual))}, not {kind}")
    return fd


def _setns(fd: int, flag: int, path: str) -> None:
    if _libc.setns(fd, flag) != 0:
        raise _fail(f"joining {_KINDS[flag]} namespace {path}")
