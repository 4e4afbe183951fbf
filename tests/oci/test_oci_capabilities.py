"""Capability names -> numbers, and the spec's sets -> the Sentry's credentials."""

from __future__ import annotations

from bootstrap import capabilities
from bootstrap.default_spec import default_spec
from bootstrap.sentry_backend import _credentials
from bootstrap.spec import parse_spec


def test_numbers_follow_linux() -> None:
    assert capabilities.number("CAP_CHOWN") == 0
    assert capabilities.number("CAP_NET_BIND_SERVICE") == 10
    assert capabilities.number("CAP_SYS_ADMIN") == 21
    assert capabilities.number("CAP_CHECKPOINT_RESTORE") == 40
    assert capabilities.number("CAP_BOGUS") is None
    assert capabilities.mask(["CAP_KILL", "CAP_CHOWN"]) == 0b100001


def test_spec_sets_become_credentials(tmp_path) -> None:
    (tmp_path / "rootfs").mkdir()
    config = default_spec()
    config["process"]["user"] = {"uid": 1000, "gid": 100, "additionalGids": [5]}
    config["process"]["capabilities"]["effective"] = ["CAP_KILL"]
    creds = _credentials(parse_spec(config, str(tmp_path)).process)
    assert (creds.euid, creds.egid, creds.groups) == (1000, 100, (5,))
    assert creds.cap_effective == 1 << 5
    assert (
        creds.cap_bounding
        == creds.cap_permitted
        == capabilities.mask(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"])
    )


def test_no_capabilities_object_keeps_the_users_default(tmp_path) -> None:
    (tmp_path / "rootfs").mkdir()
    config = default_spec()
    del config["process"]["capabilities"]
    creds = _credentials(parse_spec(config, str(tmp_path)).process)
    assert creds.has_cap(21)  # root: everything, as without a spec
