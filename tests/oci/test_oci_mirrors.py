"""`ps --format json` on a real sandbox: host pids of mirrors that carry the app processes' command lines.

The CLI runs in subprocesses as the shim runs it, with the real Sentry on
each usable platform and a static busybox root. The app is a shell that
backgrounds `sleep 1000` and, on SIGUSR1, execs `sleep 2000`: a process that
execs and one that exits must each take their mirror with them.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from bootstrap import procinfo
from bootstrap.default_spec import default_spec

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUSYBOX = "/bin/busybox"
APP = ["sh", "-c", 'trap "exec sleep 2000" USR1; sleep 1000 & wait; wait']
SHELL = b"\0".join(a.encode() for a in APP) + b"\0"  # cmdlines as /proc shows them
SLEEP_1000 = b"sleep\x001000\x00"
SLEEP_2000 = b"sleep\x002000\x00"


def _usable(name: str) -> bool:
    from kvmsandbox import platform

    return any(info.name == name and info.usable for info in platform.probe_all())


@pytest.fixture(params=["kvm", "systrap"])
def kvmsandbox(request, tmp_path) -> Iterator[Callable[..., subprocess.CompletedProcess]]:
    """`kvmsandbox --root R --platform P ARGS...`; deletes what it created afterwards."""
    if os.geteuid() != 0 or not os.path.exists(BUSYBOX):
        pytest.skip("needs root and busybox-static")
    if not _usable(request.param):
        pytest.skip(f"platform {request.param} is not usable here")
    root = str(tmp_path / "state")
    env = dict(os.environ, PYTHONPATH=REPO)

    calls = itertools.count()

    def run(*args: str) -> subprocess.CompletedProcess:
        # Output goes to files: the sandbox process `create` leaves behind holds its stdio.
        out, err = tmp_path / f"out.{next(calls)}", tmp_path / f"err.{next(calls)}"
        cmd = [sys.executable, "-m", "cli.main", "--root", root, f"--platform={request.param}", *args]
        with open(out, "w") as stdout, open(err, "w") as stderr:
            result = subprocess.run(
                cmd, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, timeout=60, check=False
            )
        result.stdout, result.stderr = out.read_text(), err.read_text()
        return result

    yield run
    for cid in os.listdir(root) if os.path.isdir(root) else []:
        run("delete", "--force", cid)


def _bundle(path) -> str:
    for d in ("bin", "proc", "dev", "tmp"):
        (path / "rootfs" / d).mkdir(parents=True)
    shutil.copy2(BUSYBOX, path / "rootfs" / "bin" / "busybox")
    for applet in ("sh", "sleep", "kill"):
        os.symlink("busybox", path / "rootfs" / "bin" / applet)
    config = default_spec(APP)
    config["process"]["terminal"] = False
    config["process"]["env"] = ["PATH=/bin"]
    (path / "config.json").write_text(json.dumps(config))
    return str(path)


def _poll(check: Callable[[], object], what: str, timeout: float = 30) -> object:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
    return result


def _mirrors(kvmsandbox) -> dict[bytes, int]:
    """{cmdline: host pid} of what `ps --format json` lists."""
    result = kvmsandbox("ps", "--format", "json", "c1")
    assert result.returncode == 0, result.stderr
    return {_cmdline(pid): pid for pid in json.loads(result.stdout)}


def _cmdline(pid: int) -> bytes:
    """Its cmdline once its exec is complete (a mirror's pid is known a moment before the kernel sets it)."""
    return _poll(lambda: _read(f"/proc/{pid}/cmdline"), f"mirror {pid} to finish its exec")


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return {k: v.strip() for k, v in (line.split(":", 1) for line in f)}


def _sentry_pid(kvmsandbox, cmd: str) -> int:
    """The pid the sandbox gives the process running `cmd`, from the `ps` table (0 if none)."""
    rows = kvmsandbox("ps", "c1").stdout.splitlines()[1:]
    return next((int(row.split()[1]) for row in rows if row.split(None, 7)[-1] == cmd), 0)


def test_ps_json_lists_mirrors_that_follow_exec_and_exit(kvmsandbox, tmp_path) -> None:
    created = kvmsandbox(
        "create", "--bundle", _bundle(tmp_path / "bundle"), "--pid-file", str(tmp_path / "pid"), "c1"
    )
    assert created.returncode == 0, created.stderr
    sandbox_pid = int((tmp_path / "pid").read_text())
    assert kvmsandbox("start", "c1").returncode == 0
    sleeper = _poll(lambda: _sentry_pid(kvmsandbox, "sleep 1000"), "sleep 1000 in the sandbox")

    mirrors = _poll(lambda: (m := _mirrors(kvmsandbox)) and SLEEP_1000 in m and m, "both mirrors")
    assert SHELL in mirrors
    for cmdline, pid in mirrors.items():
        name = cmdline.split(b"\0")[0].rsplit(b"/", 1)[-1] + b"\n"
        _poll(lambda pid=pid, name=name: _read(f"/proc/{pid}/comm") == name, "the mirror to name itself")
        status = _status(pid)
        assert status["PPid"] == str(sandbox_pid)  # the sandbox process's child, named by its host pid
        assert status["CapEff"] == "0000000000000000" and status["NoNewPrivs"] == "1"
    assert _mirrors(kvmsandbox) == mirrors  # asked again: the same mirrors, not new ones

    # The shell execs `sleep 2000`: its mirror is replaced, the old one reaped.
    assert kvmsandbox("kill", "c1", "USR1").returncode == 0
    after_exec = _poll(
        lambda: (m := _mirrors(kvmsandbox)) and SLEEP_2000 in m and m, "the exec'd root's mirror"
    )
    assert SHELL not in after_exec and not os.path.exists(f"/proc/{mirrors[SHELL]}")

    # `sleep 1000` is killed: its mirror goes with it.
    assert kvmsandbox("exec", "c1", "kill", str(sleeper)).returncode == 0
    _poll(lambda: SLEEP_1000 not in _mirrors(kvmsandbox), "the exited process's mirror to go")
    assert not os.path.exists(f"/proc/{mirrors[SLEEP_1000]}")

    # The sandbox's end ends every mirror.
    last = after_exec[SLEEP_2000]
    assert kvmsandbox("delete", "--force", "c1").returncode == 0
    _poll(lambda: procinfo.start_time(last) is None, "the last mirror to end")
