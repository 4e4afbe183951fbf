"""The OCI commands as the shim runs them: separate processes, a subreaper parent, the fake backend.

This test process makes itself a child subreaper, as containerd's shim is, so
the sandbox process (and exec's stand-ins) become its children once the CLI
process that spawned them exits, and their exit statuses can be checked.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from bootstrap.default_spec import default_spec
from tests.oci.host_processes import processes_mentioning

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture(scope="module", autouse=True)
def subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    yield
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


class Runtime:
    """`kvmsandbox --root R ...` in a subprocess, with the fake backend."""

    def __init__(self, tmp_path) -> None:
        self.root = str(tmp_path / "root")
        self.tmp = tmp_path
        self.env = dict(os.environ, PYTHONPATH=REPO, KVMSANDBOX_BACKEND="tests.oci.fake_backend:FakeBackend")
        self.out = tmp_path / "container.out"

    def __call__(self, *args: str, **kw) -> subprocess.CompletedProcess:
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        cmd = [sys.executable, "-m", "cli.main", "--root", self.root, "--log", str(self.tmp / "log.json"),
               "--log-format", "json", *args]  # fmt: skip
        return subprocess.run(cmd, env=self.env, text=True, timeout=30, **kw)

    def detached(self, *args: str) -> subprocess.CompletedProcess:
        """A command leaving a process behind that holds its stdio: stdout and stderr go to files."""
        err = self.tmp / "stderr"
        with open(self.out, "a") as out, open(err, "w") as errf:
            result = self(*args, stdin=subprocess.DEVNULL, stdout=out, stderr=errf)
        result.stderr = err.read_text()
        return result

    def create(self, cid: str, bundle: str, *extra: str) -> subprocess.CompletedProcess:
        return self.detached("create", "--bundle", bundle, *extra, cid)

    def state(self, cid: str) -> dict:
        result = self("state", cid)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def leftovers(self) -> list[str]:
        return os.listdir(self.root) if os.path.isdir(self.root) else []


def make_bundle(tmp_path, args: list[str], name: str = "bundle", **process: object) -> str:
    bundle = tmp_path / name
    (bundle / "rootfs").mkdir(parents=True)
    config = default_spec(args)
    config["process"].update(process)
    (bundle / "config.json").write_text(json.dumps(config))
    return str(bundle)


def reap(pid: int, timeout: float = 10) -> int:
    """Exit code of a process that became our child (we are its subreaper)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            raise AssertionError(f"pid {pid} is not our child: {_status_line(pid, 'PPid')}") from None
        if done:
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code
        time.sleep(0.01)
    raise TimeoutError(f"pid {pid} did not exit")


def _status_line(pid: int, key: str) -> str:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((line.strip() for line in f if line.startswith(key + ":")), "?")
    except OSError:
        return "gone"


@pytest.fixture
def rt(tmp_path) -> Iterator[Runtime]:
    runtime = Runtime(tmp_path)
    yield runtime
    for cid in runtime.leftovers():  # a failed test leaves its sandbox running otherwise
        runtime("delete", "--force", cid)


