"""State files under --root: create, lock, list, status from liveness, idempotent removal."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import pytest

from bootstrap import container, procinfo
from bootstrap.errors import OCIError
from bootstrap.state import ContainerState, NotFound, StateStore, oci_state, validate_id


def new_state(store: StateStore, cid: str = "c1", **fields: object) -> ContainerState:
    state = ContainerState.new(cid, "/b", "/b/rootfs", {"k": "v"})
    for name, value in fields.items():
        setattr(state, name, value)
    store.create(state)
    return state


@pytest.fixture
def store(tmp_path) -> StateStore:
    return StateStore(str(tmp_path / "root"))


@pytest.fixture
def live_process():
    proc = subprocess.Popen(["sleep", "30"])
    yield proc
    proc.kill()
    proc.wait()


def test_create_load_round_trip(store) -> None:
    state = new_state(store, status="created", pid=os.getpid(), pid_start=procinfo.start_time(os.getpid()))
    assert store.load("c1") == state
    assert oct(os.stat(os.path.join(store.dir("c1"), "state.json")).st_mode & 0o777) == "0o640"


def test_duplicate_id_is_refused(store) -> None:
    new_state(store)
    with pytest.raises(OCIError, match="already exists"):
        new_state(store)


@pytest.mark.parametrize("cid", ["../x", "a/b", "", "..", "a b"])
def test_unsafe_ids_are_refused(cid: str) -> None:
    with pytest.raises(OCIError, match="invalid container id"):
        validate_id(cid)


def test_missing_container(store) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        store.load("nope")
    with pytest.raises(NotFound), store.locked("nope"):
        pass


def test_status_follows_the_sandbox_process(store, live_process) -> None:
    start = procinfo.start_time(live_process.pid)
    state = new_state(store, status="running", pid=live_process.pid, pid_start=start)
    assert store.status(state) == "running"
    assert oci_state(store, state)["pid"] == live_process.pid
    # Same pid, different start time: a reused pid is not our sandbox.
    state.pid_start = start + 1
    assert store.status(state) == "stopped"
    state.pid_start = start
    live_process.kill()
    live_process.wait()
    assert store.status(state) == "stopped"
    assert oci_state(store, state)["pid"] == 0


def test_creating_without_pid(store) -> None:
    assert store.status(new_state(store)) == "creating"


def test_oci_state_json(store) -> None:
    doc = oci_state(store, new_state(store, status="created"))
    assert set(doc) == {
        "ociVersion",
        "id",
        "status",
        "pid",
        "bundle",
        "rootfs",
        "created",
        "owner",
        "annotations",
    }
    assert doc["annotations"] == {"k": "v"} and doc["created"].endswith("Z")
    json.dumps(doc)


def test_list_and_remove(store) -> None:
    assert store.list() == []
    for cid in ("b", "a"):
        new_state(store, cid)
    assert [s.id for s in store.list()] == ["a", "b"]
    store.remove("a")
    store.remove("a")  # idempotent
    assert store.ids() == ["b"]


def test_lock_serialises(store) -> None:
    new_state(store)
    order = []
    with store.locked("c1"):
        t = threading.Thread(target=lambda: store.locked("c1").__enter__() and order.append("second"))
        t.start()
        time.sleep(0.1)
        order.append("first")
    t.join(5)
    assert order == ["first", "second"]


def test_delete_force_cleans_after_kill_9(store, live_process) -> None:
    new_state(store, status="running", pid=live_process.pid, pid_start=procinfo.start_time(live_process.pid))
    live_process.kill()  # what `kill -9` of the sandbox process leaves
    live_process.wait()
    assert store.status(store.load("c1")) == "stopped"
    container.delete(store, "c1", force=True)
    assert store.ids() == []
    container.delete(store, "c1", force=True)  # idempotent
    with pytest.raises(NotFound):
        container.delete(store, "c1")


def test_delete_refuses_a_running_container_without_force(store, live_process) -> None:
    new_state(store, status="running", pid=live_process.pid, pid_start=procinfo.start_time(live_process.pid))
    with pytest.raises(OCIError, match="use --force"):
        container.delete(store, "c1")
    container.delete(store, "c1", force=True)
    assert live_process.wait(5) == -9
    assert store.ids() == []


def test_wait_reads_the_recorded_exit_status(store) -> None:
    new_state(store, status="running")
    with open(os.path.join(store.dir("c1"), "exit_status"), "w") as f:
        f.write("3")
    assert container.wait(store, "c1") == 3
