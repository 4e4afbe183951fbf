"""`kvmsandbox trace`: metadata, session file errors, sink setup outside the sandbox, the sandbox lookup."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner
from trace_monitor import wait_for

import cli.trace
from cli.main import main
from sentry.seccheck import hooks, points, session
from sentry.seccheck.config import parse_session

ROOT = "/nonexistent/kvmsandbox-trace-tests"


def run(*args: str, root: str = ROOT) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--root", root, "trace", *args])
    return result.exit_code, result.output


def session_file(tmp_path, **sink) -> str:
    sinks = [{"name": "remote", **sink}] if sink else [{"name": "null"}]
    obj = {"trace_session": {"name": "Default", "points": [{"name": "sentry/task_exit"}], "sinks": sinks}}
    path = tmp_path / "pod.json"
    path.write_text(json.dumps(obj))
    return str(path)


class InProcessSandbox:
    """A TraceControl served by this process's seccheck, standing in for a sandbox's control channel."""

    def __init__(self) -> None:
        self.received_fds: list[int | None] = []

    def create_trace_session(self, config, fds, force):
        self.received_fds = list(fds)
        owned = [None if fd is None else os.dup(fd) for fd in fds]  # SCM_RIGHTS would give the sandbox copies
        try:
            session.create(parse_session(config), owned, force=force)
        except session.SessionError as e:
            raise cli.trace.TraceControlError(str(e)) from e

    def delete_trace_session(self, name):
        try:
            session.delete(name)
        except session.SessionError as e:
            raise cli.trace.TraceControlError(str(e)) from e

    def list_trace_sessions(self):
        return session.describe_all()

    def procfs_dump(self):
        return [{"status": {"pid": 1, "comm": "sh"}}]


@pytest.fixture
def sandbox(monkeypatch):
    box = InProcessSandbox()
    monkeypatch.setattr(cli.trace, "sandbox_control", lambda root, cid: box if cid == "box" else None)
    return box


def test_metadata():
    code, out = run("metadata")
    assert code == 0 and out == points.metadata_text()


@pytest.mark.parametrize(
    "args", [("list", "nope"), ("delete", "--name", "Default", "nope"), ("procfs", "nope")]
)
def test_unknown_container(args):
    code, out = run(*args)
    assert code == 1 and 'container "nope" not found' in out


def test_create_validates_the_file_first(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"name": "Default", "points": [{"name": "syscall/bogus/enter"}]}))
    code, out = run("create", "--config", str(path), "nope")
    assert code == 1 and 'unknown point "syscall/bogus/enter"' in out
    code, out = run("create", "--config", session_file(tmp_path), "nope")
    assert code == 1 and 'container "nope" not found' in out


def test_create_list_delete(tmp_path, sandbox, monitor, task):
    code, out = run("create", "--config", session_file(tmp_path, config={"endpoint": monitor.path}), "box")
    assert (code, out) == (0, 'Trace session "Default" created.\n')
    assert monitor.handshakes == [b"\x08\x01"]  # connected and handshaken here, before the sandbox got the fd
    hooks.task_exit(task, 0)
    wait_for(lambda: len(monitor.packets) == 1)
    code, out = run("create", "--config", session_file(tmp_path), "box")
    assert code == 1 and "already exists" in out
    code, out = run("list", "box")
    assert (code, out) == (0, 'SESSIONS (1)\n"Default"\n\tSink: "remote", dropped: 0\n')
    code, out = run("create", "--force", "--config", session_file(tmp_path), "box")
    assert code == 0
    code, out = run("delete", "--name", "Default", "box")
    assert (code, out) == (0, 'Trace session "Default" deleted.\n')
    code, out = run("list", "box")
    assert (code, out) == (0, "SESSIONS (0)\n")
    code, out = run("delete", "--name", "Default", "box")
    assert code == 1 and 'trace session "Default" not found' in out


def test_create_with_monitor_not_listening(tmp_path, sandbox, sock_dir):
    endpoint = f"{sock_dir}/nobody.sock"
    code, out = run("create", "--config", session_file(tmp_path, config={"endpoint": endpoint}), "box")
    assert code == 1 and f"cannot connect to {endpoint}" in out and "ignore_setup_error" in out
    assert session.describe_all() == []
    path = session_file(tmp_path, config={"endpoint": endpoint}, ignore_setup_error=True)
    code, out = run("create", "--config", path, "box")
    assert code == 0 and sandbox.received_fds == [None]


def test_procfs(sandbox):
    code, out = run("procfs", "box")
    assert code == 0 and json.loads(out) == [{"status": {"pid": 1, "comm": "sh"}}]
