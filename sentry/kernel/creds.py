"""Credentials of a task: uids, gids, supplementary groups and capabilities.

Immutable: set*id replaces a task's Credentials object, so a handler holding
one never sees it change underneath it.
"""

from __future__ import annotations

import dataclasses

CAP_CHOWN = 0
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
CAP_FOWNER = 3
CAP_FSETID = 4
CAP_KILL = 5
CAP_SETGID = 6
CAP_SETUID = 7
CAP_SETPCAP = 8
CAP_SYS_ADMIN = 21
CAP_SYS_NICE = 23
CAP_SYS_RESOURCE = 24
CAP_SYS_TIME = 25
CAP_SYSLOG = 34
CAP_LAST_CAP = 40
ALL_CAPS = (1 << (CAP_LAST_CAP + 1)) - 1
# Capability names in number order (linux/capability.h), as OCI specs spell them.
CAP_NAMES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)  # fmt: skip


def cap_mask(names: list[str] | None) -> int:
    """A capability bitmask from OCI names ("CAP_KILL"); unknown names are ignored, as runc does."""
    mask = 0
    for name in names or ():
        short = name.upper().removeprefix("CAP_")
        if short in CAP_NAMES:
            mask |= 1 << CAP_NAMES.index(short)
    return mask


@dataclasses.dataclass(frozen=True)
class Credentials:
    ruid: int = 0
    euid: int = 0
    suid: int = 0
    fsuid: int = 0
    rgid: int = 0
    egid: int = 0
    sgid: int = 0
    fsgid: int = 0
    groups: tuple[int, ...] = ()
    cap_effective: int = ALL_CAPS
    cap_permitted: int = ALL_CAPS
    cap_inheritable: int = 0
    cap_bounding: int = ALL_CAPS
    cap_ambient: int = 0
    keep_caps: bool = False  # SECBIT_KEEP_CAPS (prctl PR_SET_KEEPCAPS): a uid change keeps the permitted set

    @classmethod
    def for_user(
        cls, uid: int, gid: int, groups: tuple[int, ...] = (), caps: int | None = None
    ) -> Credentials:
        """Credentials as an OCI process spec sets them (caps default: all for root, none otherwise)."""
        if caps is None:
            caps = ALL_CAPS if uid == 0 else 0
        return cls(uid, uid, uid, uid, gid, gid, gid, gid, tuple(groups), caps, caps, 0, ALL_CAPS)

    @classmethod
    def from_oci(cls, user: dict, capabilities: dict | None) -> Credentials:
        """From an OCI spec's process.user ({uid, gid, additionalGids}) and process.capabilities."""
        uid, gid = int(user.get("uid", 0)), int(user.get("gid", 0))
        groups = tuple(sorted({int(g) for g in user.get("additionalGids") or ()}))
        caps = capabilities or {}
        return cls(
            uid, uid, uid, uid, gid, gid, gid, gid, groups,
            cap_effective=cap_mask(caps.get("effective")),
            cap_permitted=cap_mask(caps.get("permitted")),
            cap_inheritable=cap_mask(caps.get("inheritable")),
            cap_bounding=cap_mask(caps.get("bounding")),
        ).with_ambient(cap_mask(caps.get("ambient")))  # fmt: skip

    def with_ambient(self, ambient: int) -> Credentials:
        """Ambient set `ambient`, less what is not both permitted and inheritable (Linux's invariant;
        runc likewise drops such capabilities rather than failing)."""
        return self.replace(cap_ambient=ambient & self.cap_permitted & self.cap_inheritable)

    def after_exec(self, no_new_privs: bool = False) -> Credentials:
        """The capabilities an execve of a program without file capabilities or set-id bits leaves
        (security/commoncap.c): root gets its bounding and inheritable sets, anyone else only the
        ambient set; under no_new_privs nothing beyond the old permitted set."""
        root = 0 in (self.ruid, self.euid)
        permitted = (self.cap_bounding | self.cap_inheritable) & ALL_CAPS if root else 0
        if no_new_privs:
            permitted &= self.cap_permitted
        permitted |= self.cap_ambient
        effective = permitted if self.euid == 0 else self.cap_ambient
        return self.replace(
            suid=self.euid, fsuid=self.euid, sgid=self.egid, fsgid=self.egid,
            cap_permitted=permitted, cap_effective=effective, keep_caps=False,
        )  # fmt: skip

    def has_cap(self, cap: int) -> bool:
        return bool(self.cap_effective >> cap & 1)

    def replace(self, **changes: object) -> Credentials:
        return dataclasses.replace(self, **changes)

    def in_group(self, gid: int) -> bool:
        return gid == self.fsgid or gid in self.groups
