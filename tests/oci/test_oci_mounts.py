"""Spec mounts onto a VFS: which are made, which are the Sentry's own, which are skipped."""

from __future__ import annotations

import json
import logging

from bootstrap import logs, mounts
from bootstrap.default_spec import default_spec
from bootstrap.spec import parse_spec


class FakeVFS:
    def __init__(self) -> None:
        self.made: list[tuple[bytes, str, dict]] = []
        self.root = type("Loc", (), {"mount": type("M", (), {"readonly": False})()})()

    def mount_path(self, path: bytes, fs: object, root: object, **kw) -> None:
        self.made.append((path, type(fs).__name__, kw))


def spec_with_mounts(tmp_path, extra: list[dict], readonly: bool = False):
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    config = default_spec()
    config["root"]["readonly"] = readonly
    config["mounts"] += extra
    return parse_spec(config, str(tmp_path))


def test_provided_mounts_are_the_sentrys_and_tmpfs_is_made(tmp_path) -> None:
    vfs = FakeVFS()
    spec = spec_with_mounts(
        tmp_path, [{"destination": "/scratch", "type": "tmpfs", "options": ["mode=700", "size=2m"]}]
    )
    assert mounts.apply(vfs, spec) == []
    assert vfs.made == [(b"/scratch", "TmpFilesystem", {"readonly": False, "source": ""})]
    assert vfs.root.mount.readonly is False


def test_bind_mount_of_a_directory_gets_its_own_gofer(tmp_path) -> None:
    (tmp_path / "vol").mkdir()
    vfs = FakeVFS()
    spec = spec_with_mounts(
        tmp_path,
        [
            {
                "destination": "/data",
                "type": "bind",
                "source": str(tmp_path / "vol"),
                "options": ["rbind", "ro"],
            }
        ],
        readonly=True,
    )
    gofers = mounts.apply(vfs, spec)
    try:
        assert [(path, kind, kw["readonly"]) for path, kind, kw in vfs.made] == [
            (b"/data", "GoferFilesystem", True)
        ]
        assert vfs.root.mount.readonly is True
    finally:
        for proc, client in gofers:
            client.shutdown()
            proc.wait()


def test_unsupported_mounts_are_logged_and_skipped(tmp_path, caplog) -> None:
    vfs = FakeVFS()
    spec = spec_with_mounts(
        tmp_path,
        [
            {"destination": "/etc/hosts", "type": "bind", "source": "/etc/hosts", "options": ["rbind"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue"},
        ],
    )
    with caplog.at_level(logging.WARNING):
        assert mounts.apply(vfs, spec) == []
    assert vfs.made == []
    assert "only directories can be bound" in caplog.text and "mqueue" in caplog.text


def test_sizes() -> None:
    assert mounts._size("65536k") == 64 << 20
    assert mounts._size("1g") == 1 << 30
    assert mounts._size("4096") == 4096


def test_sandbox_logs_are_json_lines() -> None:
    record = logging.LogRecord("x", logging.WARNING, "f", 1, "mount %s skipped", ("/x",), None)
    doc = json.loads(logs.JsonFormatter().format(record))
    assert doc["level"] == "warning" and doc["msg"] == "mount /x skipped" and doc["time"].endswith("Z")
