"""mount(2) and umount2(2) on the sandbox's one mount tree: bind trees, propagation, detaching.

Propagation follows Linux (Documentation/filesystems/sharedsubtree.rst) far
enough for what containers do: a shared mount's peers receive copies of the
mounts made under it and lose them on unmount, slaves only receive, private
mounts neither; binding an unbindable mount is EINVAL. A bind of a shared
mount joins its peer group, a bind of a slave becomes a slave of its master.
"""

from __future__ import annotations

import errno
from collections.abc import Callable

from sentry.errors import Errno
from sentry.vfs.dentry import Dentry
from sentry.vfs.inode import Filesystem, Inode
from sentry.vfs.mount import Location, Mount, PeerGroup

# Linux's fs.mount-max is 100000; a mount costs this Sentry far more, and binds of shared trees into
# themselves grow geometrically, so past this many a mount fails with ENOSPC as Linux's does at its limit.
MAX_MOUNTS = 10_000


# What a new mount of a type gets (mount(2), spec mounts): see filesystem().
FILESYSTEMS = ("tmpfs", "mqueue", "proc", "sysfs", "devpts")


def filesystem(vfs, kind: str, options: list[str]) -> tuple[Filesystem, Inode]:
    """tmpfs and mqueue are made afresh (size=, mode=, uid=, gid=); proc, sysfs and devpts are the
    sandbox's one instance (one pid namespace, one devpts), as the Sentry mounted it; else ENODEV."""
    from sentry.vfs.fs.tmpfs import DEFAULT_BUDGET, TmpFilesystem

    if kind in ("tmpfs", "mqueue"):
        pairs = dict(o.partition("=")[::2] for o in options if o)
        try:
            budget = size_option(pairs["size"]) if pairs.get("size") else DEFAULT_BUDGET
            mode = int(pairs["mode"], 8) & 0o7777 if pairs.get("mode") else 0o1777
            uid, gid = (int(pairs.get(key) or 0) for key in ("uid", "gid"))
        except ValueError:
            raise Errno(errno.EINVAL) from None
        if not (0 <= uid < 2**32 - 1 and 0 <= gid < 2**32 - 1):
            raise Errno(errno.EINVAL)
        fs = TmpFilesystem(budget)
        fs.name = kind
        root = fs.new_root(mode)
        root.chown(uid, gid)
        return fs, root
    instance = next((m for m in vfs.mounts() if m.fs.name == kind and m.root_path == "/"), None)
    if kind not in FILESYSTEMS or instance is None:
        raise Errno(errno.ENODEV)
    return instance.fs, instance.root.inode


def size_option(text: str) -> int:
    """tmpfs size= values: bytes, or with a k/m/g suffix."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    suffix = text[-1:].lower()
    return int(text[:-1]) * units[suffix] if suffix in units else int(text)


def children(vfs, mnt: Mount) -> list[Mount]:
    return [m for m in vfs.mounts() if m.parent is mnt]


def _children_map(vfs) -> dict[int, list[Mount]]:
    """Every mount's submounts, from one look at the table (by id of the parent)."""
    kids: dict[int, list[Mount]] = {}
    for m in vfs.mounts():
        kids.setdefault(id(m.parent), []).append(m)
    return kids


def _with_descendants(vfs, mnt: Mount) -> list[Mount]:
    kids = _children_map(vfs)
    tree = [mnt]
    for m in tree:
        tree.extend(kids.get(id(m), ()))
    return tree


def _room_for(vfs, count: int) -> None:
    if len(vfs.mounts()) + count > MAX_MOUNTS:
        raise Errno(errno.ENOSPC)


def bind(vfs, src: Location, at: Location, *, recursive: bool, readonly: bool = False) -> Mount:
    """mount --bind (--rbind): src's tree on at, and copies on at's peers and slaves."""
    if src.mount.unbindable:
        raise Errno(errno.EINVAL)
    targets = _receivers(at.mount)
    size = 1 + (len(_subtree(vfs, src.mount, src.dentry)) if recursive else 0)
    _room_for(vfs, size * (1 + len(targets)))
    new = _clone(vfs, src.mount, src.dentry, at, recursive, readonly)
    _join_like(new, src.mount)
    _propagate(vfs, new, at, targets, recursive=True)
    return new


def mount_new(vfs, at: Location, make: Callable[[Location], Mount]) -> Mount:
    """A new filesystem on at (make(at) mounts it there), copied to at's peers and slaves."""
    targets = _receivers(at.mount)
    _room_for(vfs, 1 + len(targets))
    new = make(at)
    _propagate(vfs, new, at, targets, recursive=False)
    return new


