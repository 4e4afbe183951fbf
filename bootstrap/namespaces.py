"""Host namespaces for the sandbox process, from the spec and `--network`.

The container's own namespaces (pid, uts, ipc, mount as the app sees them)
are the Sentry's; these host ones only shrink what the sandbox process (and
the gofer it starts) can reach on the host: a private mount table, no host
SysV IPC, its own hostname, and — unless `--network=host` passes sockets
through — a network namespace with nothing but a down loopback.
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

_SPEC_FLAGS = {"mount": CLONE_NEWNS, "uts": CLONE_NEWUTS, "ipc": CLONE_NEWIPC}

MS_REC = 0x4000
MS_PRIVATE = 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)


def unshare_flags(spec: Spec, network: str) -> int:
    """CLONE_NEW* flags for the sandbox process (none without root: rootless mode)."""
    if os.geteuid() != 0:
        return 0
    flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS
    for kind, flag in _SPEC_FLAGS.items():
        if spec.linux.has_namespace(kind):
            flags |= flag
    if network != "host":
        flags |= CLONE_NEWNET
    return flags


def enter(flags: int) -> None:
    """unshare(2) the namespaces; a new mount namespace stops propagating mounts to the host."""
    if not flags:
        return
    if _libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OCIError(f"unshare(0x{flags:x}): {os.strerror(err)}")
    if flags & CLONE_NEWNS and _libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        err = ctypes.get_errno()
        raise OCIError(f"making / private in the sandbox mount namespace: {os.strerror(err)}")