def test_create_start_exec_kill_delete(rt, tmp_path) -> None:
    bundle = make_bundle(tmp_path, ["sleep", "--trap=USR1"])
    pid_file = tmp_path / "init.pid"
    result = rt.create("c1", bundle, "--pid-file", str(pid_file))
    assert result.returncode == 0, result.stderr
    sandbox_pid = int(pid_file.read_text())
    assert rt.state("c1")["status"] == "created" and rt.state("c1")["pid"] == sandbox_pid
    assert rt("start", "c1").returncode == 0
    assert rt.state("c1")["status"] == "running"
    with open(f"/proc/{sandbox_pid}/status") as f:
        status = dict(line.split(":\t", 1) for line in f.read().splitlines())
    assert status["CapEff"].strip() == status["CapBnd"].strip() == "0000000000000000"
    assert status["NoNewPrivs"].strip() == "1" and status["Seccomp"].strip() == "2"
    assert status["NSpid"].split() == [str(sandbox_pid), "1"]  # init of the spec's new pid namespace
    # ... in a root of its own code only: no /proc to name host pids with, no /etc, no state dirs.
    assert not {"proc", "etc", "dev", "var"} & set(os.listdir(f"/proc/{sandbox_pid}/root"))
    assert rt("start", "c1").returncode == 1  # once only

    # json: host pids, each a mirror of one process (bootstrap/mirrors): the sandbox process's child.
    [mirror] = json.loads(rt("ps", "--format", "json", "c1").stdout)
    with open(f"/proc/{mirror}/cmdline", "rb") as f:
        assert f.read() == b"sleep\0--trap=USR1\0"
    assert _status_line(mirror, "PPid") == f"PPid:\t{sandbox_pid}"
    table = rt("ps", "c1").stdout.splitlines()
    assert table[0].split() == ["UID", "PID", "PPID", "C", "TTY", "STIME", "TIME", "CMD"]
    assert table[1].split()[1] == "1" and table[1].endswith("sleep --trap=USR1")

    # argv exec in the foreground: its output and exit code are ours.
    result = rt("exec", "c1", "echo", "hello", "-n")
    assert (result.returncode, result.stdout) == (0, "hello -n\n")
    assert rt("exec", "c1", "exit", "3").returncode == 3
    # The shim's form: --process, --detach, --pid-file naming a stand-in whose exit code is the process's.
    process = {"args": ["exit", "4"], "cwd": "/", "user": {"uid": 0, "gid": 0}}
    (tmp_path / "p.json").write_text(json.dumps(process))
    exec_pid = tmp_path / "e1.pid"
    result = rt.detached(
        "exec", "--process", str(tmp_path / "p.json"), "--detach", "--pid-file", str(exec_pid), "c1"
    )
    assert result.returncode == 0, result.stderr
    assert reap(int(exec_pid.read_text())) == 4

    assert rt("pause", "c1").returncode == 0
    assert rt.state("c1")["status"] == "paused"
    assert rt("resume", "c1").returncode == 0
    events = json.loads(rt("events", "--stats", "c1").stdout)
    # The backend's count of the container's processes; limit 0: the spec sets no pids.limit.
    assert events["type"] == "stats" and events["data"]["pids"] == {"current": 1, "limit": 0}
    assert (
        events["data"]["cpu"]["usage"]["total"] > 0 and events["data"]["memory"]["usage"]["usage"] > 1 << 20
    )

    assert rt("kill", "c1", "USR1").returncode == 0  # handled: not a kill
    assert rt.state("c1")["status"] == "running"
    assert rt("kill", "c1", "15").returncode == 0
    assert reap(sandbox_pid) == 143
    assert rt.state("c1") | {"created": None} == rt.state("c1") | {
        "status": "stopped",
        "pid": 0,
        "created": None,
    }
    assert json.loads(rt("wait", "c1").stdout) == {"id": "c1", "exitStatus": 143}
    assert rt("kill", "c1", "9").stderr.strip().endswith("container not running")
    assert rt("delete", "c1").returncode == 0
    assert rt("delete", "--force", "c1").returncode == 0  # the shim's second, separate cleanup
    assert rt.leftovers() == []
    assert (tmp_path / "container.out").read_text() == "trapped USR1\n"


def test_kill_before_start_and_kill_all(rt, tmp_path) -> None:
    bundle = make_bundle(tmp_path, ["sleep"])
    rt.create("c2", bundle, "--pid-file", str(tmp_path / "pid"))
    assert rt("kill", "--all", "c2", "KILL").returncode == 0
    assert reap(int((tmp_path / "pid").read_text())) == 137
    assert rt.state("c2")["status"] == "stopped"
    assert rt("delete", "c2").returncode == 0


def test_kill_9_of_the_sandbox_leaves_state_that_delete_force_cleans(rt, tmp_path) -> None:
    bundle = make_bundle(tmp_path, ["sleep"])
    rt.create("c3", bundle, "--pid-file", str(tmp_path / "pid"))
    rt("start", "c3")
    pid = int((tmp_path / "pid").read_text())
    os.kill(pid, signal.SIGKILL)
    assert reap(pid) == 137
    assert rt.state("c3")["status"] == "stopped"
    assert rt.leftovers() == ["c3"]
    assert rt("delete", "--force", "c3").returncode == 0
    assert rt.leftovers() == []


