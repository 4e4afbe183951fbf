"""A new user namespace for the sandbox process, mapped by `create`, as runc does it.

A process cannot map its own user namespace beyond its own id, so the
privileged parent writes the spec's linux.uidMappings and gidMappings to
/proc/<pid>/uid_map and gid_map while the child waits: the child unshares,
asks on a socket, and goes on only when the parent answers that the maps are
written. setgroups is left allowed (runc's choice for a privileged parent),
and the child drops its supplementary groups once mapped.

The sandbox process is the runtime, not the container's root (whose ids the
Sentry emulates), so it keeps its host uid and gid 0; inside the namespace
they are unmapped and show as the overflow id 65534. Its host files (its own
code under root-only directories, /dev/kvm, the state directory) stay
reachable as their owner, while its capabilities count only in the
namespaces the new user namespace owns: none over the host.

Being unmapped, it would lose every capability at exec, so the file
capabilities a root gofer uses are made ambient for the helpers it starts
while booting: its gofers can then chroot, and read, write and chown files
whose owners the spec maps (a rootfs shifted for userns-remap), as the
container's root could under runc. bootstrap.confine's capset empties the
inheritable set, which ends them. For the same reason (files it creates must
be on a filesystem of the host's user namespace) confinement's new root is a
tmpfs made before the namespace is entered (code_root.prepare_staging).
"""

from __future__ import annotations

import ctypes
import os
import socket

from bootstrap import capabilities
from bootstrap.errors import OCIError
from bootstrap.spec import IdMapping, Spec

CLONE_NEWUSER = 0x10000000

_ASK = b"?"  # child -> parent: unshared, map me
_MAPPED = b"!"  # parent -> child: maps written

# The gofer's file capabilities, CAP_SYS_CHROOT for its chroot, and CAP_SETPCAP, with which it
# empties its bounding set when it confines itself (gofer/__main__.py).
GOFER_CAPABILITIES = capabilities.numbers(
    (*capabilities.GOFER_FILE_CAPABILITIES, "CAP_SYS_CHROOT", "CAP_SETPCAP")
)

_libc = ctypes.CDLL(None, use_errno=True)


def wanted(spec: Spec) -> bool:
    """Whether the sandbox process makes a new user namespace (both sides ask this)."""
    ns = spec.linux.namespace("user")
    return os.geteuid() == 0 and ns is not None and not ns.path


def unshare_and_wait(sync_fd: int | None) -> None:
    """In the sandbox process: a new user namespace, returning once `create` has mapped it."""
    if sync_fd is None:
        raise OCIError("linux.namespaces: a new user namespace needs `create` to map it")
    if _libc.unshare(CLONE_NEWUSER) != 0:
        raise OCIError(f"unshare(CLONE_NEWUSER): {os.strerror(ctypes.get_errno())}")
    os.write(sync_fd, _ASK)
    if os.read(sync_fd, 1) != _MAPPED:
        raise OCIError("linux.uidMappings: the user namespace was not mapped")
    os.setgroups([])
    from bootstrap import confine  # here: `create` itself never confines, so never loads pyseccomp

    confine.make_ambient(GOFER_CAPABILITIES)


def check_joined(spec: Spec) -> None:
    """After joining a user namespace by path: mappings the spec gives too must be its own (as
    runc checks), or the container would not be what the spec says."""
    for field, name, wanted_maps in (
        ("linux.uidMappings", "uid_map", spec.linux.uid_mappings),
        ("linux.gidMappings", "gid_map", spec.linux.gid_mappings),
    ):
        have = sorted(_read_map(name))
        want = sorted((m.container_id, m.host_id, m.size) for m in wanted_maps)
        if want and want != have:
            raise OCIError(f"{field}: the joined user namespace maps {_show(have)}, not {_show(want)}")


def _show(ranges: list[tuple[int, int, int]]) -> str:
    return ", ".join(f"{inside}->{outside} x{count}" for inside, outside, count in ranges) or "nothing"


def _read_map(name: str) -> tuple[tuple[int, int, int], ...]:
    with open(f"/proc/self/{name}") as f:
        return tuple((int(a), int(b), int(c)) for a, b, c in (line.split() for line in f))


def own_maps() -> tuple[tuple[tuple[int, int, int], ...], tuple[tuple[int, int, int], ...]]:
    """Our user namespace's uid and gid maps as the host kernel has them (made, joined, or the
    host's own): what the container's /proc/<pid>/uid_map and gid_map show, as under runc."""

    return _read_map("uid_map"), _read_map("gid_map")


class Mapper:
    """`create`'s end of the handshake: a socket pair, one end for the sandbox process."""

    def __init__(self, spec: Spec) -> None:
        self._spec = spec
        self._ours, self._theirs = socket.socketpair()

    @property
    def child_fd(self) -> int:
        return self._theirs.fileno()

    def map_when_asked(self, pid: int) -> None:
        """After spawning `pid`: write its maps when it asks; if it fails before asking, its own
        report says why, so this returns quietly."""
        self._theirs.close()
        if self._ours.recv(1) != _ASK:
            return
        _write_map(pid, "uid_map", self._spec.linux.uid_mappings, "linux.uidMappings")
        _write_map(pid, "gid_map", self._spec.linux.gid_mappings, "linux.gidMappings")
        self._ours.sendall(_MAPPED)

    def close(self) -> None:
        self._ours.close()
        self._theirs.close()


def _write_map(pid: int, name: str, maps: tuple[IdMapping, ...], field: str) -> None:
    """One write, as the kernel requires: every line at once."""
    text = "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps)
    try:
        fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise OCIError(f"{field}: writing /proc/{pid}/{name}: {e.strerror}") from None
