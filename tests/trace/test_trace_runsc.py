"""Debian runsc's real trace stream, read by the independent monitor and by our generated messages.

The acceptance workload and session file live here, and the kvmsandbox run (the
same container, `--pod-init-config=... run --bundle`) is checked against the same
expectations.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest
from google.protobuf.unknown_fields import UnknownFieldSet
from trace_monitor import Monitor, decode, one

from bootstrap.default_spec import default_spec
from sentry.seccheck.config import load_pod_init_config
from sentry.seccheck.messages import MESSAGE_CLASSES

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKLOAD = ["sh", "-c", "ls / > /dev/null; sleep 0.1"]
RUNSC = ["runsc", "--rootless=false", "--network=none", "--platform=ptrace"]
CTX = ["time", "thread_id", "group_id", "container_id", "process_name", "credentials", "cwd"]
# container/start, sentry clone/execve/exit_notify_parent/task_exit, openat, execve, fork.
EXPECTED_TYPES = {1, 2, 3, 4, 5, 7, 11, 29}


def acceptance_session(endpoint: str) -> dict:
    def p(name: str, *optional: str) -> dict:
        return {"name": name, "optional_fields": list(optional), "context_fields": CTX}

    return {
        "trace_session": {
            "name": "Default",
            "points": [
                p("container/start", "env"),
                p("sentry/clone"),
                p("sentry/execve", "binary_info"),
                p("sentry/exit_notify_parent"),
                p("sentry/task_exit"),
                p("syscall/openat/enter", "fd_path"),
                p("syscall/openat/exit", "fd_path"),
                p("syscall/execve/enter", "envv"),
                p("syscall/fork/exit"),
                p("syscall/vfork/exit"),
                p("syscall/clone/exit"),
            ],
            "sinks": [{"name": "remote", "config": {"endpoint": endpoint}}],
        }
    }


def check_acceptance_stream(mon: Monitor) -> None:
    """What a monitor must see for WORKLOAD, whichever runtime produced it."""
    assert mon.handshakes == [b"\x08\x01"]
    assert mon.types() >= EXPECTED_TYPES, sorted(mon.types())
    (start,) = mon.of_type(1)
    f = start.fields()
    assert [a.decode() for a in f[4]] == WORKLOAD
    assert any(e.startswith(b"PATH=") for e in f[5])  # the optional env
    init_pid = one(decode(one(f, 1)), 4)
    clones = [p.fields() for p in mon.of_type(2)]
    assert clones and all(one(decode(one(c, 1)), 4) == init_pid for c in clones)  # sh forks the children
    children = {one(c, 4) for c in clones}
    assert init_pid not in children
    execs = [p.fields() for p in mon.of_type(3)]
    binaries = {one(e, 2).decode().rsplit("/", 1)[-1] for e in execs}
    assert {"ls", "sleep"} <= binaries
    assert {one(decode(one(e, 1)), 4) for e in execs} <= children
    opens = [p.fields() for p in mon.of_type(7)]
    assert any(one(o, 3) == 257 and one(o, 6) for o in opens)
    assert any(2 in o for o in opens)  # exit points carry the result
    exits = mon.of_type(5)
    assert len(exits) >= 3  # ls, sleep and sh
    assert {one(decode(one(p.fields(), 1)), 4) for p in exits} >= children | {init_pid}


NO_RUNSC = shutil.which("runsc") is None or os.geteuid() != 0
NO_RUNSC_REASON = "needs Debian runsc and root (--rootless=false)"


def container_bundle(directory: str) -> str:
    """An OCI bundle running WORKLOAD with the host's / (read-only) as its root, for either runtime."""
    bundle = f"{directory}/bundle"
    os.makedirs(bundle, exist_ok=True)
    spec = default_spec(WORKLOAD)
    spec["root"] = {"path": "/", "readonly": True}
    with open(f"{bundle}/config.json", "w") as f:
        json.dump(spec, f)
    return bundle


def run_monitored(sock_dir: str, runtime: list[str]) -> Monitor:
    """Run WORKLOAD as a container (`run --bundle`) under `runtime` with the acceptance session;
    return the monitor that watched it."""
    mon = Monitor(f"{sock_dir}/mon.sock")
    config = f"{sock_dir}/pod.json"
    with open(config, "w") as f:
        json.dump(acceptance_session(mon.path), f)
    state = tempfile.mkdtemp(prefix="state", dir=sock_dir)
    try:
        cmd = ["timeout", "60", *runtime, f"--root={state}", f"--pod-init-config={config}"]
        cmd += ["run", "--bundle", container_bundle(sock_dir), "trace-acceptance"]
        result = subprocess.run(
            cmd, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL, cwd=REPO
        )
        assert result.returncode == 0, result.stderr[-2000:]
        mon.closed.wait(10)
    finally:
        mon.close()
    return mon


@pytest.mark.skipif(NO_RUNSC, reason=NO_RUNSC_REASON)
def test_runsc_stream(sock_dir):
    mon = run_monitored(sock_dir, RUNSC)
    check_acceptance_stream(mon)
    for packet in mon.packets:  # our .proto files decode runsc's payloads completely
        message = MESSAGE_CLASSES[packet.message_type].FromString(packet.payload)
        assert len(UnknownFieldSet(message)) == 0, (packet.message_type, message)
        assert len(UnknownFieldSet(message.context_data)) == 0


@pytest.mark.skipif(NO_RUNSC, reason=NO_RUNSC_REASON)
def test_kvmsandbox_and_runsc_send_the_same_message_types(sock_dir):
    ours = run_monitored(sock_dir, [sys.executable, "-m", "cli.main"])
    theirs = run_monitored(sock_dir, RUNSC)
    check_acceptance_stream(ours)
    check_acceptance_stream(theirs)
    assert ours.types() == theirs.types()


def test_acceptance_session_is_valid_here(sock_dir):
    """The session file given to runsc is one kvmsandbox accepts unchanged, unknown-key checks included."""
    path = f"{sock_dir}/pod.json"
    with open(path, "w") as f:
        json.dump(acceptance_session(f"{sock_dir}/mon.sock"), f)
    config = load_pod_init_config(path)
    assert config is not None and len(config.points) == 11
