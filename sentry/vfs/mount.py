"""Mounts and locations (a dentry as seen through one mount)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from sentry.vfs.dentry import Dentry
from sentry.vfs.inode import Filesystem

_group_ids = itertools.count(1)
_mount_ids = itertools.count(1)


class PeerGroup:
    """Shared mounts that see each other's mounts and unmounts (MS_SHARED); slaves only receive them."""

    def __init__(self) -> None:
        self.id = next(_group_ids)
        self.members: list[Mount] = []
        self.slaves: list[Mount] = []


@dataclass(eq=False)
class Mount:
    """One mount; flags, data and root_path are what /proc/*/mountinfo shows of it.

    flags: per-mount options besides ro/rw (nosuid, nodev, noexec, an atime mode);
    data: the filesystem's own options (size=..., mode=...); root_path: the mount's
    root within its filesystem ("/" unless a bind mount of a subtree or file).
    """

    fs: Filesystem
    root: Dentry
    parent: Mount | None = None
    mountpoint: Dentry | None = None
    readonly: bool = False
    source: str = "none"
    flags: tuple[str, ...] = ()
    data: str = ""
    root_path: str = "/"
    # Propagation: the peer group when shared, the master's group when a slave.
    shared: PeerGroup | None = field(default=None, repr=False)
    master: PeerGroup | None = field(default=None, repr=False)
    unbindable: bool = False
    # mountinfo's first field: stable for the mount's life, never reused (as Linux's).
    mount_id: int = field(default_factory=lambda: next(_mount_ids), repr=False)


@dataclass(frozen=True)
class Location:
    """gVisor's VirtualDentry: the same dentry can be reached through different mounts."""

    mount: Mount
    dentry: Dentry

    @property
    def inode(self):
        return self.dentry.inode


def path_of(loc: Location, root: Location | None = None) -> bytes:
    """The path a task rooted at root would use for loc (getcwd, /proc/*/fd); None: the VFS root."""
    parts: list[bytes] = []
    while loc != root:
        if loc.dentry is loc.mount.root:
            if loc.mount.parent is None:
                break
            loc = Location(loc.mount.parent, loc.mount.mountpoint)
            continue
        if loc.dentry.parent is None:
            return loc.dentry.name
        parts.append(loc.dentry.name)
        loc = Location(loc.mount, loc.dentry.parent)
    return b"/" + b"/".join(reversed(parts))


def is_under(loc: Location, root: Location) -> bool:
    """Whether loc is root or below it: a chrooted task's mountinfo lists only such mounts (as Linux)."""
    while loc != root:
        if loc.dentry is loc.mount.root:
            if loc.mount.parent is None:
                return False
            loc = Location(loc.mount.parent, loc.mount.mountpoint)
        elif loc.dentry.parent is None:
            return False
        else:
            loc = Location(loc.mount, loc.dentry.parent)
    return True