def test_delete_force_kills_a_running_sandbox(rt, tmp_path) -> None:
    bundle = make_bundle(tmp_path, ["sleep"])
    rt.create("c4", bundle, "--pid-file", str(tmp_path / "pid"))
    rt("start", "c4")
    assert rt("delete", "c4").returncode == 1  # running: needs --force
    assert rt("delete", "--force", "c4").returncode == 0
    assert reap(int((tmp_path / "pid").read_text())) == 137
    assert rt.leftovers() == []


def test_unrunnable_entrypoint_exits_127(rt, tmp_path) -> None:
    bundle = make_bundle(tmp_path, ["no-such-program"])
    rt.create("c5", bundle, "--pid-file", str(tmp_path / "pid"))
    result = rt("start", "c5")
    assert result.returncode == 1 and "no-such-program" in result.stderr
    assert reap(int((tmp_path / "pid").read_text())) == 127
    rt("delete", "c5")


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("missing config", "config.json: no such file"),
        ("bad JSON", "config.json: invalid JSON"),
        ("missing root", "root.path: "),
        ("bad uid", "process.user.uid: must be a non-negative integer"),
        ("unknown namespace", "linux.namespaces[5].type: unknown namespace 'time-travel'"),
    ],
)
def test_malformed_bundles_leave_nothing(rt, tmp_path, breakage: str, message: str) -> None:
    bundle = tmp_path / "bundle"
    bundle_path = make_bundle(tmp_path, ["sleep"])
    config = json.loads((bundle / "config.json").read_text())
    if breakage == "missing config":
        (bundle / "config.json").unlink()
    elif breakage == "bad JSON":
        (bundle / "config.json").write_text("{")
    elif breakage == "missing root":
        (bundle / "rootfs").rmdir()
    elif breakage == "bad uid":
        config["process"]["user"]["uid"] = "root"
        (bundle / "config.json").write_text(json.dumps(config))
    else:
        config["linux"]["namespaces"].append({"type": "time-travel"})
        (bundle / "config.json").write_text(json.dumps(config))
    result = rt.create("bad", bundle_path, "--pid-file", str(tmp_path / "pid"))
    assert result.returncode == 1
    assert message in result.stderr
    assert message in json.loads((tmp_path / "log.json").read_text().splitlines()[-1])["msg"]
    assert rt.leftovers() == [] and not (tmp_path / "pid").exists()


def test_boot_failure_leaves_no_state_or_process(rt, tmp_path) -> None:
    rt.env["KVMSANDBOX_BACKEND"] = "tests.oci.fake_backend:NoSuchBackend"
    result = rt.create("c6", make_bundle(tmp_path, ["sleep"]))
    assert result.returncode == 1 and "sandbox boot failed: AttributeError" in result.stderr
    assert rt.leftovers() == []
    # Nothing that ran for this bundle (sandbox process, gofer) remains.
    assert processes_mentioning(str(tmp_path)) == []


