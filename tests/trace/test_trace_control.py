"""`trace create/list/delete` through a container's control socket, served by sentry/seccheck/control.py.

The sandbox here is this test process: a state directory under --root names
it, and a control-socket thread speaking bootstrap/control.py's protocol
dispatches to seccheck's OPERATIONS, as the sandbox process does.
"""

from __future__ import annotations

import json
import os
import threading

import pytest
from click.testing import CliRunner
from trace_monitor import wait_for

from bootstrap import procinfo, unixsock
from bootstrap.state import ContainerState, StateStore
from cli.main import main
from sentry.seccheck import hooks
from sentry.seccheck.control import OPERATIONS, REFUSALS


def serve(listener) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            data, fds = unixsock.recv(conn, 1 << 20)
            request = json.loads(data)
            try:
                reply = {"ok": True, "result": OPERATIONS[request["op"]](request, fds)}
            except REFUSALS as e:
                reply = {"ok": False, "error": str(e)}
            unixsock.send(conn, json.dumps(reply).encode())


@pytest.fixture
def root(sock_dir):
    store = StateStore(sock_dir)
    state = ContainerState.new("box", "/bundle", "/bundle/rootfs", {})
    state.pid, state.pid_start, state.status = os.getpid(), procinfo.start_time(os.getpid()), "running"
    store.create(state)
    listener = unixsock.bind(store.control_path("box"))
    thread = threading.Thread(target=serve, args=(listener,), daemon=True)
    thread.start()
    yield sock_dir
    listener.shutdown(2)
    listener.close()
    thread.join(5)


def run(root: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--root", root, "trace", *args])
    return result.exit_code, result.output


def write_session(path: str, sinks: list[dict]) -> str:
    with open(path, "w") as f:
        json.dump({"name": "Default", "points": [{"name": "sentry/task_exit"}], "sinks": sinks}, f)
    return path


def test_create_list_delete_over_the_control_socket(root, monitor, task):
    sinks = [{"name": "null"}, {"name": "remote", "config": {"endpoint": monitor.path}}]
    config = write_session(f"{root}/s.json", sinks)
    assert run(root, "create", "--config", config, "box") == (0, 'Trace session "Default" created.\n')
    hooks.task_exit(task, 0)  # the "sandbox" (this process) now sends to the monitor over the donated fd
    wait_for(lambda: len(monitor.packets) == 1)
    code, out = run(root, "list", "box")
    assert (code, out) == (
        0,
        'SESSIONS (1)\n"Default"\n\tSink: "null", dropped: 0\n\tSink: "remote", dropped: 0\n',
    )
    code, out = run(root, "create", "--config", config, "box")
    assert code == 1 and 'trace session "Default" already exists' in out
    wait_for(lambda: monitor.ended == 1)  # the refused session's connection
    assert run(root, "delete", "--name", "Default", "box") == (0, 'Trace session "Default" deleted.\n')
    wait_for(lambda: monitor.ended == 2)
    code, out = run(root, "delete", "--name", "Default", "box")
    assert code == 1 and 'trace session "Default" not found' in out


def test_unknown_and_stopped_containers(root):
    code, out = run(root, "list", "nope")
    assert code == 1 and 'container "nope" not found' in out
    store = StateStore(root)
    state = store.load("box")
    state.pid_start += 1  # as if the sandbox process were gone and its pid reused
    store.save(state)
    code, out = run(root, "list", "box")
    assert code == 1 and 'container "box" is not running' in out


def test_refused_donation_closes_the_fds(monitor):
    from sentry.seccheck.sinks.remote import connect_remote

    fd = connect_remote(monitor.path)
    bad = {"name": "Default", "points": [{"name": "syscall/bogus/enter"}], "sinks": []}
    with pytest.raises(REFUSALS, match="unknown point"):
        OPERATIONS["trace_create"]({"config": bad, "fd_sinks": [0]}, [fd])
    with pytest.raises(OSError):
        os.fstat(fd)
