"""The OCI runtime-features document (`kvmsandbox features`).

dockerd runs `<runtime> <runtimeArgs> features` when it loads a runtime and
reads this JSON (runtime-spec features.md); it states what a spec may ask for
and have honoured.
"""

from __future__ import annotations

from typing import Any

from bootstrap.hooks import HOOK_KINDS, IN_CONTAINER
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
        "hooks": [kind for kind in HOOK_KINDS if kind not in IN_CONTAINER],
        "mountOptions": list(MOUNT_OPTIONS),
        "linux": {
            "namespaces": [ns for ns in NAMESPACE_TYPES if ns not in ("time",)],
            "capabilities": capabilities,
            # bootstrap/cgroups.py; --systemd-cgroup paths are written through cgroupfs, no systemd unit.
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": False},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"io.github.kvmsandbox.sandbox": "true"},
    }
