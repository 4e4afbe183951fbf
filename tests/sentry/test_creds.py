"""Credentials as an OCI spec sets them, seen from inside the sandbox."""

from __future__ import annotations

from sentry.kernel.creds import CAP_KILL, CAP_SETUID, Credentials


def test_from_oci():
    creds = Credentials.from_oci(
        {"uid": 1000, "gid": 100, "additionalGids": [7, 5]},
        {"effective": ["CAP_KILL", "CAP_NO_SUCH"], "bounding": ["CAP_KILL", "CAP_SETUID"]},
    )
    assert (creds.ruid, creds.euid, creds.rgid, creds.groups) == (1000, 1000, 100, (5, 7))
    assert creds.has_cap(CAP_KILL) and not creds.has_cap(CAP_SETUID)
    assert creds.cap_bounding == 1 << CAP_KILL | 1 << CAP_SETUID


def test_unprivileged_user_in_the_sandbox(sandbox_run):
    creds = Credentials.from_oci({"uid": 1000, "gid": 100, "additionalGids": [5]}, None)
    script = "busybox id -u; busybox id -g; busybox id -G; kill -0 1 && echo self-ok"
    r = sandbox_run(["/bin/busybox", "sh", "-c", script], creds=creds)
    assert (r.code, r.out) == (0, "1000\n100\n100 5\nself-ok\n"), r.err
