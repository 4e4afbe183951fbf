"""linux.namespaces `user`: the sandbox process's host user namespace, through the real CLI.

create and start run in subprocesses as the shim runs them, with the real
Sentry on each usable platform and a static busybox root. A new user
namespace must be mapped as the spec says and own the other new namespaces;
one named by path must be joined; a wrong path or bad mappings must fail with
an error naming the field and leave no state and no process behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

import pytest

from bootstrap.default_spec import default_spec
from tests.oci.host_processes import processes_mentioning

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUSYBOX = "/bin/busybox"
NS_GET_USERNS = 0xB701  # _IO(0xb7, 0x1): the user namespace owning a namespace
UID_MAPPINGS = [
    {"containerID": 0, "hostID": 100000, "size": 1000},
    {"containerID": 1000, "hostID": 300000, "size": 10},
]
GID_MAPPINGS = [{"containerID": 0, "hostID": 200000, "size": 65536}]

Run = Callable[..., subprocess.CompletedProcess]


def _usable(name: str) -> bool:
    from kvmsandbox import platform

    return any(info.name == name and info.usable for info in platform.probe_all())


def _runner(root: str, platform: str) -> Run:
    """The CLI in a subprocess; its stdout and stderr go to files, since the sandbox process
    that `create` leaves behind keeps them open (pipes would never reach EOF)."""
    env = dict(os.environ, PYTHONPATH=REPO)
    os.makedirs(root, exist_ok=True)

    def run(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "cli.main", "--root", root, f"--platform={platform}", *args]
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            result = subprocess.run(
                cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=60
            )
            out.seek(0)
            err.seek(0)
            result.stdout, result.stderr = out.read(), err.read()
        return result

    return run


@pytest.fixture(params=["kvm", "systrap"])
def kvmsandbox(request, tmp_path) -> Iterator[Run]:
    """`kvmsandbox --root R --platform P ARGS...`; deletes what it created afterwards."""
    if os.geteuid() != 0 or not os.path.exists(BUSYBOX):
        pytest.skip("needs root and busybox-static")
    if not _usable(request.param):
        pytest.skip(f"platform {request.param} is not usable here")
    root = str(tmp_path / "state")
    run = _runner(root, request.param)
    yield run
    for cid in os.listdir(root) if os.path.isdir(root) else []:
        run("delete", "--force", cid)


@pytest.fixture
def other_userns() -> Iterator[int]:
    """A process in a user namespace of its own (unmapped, as the validation suite makes one)."""
    proc = subprocess.Popen(["unshare", "--user", "--fork", "sleep", "1000"], start_new_session=True)
    try:
        own = os.readlink("/proc/self/ns/user")
        # unshare forks: the sleeper is its child, in the new namespace once it has run.
        yield _wait_for_child_in_other_userns(proc.pid, own)
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


def _wait_for_child_in_other_userns(parent: int, own: str) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{parent}/task/{parent}/children") as f:
                children = [int(p) for p in f.read().split()]
            if children and os.readlink(f"/proc/{children[0]}/ns/user") != own:
                return children[0]
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("unshare --user never ran its child")


def _bundle(path, linux: dict) -> str:
    for d in ("bin", "proc", "dev", "tmp"):
        (path / "rootfs" / d).mkdir(parents=True)
    shutil.copy2(BUSYBOX, path / "rootfs" / "bin" / "busybox")
    for applet in ("sh", "sleep", "echo"):
        os.symlink("busybox", path / "rootfs" / "bin" / applet)
    config = default_spec(["sleep", "1000"])
    config["process"]["terminal"] = False
    config["process"]["env"] = ["PATH=/bin"]
    config["linux"].update(linux)
    (path / "config.json").write_text(json.dumps(config))
    return str(path)


def _with_user(path: str = "") -> list[dict[str, str]]:
    namespaces = [ns for ns in default_spec(["sleep"])["linux"]["namespaces"] if ns["type"] != "user"]
    return [*namespaces, {"type": "user", "path": path} if path else {"type": "user"}]


def _id_map(pid: int, name: str) -> list[dict[str, int]]:
    with open(f"/proc/{pid}/{name}") as f:
        rows = [line.split() for line in f]
    return [{"containerID": int(c), "hostID": int(h), "size": int(s)} for c, h, s in rows]


def _owner_inode(pid: int, kind: str) -> int:
    fd = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY)
    try:
        owner = fcntl.ioctl(fd, NS_GET_USERNS)
    finally:
        os.close(fd)
    try:
        return os.fstat(owner).st_ino
    finally:
        os.close(owner)


def _starts_and_runs(kvmsandbox: Run) -> None:
    assert kvmsandbox("start", "c1").returncode == 0
    result = kvmsandbox("exec", "c1", "echo", "inside")
    assert (result.returncode, result.stdout) == (0, "inside\n"), result.stderr


def test_new_user_namespace_is_mapped_and_owns_the_others(kvmsandbox, tmp_path) -> None:
    linux = {"namespaces": _with_user(), "uidMappings": UID_MAPPINGS, "gidMappings": GID_MAPPINGS}
    pid_file = tmp_path / "pid"
    created = kvmsandbox(
        "create", "--bundle", _bundle(tmp_path / "b", linux), "--pid-file", str(pid_file), "c1"
    )
    assert created.returncode == 0, created.stderr
    pid = int(pid_file.read_text())
    assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
    assert _id_map(pid, "uid_map") == UID_MAPPINGS
    assert _id_map(pid, "gid_map") == GID_MAPPINGS
    user = os.stat(f"/proc/{pid}/ns/user").st_ino
    for kind in ("mnt", "net", "ipc", "uts"):
        assert _owner_inode(pid, kind) == user, kind
    _starts_and_runs(kvmsandbox)
    # Confined as without a user namespace: its root holds its code only (bootstrap.code_root).
    assert os.path.isdir(f"/proc/{pid}/root{REPO}/bootstrap") and not os.path.exists(f"/proc/{pid}/root/etc")
    # The container's own /proc shows the same maps, in Linux's format.
    result = kvmsandbox("exec", "c1", "sh", "-c", "cat /proc/self/uid_map /proc/1/gid_map")
    with open(f"/proc/{pid}/uid_map") as uid_map, open(f"/proc/{pid}/gid_map") as gid_map:
        assert (result.returncode, result.stdout) == (0, uid_map.read() + gid_map.read()), result.stderr


def test_user_namespace_path_is_joined(kvmsandbox, tmp_path, other_userns: int) -> None:
    target = f"/proc/{other_userns}/ns/user"
    bundle = _bundle(tmp_path / "b", {"namespaces": _with_user(target)})
    created = kvmsandbox("create", "--bundle", bundle, "--pid-file", str(tmp_path / "pid"), "c1")
    assert created.returncode == 0, created.stderr
    pid = int((tmp_path / "pid").read_text())
    assert os.readlink(f"/proc/{pid}/ns/user") == os.readlink(target)
    _starts_and_runs(kvmsandbox)


def test_rootfs_owned_by_mapped_ids_is_the_containers_own(kvmsandbox, tmp_path) -> None:
    """A rootfs shifted into the map (as userns-remap does): the container's root reads its
    private files, which it sees as its own."""
    linux = {"namespaces": _with_user(), "uidMappings": UID_MAPPINGS, "gidMappings": GID_MAPPINGS}
    bundle = _bundle(tmp_path / "b", linux)
    rootfs = tmp_path / "b" / "rootfs"
    (rootfs / "root").mkdir(mode=0o700)
    (rootfs / "root" / "secret").write_text("only root\n")
    (rootfs / "root" / "secret").chmod(0o600)
    for path in [rootfs, *rootfs.rglob("*")]:
        os.chown(path, UID_MAPPINGS[0]["hostID"], GID_MAPPINGS[0]["hostID"], follow_symlinks=False)
    assert kvmsandbox("create", "--bundle", bundle, "c1").returncode == 0
    assert kvmsandbox("start", "c1").returncode == 0
    result = kvmsandbox("exec", "c1", "sh", "-c", "cat /root/secret; stat -c %u:%g /root/secret")
    assert (result.returncode, result.stdout) == (0, "only root\n0:0\n"), result.stderr


def test_mappings_must_be_those_of_a_joined_user_namespace(tmp_path, other_userns: int) -> None:
    if os.geteuid() != 0 or not os.path.exists(BUSYBOX):
        pytest.skip("needs root and busybox-static")
    root = str(tmp_path / "state")
    run = _runner(root, "systrap")
    linux = {"namespaces": _with_user(f"/proc/{other_userns}/ns/user"), "uidMappings": UID_MAPPINGS}
    result = run("create", "--bundle", _bundle(tmp_path / "b", linux), "bad")
    assert result.returncode == 1
    assert "linux.uidMappings: the joined user namespace maps nothing, not 0->100000 x1000" in result.stderr
    assert os.listdir(root) == []


@pytest.mark.parametrize(
    ("linux", "message"),
    [
        (
            {"namespaces": _with_user("/proc/self/ns/uts")},
            "linux.namespaces: user path /proc/self/ns/uts: is of type uts, not user",
        ),
        (
            {"namespaces": _with_user("/etc/hostname")},
            "linux.namespaces: user path /etc/hostname: not a namespace file (/proc/PID/ns/user)",
        ),
        (
            # The handshake's failure path: the sandbox process fails before asking to be mapped.
            {
                "namespaces": [
                    *_with_user(),
                    {"type": "cgroup", "path": "/proc/self/ns/ipc"},
                ],
                "uidMappings": UID_MAPPINGS,
                "gidMappings": GID_MAPPINGS,
            },
            "linux.namespaces: cgroup path /proc/self/ns/ipc: is of type ipc, not cgroup",
        ),
        (
            {"namespaces": _with_user(), "gidMappings": GID_MAPPINGS},
            "linux.uidMappings: a new user namespace (no path) needs id mappings",
        ),
        (
            {
                "namespaces": _with_user(),
                "uidMappings": [*UID_MAPPINGS, {"containerID": 5000, "hostID": 100500, "size": 1}],
                "gidMappings": GID_MAPPINGS,
            },
            "linux.uidMappings[2].hostID: range overlaps linux.uidMappings[0]'s",
        ),
        (
            {
                "namespaces": _with_user(),
                "uidMappings": UID_MAPPINGS,
                "gidMappings": [{"containerID": 0, "hostID": 4294967290, "size": 10}],
            },
            "linux.gidMappings[0]: hostID 4294967290 + size 10 runs past the largest id 4294967294",
        ),
        (
            {"namespaces": _with_user(), "uidMappings": [{"containerID": 0, "hostID": -1, "size": 1}]},
            "linux.uidMappings[0].hostID: must be an integer",
        ),
    ],
)
def test_bad_user_namespaces_fail_and_leave_nothing(tmp_path, linux: dict, message: str) -> None:
    if os.geteuid() != 0 or not os.path.exists(BUSYBOX):
        pytest.skip("needs root and busybox-static")
    root = str(tmp_path / "state")
    run = _runner(root, "systrap")
    pid_file = tmp_path / "pid"
    result = run("create", "--bundle", _bundle(tmp_path / "b", linux), "--pid-file", str(pid_file), "bad")
    assert result.returncode == 1
    assert message in result.stderr
    assert not os.path.isdir(root) or os.listdir(root) == []
    assert not pid_file.exists()
    assert processes_mentioning(str(tmp_path)) == []
