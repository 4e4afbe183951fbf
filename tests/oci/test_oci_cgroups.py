"""linux.cgroupsPath and linux.resources: the whole sandbox in the container's host cgroup.

Real `kvmsandbox` runs of a busybox bundle on every usable platform; the
cgroup is read back from the host's cgroupfs (v1 here: /sys/fs/cgroup/<name>).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

from bootstrap import cgroups, resources
from bootstrap.default_spec import default_spec

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "net"))
from sandbox_fixtures import platform_name  # noqa: E402

__all__ = ["platform_name"]
BUSYBOX = "/bin/busybox"
pytestmark = [
    pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="needs the host's static busybox"),
    pytest.mark.skipif(os.geteuid() != 0, reason="making cgroups needs root"),
]
MiB = 1 << 20


def _dir(controller: str, inner: str) -> str:
    """The cgroup's directory for `controller` (v1), or the unified one (v2)."""
    hosts = cgroups.hierarchies()
    point = hosts.mounts["" if hosts.version == 2 else controller][0]
    return os.path.join(point, inner.lstrip("/"))


def _read(controller: str, inner: str, name: str) -> str:
    with open(os.path.join(_dir(controller, inner), name)) as f:
        return f.read().strip()


def _bundle(tmp_path, script: str, resources: dict | None, cgroups_path: str | None) -> str:
    bundle = tmp_path / "bundle"
    (bundle / "rootfs" / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy(BUSYBOX, bundle / "rootfs" / "bin" / "busybox")
    config = default_spec(["/bin/busybox", "sh", "-c", script])
    config["root"]["readonly"] = False
    config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    if resources is not None:
        config["linux"]["resources"] = resources
    if cgroups_path is not None:
        config["linux"]["cgroupsPath"] = cgroups_path
    (bundle / "config.json").write_text(json.dumps(config))
    return str(bundle)


def _cli(platform: str, tmp_path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "cli.main", "--root", str(tmp_path / "state"), f"--platform={platform}"]
    env = dict(os.environ, PYTHONPATH=REPO)
    out = open(tmp_path / "cli.out", "w+")  # noqa: SIM115 (a detached sandbox keeps it open)
    with out:
        r = subprocess.run(
            [*cmd, *args], env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=120
        )
        out.seek(0)
        return subprocess.CompletedProcess(r.args, r.returncode, out.read(), "")


@pytest.fixture
def inner() -> str:
    """A fresh absolute cgroupsPath, removed afterwards whatever the test left."""
    path = f"/kvmsandbox-test/{uuid.uuid4().hex[:12]}"
    yield path
    for controller in ("memory", "pids", "cpu", "cpuacct", "cpuset", "blkio", "devices", "freezer"):
        for d in (_dir(controller, path), os.path.dirname(_dir(controller, path))):
            if os.path.isdir(d):
                with contextlib.suppress(OSError):  # the parent holds another test's cgroup
                    os.rmdir(d)


def _children(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return {int(p) for p in f.read().split()}


def test_sandbox_and_gofer_are_in_the_cgroup_with_the_spec_limits(platform_name, tmp_path, inner) -> None:
    resources = {
        "memory": {"limit": 512 * MiB, "reservation": 256 * MiB, "swappiness": 10},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000},
        "pids": {"limit": 200},
    }
    bundle = _bundle(tmp_path, "sleep 60", resources, inner)
    r = _cli(platform_name, tmp_path, "run", "--detach", "--bundle", bundle, "c1")
    assert r.returncode == 0, r.stdout
    try:
        state = json.loads(_cli(platform_name, tmp_path, "state", "c1").stdout)
        sandbox = state["pid"]
        members = {int(p) for p in _read("memory", inner, "cgroup.procs").split()}
        # The sandbox process and everything it started: the gofer (and systrap's stubs).
        assert sandbox in members
        assert _children(sandbox) and _children(sandbox) <= members
        for controller in ("pids", "cpu", "cpuset"):
            assert {int(p) for p in _read(controller, inner, "cgroup.procs").split()} == members
        assert _read("memory", inner, "memory.limit_in_bytes") == str(512 * MiB)
        assert _read("memory", inner, "memory.soft_limit_in_bytes") == str(256 * MiB)
        assert _read("memory", inner, "memory.swappiness") == "10"
        assert _read("cpu", inner, "cpu.shares") == "512"
        assert _read("cpu", inner, "cpu.cfs_quota_us") == "50000"
        assert _read("pids", inner, "pids.max") == "200"

        # events --stats: the cgroup's numbers, in runc's shape.
        r = _cli(platform_name, tmp_path, "events", "--stats", "c1")
        assert r.returncode == 0, r.stdout
        data = json.loads(r.stdout)["data"]
        assert data["memory"]["usage"]["limit"] == 512 * MiB
        assert 0 < data["memory"]["usage"]["usage"] <= data["memory"]["usage"]["max"]
        assert data["memory"]["usage"]["max"] <= int(_read("memory", inner, "memory.max_usage_in_bytes"))
        assert data["pids"]["limit"] == 200
        assert data["pids"]["current"] == 1  # the container's processes (sleep), not the host's
        assert 0 < data["cpu"]["usage"]["total"] <= int(_read("cpuacct", inner, "cpuacct.usage"))
        assert len(data["cpu"]["usage"]["percpu"]) == os.cpu_count()

        # update changes the limits in place.
        r = _cli(platform_name, tmp_path, "update", "--memory", "300m", "--pids-limit", "150", "c1")
        assert r.returncode == 0, r.stdout
        assert _read("memory", inner, "memory.limit_in_bytes") == str(300 * MiB)
        assert _read("pids", inner, "pids.max") == "150"
        (tmp_path / "res.json").write_text(json.dumps({"pids": {"limit": 120}, "cpu": {"cpus": "0"}}))
        r = _cli(platform_name, tmp_path, "update", "-r", str(tmp_path / "res.json"), "c1")
        assert r.returncode == 0, r.stdout
        assert (_read("pids", inner, "pids.max"), _read("cpuset", inner, "cpuset.cpus")) == ("120", "0")
        r = _cli(platform_name, tmp_path, "update", "--cpu-quota", "500", "c1")
        assert r.returncode == 1
        assert "resources.cpu.quota: must be -1 or at least 1000" in r.stdout
    finally:
        _cli(platform_name, tmp_path, "delete", "--force", "c1")
    assert not os.path.exists(_dir("memory", inner))
    assert not os.path.exists(_dir("pids", inner))


def test_a_memory_limit_oom_kills_the_sandbox(platform_name, tmp_path, inner) -> None:
    """Filling a tmpfs (the Sentry's memory) past the limit: the kernel's OOM killer kills the
    sandbox process, so the container's exit status is 137 (SIGKILL), as runc reports an OOM kill."""
    script = "dd if=/dev/zero of=/tmp/fill bs=1M count=400; echo survived"
    bundle = _bundle(tmp_path, script, {"memory": {"limit": 160 * MiB, "swap": 160 * MiB}}, inner)
    r = _cli(platform_name, tmp_path, "run", "--bundle", bundle, "c1")
    assert r.returncode == 137, r.stdout
    assert "survived" not in r.stdout
    assert not os.path.exists(_dir("memory", inner))  # run deletes the container and its cgroup


def test_the_pids_limit_counts_the_sandboxs_host_tasks(platform_name, tmp_path, inner) -> None:
    """pids.limit bounds the sandbox's host tasks (the Sentry's threads: one per app task; on
    systrap the stub processes and their worker threads too), not the container's processes one
    for one. Far past it, fork fails with EAGAIN, as at a Linux pids limit: busybox sh stops with
    "can't fork", and no process already running is killed."""
    script = "i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done; sleep 1; ls /proc | grep -c '^[0-9]'"
    bundle = _bundle(tmp_path, script, {"pids": {"limit": 20}}, inner)
    r = _cli(platform_name, tmp_path, "run", "--bundle", bundle, "c1")
    assert "can't fork: Resource temporarily unavailable" in r.stdout
    assert "Killed" not in r.stdout
    assert r.returncode == 2
    assert not os.path.exists(_dir("pids", inner))


@pytest.mark.parametrize(
    ("resources", "error"),
    [
        ({"memory": {"limit": "64m"}}, "linux.resources.memory.limit: must be an integer"),
        ({"memory": {"limit": 64 * MiB, "swap": MiB}}, "linux.resources.memory.swap: must be at least"),
        ({"cpu": {"cpus": "zero"}}, "linux.resources.cpu.cpus: must be a list like 0-3,5"),
        ({"cpu": {"shares": 1}}, "linux.resources.cpu.shares: must be in [2, 262144]"),
        ({"pids": {"limit": True}}, "linux.resources.pids.limit: must be an integer"),
        ({"devices": [{"allow": True, "type": "x"}]}, "linux.resources.devices[0].type: must be one of"),
        # Well-formed, but the kernel refuses it: no such CPU.
        ({"cpu": {"cpus": "0-4095"}}, "linux.resources.cpu.cpus: cannot set cpuset.cpus"),
    ],
)
def test_bad_resources_fail_create_naming_the_field_and_leave_nothing(
    platform_name, tmp_path, inner, resources, error
) -> None:
    bundle = _bundle(tmp_path, "true", resources, inner)
    r = _cli(platform_name, tmp_path, "create", "--bundle", bundle, "c1")
    assert r.returncode == 1
    assert error in r.stdout
    assert not os.path.exists(_dir("memory", inner))
    assert not os.path.exists(_dir("cpuset", inner))
    assert not os.path.exists(os.path.dirname(_dir("cpuset", inner)))
    assert _cli(platform_name, tmp_path, "list", "-q").stdout == ""


def test_default_and_relative_and_systemd_paths() -> None:
    assert cgroups.inner_path("", "c1", False) == "/kvmsandbox/c1"
    other = cgroups.inner_path("", "c1", False, "/tmp/elsewhere")
    assert other.startswith("/kvmsandbox/") and other.endswith("/c1") and other != "/kvmsandbox/c1"
    assert cgroups.inner_path("/a/../b/c", "c1", False) == "/b/c"
    assert cgroups.inner_path("pod/c1", "c1", False) == "pod/c1"  # below our own cgroup, as runc
    assert cgroups.inner_path("system.slice:docker:abc", "x", True) == "/system.slice/docker-abc.scope"
    assert cgroups.inner_path("a-b.slice:cri:abc", "x", True) == "/a.slice/a-b.slice/cri-abc.scope"
    with pytest.raises(cgroups.OCIError, match="linux.cgroupsPath"):
        cgroups.inner_path("../escape", "c1", False)
    with pytest.raises(cgroups.OCIError, match="slice:prefix:name"):
        cgroups.inner_path("/not/systemd", "c1", True)


def _unified_with(controller: str) -> str | None:
    """A cgroup2 mount offering `controller` (a hybrid host's /sys/fs/cgroup/unified, or v2's root)."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[fields.index("-") + 1] == "cgroup2":
                with open(os.path.join(fields[4], "cgroup.controllers")) as c:
                    if controller in c.read().split():
                        return fields[4]
    return None


def test_cgroup_v2_limits_join_and_removal() -> None:
    """The v2 translation on a real cgroup2 mount: hugepageLimits becomes hugetlb.2MB.max, a
    controller the mount lacks is skipped, a joined process shows the path, remove leaves nothing."""
    point = _unified_with("hugetlb")
    if point is None:
        pytest.skip("no cgroup2 mount with the hugetlb controller")
    hosts = cgroups.Hierarchies(2, {"": (point, "/")})
    inner = f"/kvmsandbox-test/{uuid.uuid4().hex[:12]}"
    writes = resources.parse(
        {"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB}], "pids": {"limit": 10}}, "linux.resources"
    )
    cgroup = cgroups.create(inner, writes, hosts)
    try:
        path = os.path.join(point, inner.lstrip("/"))
        assert cgroup.dirs == {"": path}
        with open(os.path.join(path, "hugetlb.2MB.max")) as f:
            assert f.read().strip() == str(4 * MiB)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            cgroup.join()
            with open("/proc/self/cgroup") as f:
                os.write(w, f.read().encode())
            os._exit(0)
        os.close(w)
        with os.fdopen(r) as f:
            lines = f.read().splitlines()
        os.waitpid(pid, 0)
        assert f"0::{inner}" in lines
    finally:
        cgroups.remove(cgroup)
    assert not os.path.exists(os.path.join(point, inner.lstrip("/")))
