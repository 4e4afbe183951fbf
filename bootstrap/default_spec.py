"""The starter config.json that `kvmsandbox spec` writes (runsc's, §2.9 of facts/gvisor.md).

A user edits it into a bundle; it must itself be a valid bundle config for
`kvmsandbox run` once a rootfs/ sits beside it, which the tests check.
"""

from __future__ import annotations

from typing import Any

_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def default_spec(args: list[str] | None = None, *, cwd: str = "/", netns: str = "") -> dict[str, Any]:
    """A runsc-style default spec running `args` (default `sh`)."""
    network: dict[str, str] = {"type": "network"}
    if netns:
        network["path"] = netns
    return {
        "ociVersion": "1.0.0",
        "process": {
            "user": {"uid": 0, "gid": 0},
            "args": list(args) if args else ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": cwd,
            "capabilities": {
                name: list(_CAPS) for name in ("bounding", "effective", "inheritable", "permitted")
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "kvmsandbox",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, network, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
        },
    }
