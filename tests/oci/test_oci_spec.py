"""config.json validation: each malformed case names its field; valid bundles parse."""

from __future__ import annotations

import json
import os

import pytest

from bootstrap.default_spec import default_spec
from bootstrap.errors import SpecError
from bootstrap.spec import load_bundle


def bundle(tmp_path, config: object = None, *, rootfs: bool = True, raw: str | None = None) -> str:
    if rootfs:
        (tmp_path / "rootfs").mkdir(exist_ok=True)
    if raw is not None:
        (tmp_path / "config.json").write_text(raw)
    elif config is not None:
        (tmp_path / "config.json").write_text(json.dumps(config))
    return str(tmp_path)


def spec_with(**changes: object) -> dict:
    """The default spec with dotted-path fields replaced (a None value deletes the field)."""
    spec = default_spec(["echo", "hi"])
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = spec
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is None:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return spec


def field_error(tmp_path, config: object = None, **kw: object) -> str:
    with pytest.raises(SpecError) as info:
        load_bundle(bundle(tmp_path, config, **kw))
    return info.value.field


def test_default_spec_is_a_valid_bundle(tmp_path) -> None:
    spec = load_bundle(bundle(tmp_path, default_spec()))
    assert spec.process.args == ("sh",)
    assert spec.process.user.uid == 0 and spec.process.cwd == "/"
    assert spec.root.path == os.path.join(str(tmp_path), "rootfs") and spec.root.readonly
    assert [ns.type for ns in spec.linux.namespaces] == ["pid", "network", "ipc", "uts", "mount"]
    assert [m.destination for m in spec.mounts] == ["/proc", "/dev", "/sys"]
    assert spec.process.rlimits[0].type == "RLIMIT_NOFILE"
    assert "CAP_KILL" in spec.process.capabilities.bounding


def test_full_spec_fields(tmp_path) -> None:
    config = spec_with(
        hostname="box",
        process__terminal=True,
        process__consoleSize={"height": 24, "width": 80},
        process__user={"uid": 1000, "gid": 1000, "additionalGids": [5, 6], "umask": 0o22},
        process__noNewPrivileges=True,
        annotations={"a": "b"},
    )
    config["linux"].update(
        namespaces=[{"type": "user"}, {"type": "pid"}],
        uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}],
        gidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}],
        resources={"memory": {"limit": 1 << 20}},
        seccomp={"defaultAction": "SCMP_ACT_ALLOW"},
        cgroupsPath="/ns/id",
    )
    config["mounts"].append(
        {"destination": "data", "type": "bind", "source": "/tmp", "options": ["rbind", "ro"]}
    )
    spec = load_bundle(bundle(tmp_path, config))
    assert spec.hostname == "box" and spec.annotations == {"a": "b"}
    assert spec.process.terminal and spec.process.console_size == (24, 80)
    assert spec.process.user.additional_gids == (5, 6) and spec.process.user.umask == 0o22
    assert spec.linux.namespace("user") is not None and spec.linux.uid_mappings[0].host_id == 1000
    assert spec.linux.resources == {"memory": {"limit": 1 << 20}}
    assert spec.mounts[-1].destination == "/data" and spec.mounts[-1].options == ("rbind", "ro")


# The acceptance's malformed bundles.


def test_missing_config(tmp_path) -> None:
    assert field_error(tmp_path) == "config.json"


def test_bad_json(tmp_path) -> None:
    with pytest.raises(SpecError, match="invalid JSON"):
        load_bundle(bundle(tmp_path, raw='{"ociVersion": '))


def test_missing_root_dir(tmp_path) -> None:
    with pytest.raises(SpecError, match=r"root\.path: .*rootfs is not a directory"):
        load_bundle(bundle(tmp_path, default_spec(), rootfs=False))


@pytest.mark.parametrize("uid", [-1, "0", 1.5, True, None, 2**32 - 1])
def test_bad_uid(tmp_path, uid: object) -> None:
    config = spec_with(process__user__uid=uid) if uid is not None else spec_with(process__user__uid=None)
    assert field_error(tmp_path, config) == "process.user.uid"


def test_bad_uid_message(tmp_path) -> None:
    with pytest.raises(SpecError, match=r"^process\.user\.uid: must be a non-negative integer"):
        load_bundle(bundle(tmp_path, spec_with(process__user__uid=-5)))


def test_unknown_namespace(tmp_path) -> None:
    config = default_spec()
    config["linux"]["namespaces"].append({"type": "bogus"})
    with pytest.raises(SpecError, match=r"^linux\.namespaces\[5\]\.type: unknown namespace 'bogus'"):
        load_bundle(bundle(tmp_path, config))


# Other malformed fields, each named.


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ociVersion": None}, "ociVersion"),
        ({"ociVersion": "invalid"}, "ociVersion"),
        ({"ociVersion": "2.0.0"}, "ociVersion"),
        ({"process": None}, "process"),
        ({"root": None}, "root"),
        ({"root": "rootfs"}, "root"),
        ({"process__args": []}, "process.args"),
        ({"process__args": "sh"}, "process.args"),
        ({"process__args": ["sh", 1]}, "process.args[1]"),
        ({"process__cwd": "relative"}, "process.cwd"),
        ({"process__env": ["NOEQUALS"]}, "process.env[0]"),
        ({"process__user__gid": "root"}, "process.user.gid"),
        ({"process__user__additionalGids": [1, -2]}, "process.user.additionalGids[1]"),
        ({"process__terminal": "yes"}, "process.terminal"),
        ({"process__rlimits": [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]}, "process.rlimits[0].type"),
        ({"process__rlimits": [{"type": "RLIMIT_NOFILE", "soft": 2, "hard": 1}]}, "process.rlimits[0].soft"),
        (
            {"process__rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2**21}]},
            "process.rlimits[0].hard",
        ),
        ({"process__capabilities__bounding": ["KILL"]}, "process.capabilities.bounding[0]"),
        ({"process__capabilities__effective": ["CAP_BOGUS"]}, "process.capabilities.effective[0]"),
        ({"mounts": [{"type": "tmpfs"}]}, "mounts[0].destination"),
        ({"mounts": [{"destination": "/x", "options": "ro"}]}, "mounts[0].options"),
        ({"hostname": 7}, "hostname"),
        ({"annotations": {"k": 1}}, "annotations.k"),
        ({"linux__namespaces": [{"type": "pid"}, {"type": "pid"}]}, "linux.namespaces[1].type"),
        ({"linux__uidMappings": [{"containerID": 0, "hostID": 0, "size": 1}]}, "linux.uidMappings"),
        ({"linux__resources": []}, "linux.resources"),
        ({"hooks": {"prestart": [{"path": "relative"}]}}, "hooks.prestart[0].path"),
        ({"hooks": {"prestart": [{"path": "/x", "timeout": 0}]}}, "hooks.prestart[0].timeout"),
        ({"hooks": {"preboot": []}}, "hooks.preboot"),
    ],
)
def test_malformed_fields_are_named(tmp_path, changes: dict, field: str) -> None:
    assert field_error(tmp_path, spec_with(**changes)) == field


@pytest.mark.parametrize("version", ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.0-rc.1"])
def test_versions_docker_and_containerd_send(tmp_path, version: str) -> None:
    assert load_bundle(bundle(tmp_path, spec_with(ociVersion=version))).oci_version == version


def test_top_level_not_an_object(tmp_path) -> None:
    assert field_error(tmp_path, raw="[1, 2]") == "config.json"
