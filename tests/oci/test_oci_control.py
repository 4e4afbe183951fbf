"""The control protocol end to end in one process, against the fake backend."""

from __future__ import annotations

import os
import threading

import pytest

from bootstrap.backend import BootRequest
from bootstrap.control import ControlClient, ControlServer
from bootstrap.default_spec import default_spec
from bootstrap.errors import OCIError
from bootstrap.lifecycle import ContainerLifecycle
from bootstrap.spec import parse_spec
from tests.oci.fake_backend import FakeBackend


@pytest.fixture
def served(tmp_path):
    """A lifecycle over the fake backend whose root process is `sleep --trap=USR1`, served on a socket."""
    (tmp_path / "rootfs").mkdir()
    spec = parse_spec(default_spec(["sleep", "--trap=USR1"]), str(tmp_path))
    out_r, out_w = os.pipe()
    request = BootRequest("c1", spec, (0, out_w, 2), None, "none", "root:memory", "exclusive")
    lifecycle = ContainerLifecycle(FakeBackend(request))
    # A deep directory: the socket path is longer than sun_path allows.
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    server = ControlServer(str(deep / "control.sock"), lifecycle)
    server.serve_in_background()
    yield server.path, lifecycle, out_r
    server.close()
    os.close(out_r)
    os.close(out_w)


def test_start_ps_signal_wait(served) -> None:
    path, _, out = served
    with ControlClient(path) as client:
        assert client.processes() == []
        client.start()
        with pytest.raises(OCIError, match="already started"):
            client.start()
        assert [(p.pid, p.cmd) for p in client.processes()] == [(1, "sleep --trap=USR1")]
        client.signal(10)
        assert os.read(out, 100) == b"trapped USR1\n"
        waiter = ControlClient(path)
        result = []
        t = threading.Thread(target=lambda: result.append(waiter.wait()))
        t.start()
        client.signal(15)  # served while the other connection blocks in wait
        t.join(5)
        waiter.close()
        assert result == [143]


def test_exec_passes_stdio_fds(served) -> None:
    path, _, _ = served
    r, w = os.pipe()
    with ControlClient(path) as client:
        client.start()
        pid = client.exec(
            {"args": ["echo", "from", "exec"], "cwd": "/", "user": {"uid": 0, "gid": 0}}, (w, w, w)
        )
        os.close(w)
        assert pid == 2
        assert client.wait(pid) == 0
        assert os.read(r, 100) == b"from exec\n"
    os.close(r)


def test_exec_errors_are_reported(served) -> None:
    path, _, _ = served
    with ControlClient(path) as client:
        with pytest.raises(OCIError, match=r"process\.cwd: must be an absolute path"):
            client.exec({"args": ["echo"], "cwd": "x", "user": {"uid": 0, "gid": 0}}, (0, 1, 2))
        with pytest.raises(OCIError, match="exec needs 3 stdio fds"):
            client.exec({"args": ["echo"], "cwd": "/", "user": {"uid": 0, "gid": 0}}, ())
        with pytest.raises(OCIError, match="unknown control operation"):
            client.call("format-disk")


def test_kill_before_start_ends_the_container(served) -> None:
    path, lifecycle, _ = served
    with ControlClient(path) as client:
        client.signal(9)
        assert client.wait() == 137
        with pytest.raises(OCIError, match="already stopped"):
            client.start()


def test_pause_resume_stats(served) -> None:
    path, lifecycle, _ = served
    with ControlClient(path) as client:
        client.start()
        client.pause()
        assert client.stats()["paused"] is True
        client.resume()
        assert client.stats() == {"pids": {"current": 1}, "paused": False}


def test_no_socket() -> None:
    with pytest.raises(OCIError, match="not running"):
        ControlClient("/nonexistent/control.sock")


class Refused(Exception):
    pass


def test_extension_operations_carry_fds_and_refusals(tmp_path) -> None:
    seen = []

    def donate(request: dict, fds: list[int]) -> int:
        seen.append(os.read(fds[0], 10))
        for fd in fds:
            os.close(fd)
        return request["n"] + 1

    def refuse(request: dict, fds: list[int]) -> None:
        raise Refused("no such session")

    server = ControlServer(
        str(tmp_path / "c.sock"), None, extensions={"donate": donate, "refuse": refuse}, refusals=(Refused,)
    )  # type: ignore[arg-type]
    server.serve_in_background()
    r, w = os.pipe()
    os.write(w, b"payload")
    try:
        with ControlClient(server.path) as client:
            assert client.call("donate", fds=[r], n=41) == 42
            with pytest.raises(OCIError, match="refuse: no such session"):
                client.call("refuse")
        assert seen == [b"payload"]
    finally:
        server.close()
        os.close(r)
        os.close(w)