def test_console_socket_receives_a_pty_master(rt, tmp_path) -> None:
    bundle = make_bundle(tmp_path, ["echo", "on", "a", "tty"], terminal=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "console.sock"))
    listener.listen(1)
    result = rt.create("c7", bundle, "--console-socket", str(tmp_path / "console.sock"), "--pid-file",
                       str(tmp_path / "pid"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    conn, _ = listener.accept()
    _, fds, _, _ = socket.recv_fds(conn, 100, 1)
    master = fds[0]
    assert os.isatty(master)
    rt("start", "c7")
    assert reap(int((tmp_path / "pid").read_text())) == 0
    assert os.read(master, 100) == b"on a tty\r\n"
    os.close(master)
    rt("delete", "c7")


def test_terminal_without_console_socket_is_refused(rt, tmp_path) -> None:
    result = rt.create("c8", make_bundle(tmp_path, ["sleep"], terminal=True))
    assert result.returncode == 1 and "no --console-socket" in result.stderr
    assert rt.leftovers() == []


def test_run_foreground(rt, tmp_path) -> None:
    result = rt("run", "--bundle", make_bundle(tmp_path, ["exit", "3"]), "r1", stdin=subprocess.DEVNULL)
    assert result.returncode == 3, result.stderr
    result = rt(
        "run", "--bundle", make_bundle(tmp_path, ["echo", "hi"], "b2"), "r2", stdin=subprocess.DEVNULL
    )
    assert (result.returncode, result.stdout) == (0, "hi\n")
    assert rt.leftovers() == []


def test_list(rt, tmp_path) -> None:
    rt.create("l1", make_bundle(tmp_path, ["sleep"]), "--pid-file", str(tmp_path / "pid"))
    rows = json.loads(rt("list", "--format", "json").stdout)
    assert [(r["id"], r["status"]) for r in rows] == [("l1", "created")]
    assert rt("list", "-q").stdout == "l1\n"
    assert rt("list").stdout.split()[:6] == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    rt("delete", "l1")
    assert reap(int((tmp_path / "pid").read_text())) == 137


def _hook(script: str) -> dict:
    return {"path": "/bin/sh", "args": ["sh", "-c", script]}


def test_hooks_run_in_order_with_the_state_on_stdin(rt, tmp_path) -> None:
    bundle = make_bundle(tmp_path, ["sleep"])
    config = json.loads((tmp_path / "bundle" / "config.json").read_text())
    log = tmp_path / "hooks.log"
    config["hooks"] = {
        kind: [_hook(f'echo "{kind}$n $(cat)" >> {log}'.replace("$n", str(n))) for n in (1, 2)]
        for kind in ("createRuntime", "prestart", "poststart", "poststop")
    }
    (tmp_path / "bundle" / "config.json").write_text(json.dumps(config))
    assert rt.create("h1", bundle, "--pid-file", str(tmp_path / "pid")).returncode == 0
    rt("start", "h1")
    rt("kill", "h1", "KILL")
    reap(int((tmp_path / "pid").read_text()))
    assert rt("delete", "h1").returncode == 0
    lines = log.read_text().splitlines()
    kinds = [line.split(" ", 1)[0] for line in lines]
    assert kinds == [
        f"{k}{n}" for k in ("createRuntime", "prestart", "poststart", "poststop") for n in (1, 2)
    ]
    states = [json.loads(line.split(" ", 1)[1]) for line in lines]
    assert [s["status"] for s in states[::2]] == ["creating", "created", "running", "stopped"]
    assert all(s["id"] == "h1" and s["bundle"] == bundle for s in states)


def test_a_failing_prestart_hook_stops_the_container(rt, tmp_path) -> None:
    bundle = make_bundle(tmp_path, ["sleep"])
    config = json.loads((tmp_path / "bundle" / "config.json").read_text())
    config["hooks"] = {"prestart": [_hook("echo broken >&2; exit 4")]}
    (tmp_path / "bundle" / "config.json").write_text(json.dumps(config))
    assert rt.create("h2", bundle, "--pid-file", str(tmp_path / "pid")).returncode == 0
    result = rt("start", "h2")
    assert result.returncode == 1
    assert "prestart hook /bin/sh: exit status 4: broken" in result.stderr
    assert reap(int((tmp_path / "pid").read_text())) == 137
    assert rt("delete", "h2").returncode == 0
    assert rt.leftovers() == []


def test_a_failing_create_runtime_hook_fails_create_and_cleans_up(rt, tmp_path) -> None:
    bundle = make_bundle(tmp_path, ["sleep"])
    config = json.loads((tmp_path / "bundle" / "config.json").read_text())
    config["hooks"] = {"createRuntime": [_hook("echo broken >&2; exit 4")]}
    (tmp_path / "bundle" / "config.json").write_text(json.dumps(config))
    result = rt.create("h3", bundle, "--pid-file", str(tmp_path / "pid"))
    assert result.returncode == 1
    assert "createRuntime hook /bin/sh: exit status 4: broken" in result.stderr
    assert rt.leftovers() == [] and not (tmp_path / "pid").exists()
    assert processes_mentioning(str(tmp_path)) == []


def test_a_bad_pod_init_config_fails_create_and_cleans_up(rt, tmp_path) -> None:
    (tmp_path / "pod.json").write_text('{"trace_session": {"name": "x", "bogus": 1}}')
    result = rt.detached(
        "--pod-init-config",
        str(tmp_path / "pod.json"),
        "create",
        "--bundle",
        make_bundle(tmp_path, ["sleep"]),
        "p1",
    )
    assert result.returncode == 1 and "--pod-init-config:" in result.stderr
    assert rt.leftovers() == []
