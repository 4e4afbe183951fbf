"""The OCI runtime-features document (`kvmsandbox features`).

dockerd runs `<runtime> <runtimeArgs> features` when it loads a runtime and
reads this JSON (runtime-spec features.md); it states what a spec may ask for
and have honoured.
"""

from __future__ import annotations

from typing import Any

from bootstrap.spec import NAMESPACE_TYPES

# Mount options the bundle's mounts may carry (bind, tmpfs, proc, dev, sysfs are served by the Sentry).
MOUNT_OPTIONS = (
    "bind",
    "rbind",
    "ro",
    "rw",
    "nosuid",
    "nodev",
    "noexec",
    "mode",
    "size",
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
    "strictatime",
    "relatime",
    "noatime",
)


def features(capabilities: list[str]) -> dict[str, Any]:
    """The document; `capabilities` are the CAP_* names the host kernel knows."""
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.1.0",
        "hooks": [],
        "mountOptions": list(MOUNT_OPTIONS),
        "linux": {
            "namespaces": [ns for ns in NAMESPACE_TYPES if ns not in ("time",)],
            "capabilities": capabilities,
            "cgroup": {"v1": False, "v2": False, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": False},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"io.github.kvmsandbox.sandbox": "true"},
    }


def host_capabilities() -> list[str]:
    """CAP_* names up to the host's last capability (/proc/sys/kernel/cap_last_cap)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = 40
    return [f"CAP_{name}" for name in _CAP_NAMES[: last + 1]]


_CAP_NAMES = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
]
