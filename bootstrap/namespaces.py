"""Host namespaces for the sandbox process, from `--network` and the spec.

The container's own namespaces (pid, uts, ipc, mount as the app sees them)
are the Sentry's; these host ones only shrink what the sandbox process (and
the gofer it starts) can reach on the host: a private mount table, no host
SysV IPC, its own hostname, and, unless `--network=host` passes sockets
through, a network namespace with nothing but a down loopback, or the one
the spec names by path (a pod's, under CRI).
"""

from __future__ import annotations

import ctypes
import os

from bootstrap.errors import OCIError
from bootstrap.spec import Spec

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000

MS_REC = 0x4000
MS_PRIVATE = 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)


def _fail(what: str) -> OCIError:
    return OCIError(f"{what}: {os.strerror(ctypes.get_errno())}")


def enter(spec: Spec, network: str) -> None:
    """Unshare (or join) the sandbox process's host namespaces; nothing without root (rootless)."""
    if os.geteuid() != 0:
        return
    flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS
    netns = spec.linux.namespace("network")
    join_path = netns.path if network != "host" and netns is not None else ""
    if network != "host" and not join_path:
        flags |= CLONE_NEWNET
    if _libc.unshare(flags) != 0:
        raise _fail(f"unshare(0x{flags:x})")
    if _libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise _fail("making / private in the sandbox mount namespace")
    if join_path:
        _join_network(join_path)


def _join_network(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise OCIError(f"linux.namespaces: network path {path}: {e.strerror}") from None
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise _fail(f"joining network namespace {path}")
    finally:
        os.close(fd)