def _propagate(vfs, new: Mount, at: Location, targets: list[Mount], *, recursive: bool) -> None:
    """Share `new` when at is shared; copy it (submounts too if recursive) to each target that sees at."""
    _share_under_shared(vfs, new, at)
    for peer in targets:
        if _under(at.dentry, peer.root):
            copy = _clone(vfs, new, new.root, Location(peer, at.dentry), recursive, new.readonly)
            _join_like(copy, new)


def _share_under_shared(vfs, new: Mount, at: Location) -> None:
    """What is mounted on a shared mount is shared too, its copies on the peers its peers (Linux)."""
    if at.mount.shared is not None:
        set_propagation(vfs, new, "shared", recursive=True)


def umount(vfs, mnt: Mount, *, detach: bool) -> None:
    """Unmount mnt (its submounts too when detaching, else EBUSY if it has any), and its copies on the
    peers and slaves of the mount it sits on."""
    if mnt.parent is None:
        raise Errno(errno.EINVAL)
    if not detach and children(vfs, mnt):
        raise Errno(errno.EBUSY)
    for peer in _receivers(mnt.parent):
        copy = vfs.mounted_at(Location(peer, mnt.mountpoint))
        if copy is not None and copy.root is mnt.root and (detach or not children(vfs, copy)):
            _drop_tree(vfs, copy)
    _drop_tree(vfs, mnt)


def set_propagation(vfs, mnt: Mount, kind: str, *, recursive: bool) -> None:
    """MS_SHARED, MS_SLAVE, MS_PRIVATE or MS_UNBINDABLE on mnt (and its submounts when recursive)."""
    for m in _with_descendants(vfs, mnt) if recursive else [mnt]:
        _set_one(m, kind)


def _set_one(mnt: Mount, kind: str) -> None:
    if kind == "shared":
        mnt.unbindable = False
        if mnt.shared is None:
            mnt.shared = PeerGroup()
            mnt.shared.members.append(mnt)
        return
    group = mnt.shared
    if group is not None:
        group.members.remove(mnt)
        mnt.shared = None
    if kind == "slave":
        # A shared mount becomes a slave of its old peers; a private one stays private.
        if group is not None and group.members:
            _leave_master(mnt)
            mnt.master = group
            group.slaves.append(mnt)
        return
    _leave_master(mnt)
    mnt.unbindable = kind == "unbindable"


def _leave_master(mnt: Mount) -> None:
    if mnt.master is not None:
        mnt.master.slaves.remove(mnt)
        mnt.master = None


def _join_like(new: Mount, like: Mount) -> None:
    """A bind's propagation: a peer of a shared source, a slave of a slave's master, else private."""
    if like.shared is not None:
        new.shared = like.shared
        like.shared.members.append(new)
    elif like.master is not None:
        new.master = like.master
        like.master.slaves.append(new)


def _receivers(mnt: Mount) -> list[Mount]:
    """The mounts that receive what happens under mnt: its peers and their slaves (not itself)."""
    if mnt.shared is None:
        return []
    return [m for m in mnt.shared.members if m is not mnt] + list(mnt.shared.slaves)


def _clone(vfs, src: Mount, root: Dentry, at: Location, recursive: bool, readonly: bool) -> Mount:
    """A copy of src seen from root, on at; with recursive, src's submounts inside root are copied too.
    The tree to copy is listed before anything is attached, so a bind into itself copies it once."""
    plan = _subtree(vfs, src, root) if recursive else []
    new = vfs.bind(at, Location(src, root), readonly=readonly)
    copies = {id(src): new}
    for child, parent in plan:
        copy = vfs.bind(Location(copies[id(parent)], child.mountpoint), Location(child, child.root),
                        readonly=child.readonly)  # fmt: skip
        _join_like(copy, child)
        copies[id(child)] = copy
    return new


def _subtree(vfs, src: Mount, root: Dentry) -> list[tuple[Mount, Mount]]:
    """(mount, its parent) for every bindable mount below src's root dentry, parents first."""
    kids = _children_map(vfs)
    plan: list[tuple[Mount, Mount]] = []
    queue = [src]
    for mnt in queue:
        for child in kids.get(id(mnt), ()):
            if child.unbindable or (mnt is src and not _under(child.mountpoint, root)):
                continue
            plan.append((child, mnt))
            queue.append(child)
    return plan


def _under(dentry: Dentry, root: Dentry) -> bool:
    """Whether dentry is root or below it (a peer may be a bind of a subdirectory only)."""
    d: Dentry | None = dentry
    while d is not None:
        if d is root:
            return True
        d = d.parent
    return False


def _drop_tree(vfs, mnt: Mount) -> None:
    for m in reversed(_with_descendants(vfs, mnt)):
        _set_one(m, "private")
        vfs.detach(m)
