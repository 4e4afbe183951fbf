"""The remote sink against an independent monitor: handshake, header, drops, dead and absent monitors."""

from __future__ import annotations

import os
import time

import pytest
from trace_monitor import Monitor, wait_for

from sentry.seccheck import session
from sentry.seccheck.config import parse_session
from sentry.seccheck.proto import common_pb2, sentry_pb2, syscall_pb2
from sentry.seccheck.sinks.remote import RemoteSink, SinkSetupError, connect_remote


def test_handshake_then_header_and_payload(monitor):
    fd = connect_remote(monitor.path)
    assert os.get_blocking(fd) is False  # sends never wait for the monitor
    sink = RemoteSink(fd)
    sink.emit(common_pb2.MESSAGE_SENTRY_TASK_EXIT, sentry_pb2.TaskExit())
    sink.emit(common_pb2.MESSAGE_SENTRY_TASK_EXIT, sentry_pb2.TaskExit(exit_status=256))
    wait_for(lambda: len(monitor.packets) == 2)
    sink.close()
    assert monitor.handshakes == [b"\x08\x01"]
    empty, status = monitor.packets
    assert (empty.header_size, empty.message_type, empty.dropped, empty.payload) == (8, 5, 0, b"")
    assert status.fields() == {2: [256]}
    wait_for(monitor.closed.is_set)  # closing the sink ends the connection


def test_stuck_monitor_never_blocks_and_drops_are_counted(monitor):
    sink = RemoteSink(connect_remote(monitor.path))
    monitor.pause()
    message = syscall_pb2.Open(sysno=257, fd=-100, pathname="/usr/lib/x86_64-linux-gnu/libc.so.6")
    start = time.perf_counter()
    for _ in range(20000):
        sink.emit(common_pb2.MESSAGE_SYSCALL_OPEN, message)
    per_emit = (time.perf_counter() - start) / 20000
    assert sink.dropped > 10000
    assert per_emit < 1e-3, f"{per_emit * 1e6:.0f} us per point with the monitor stuck"
    monitor.resume()
    wait_for(lambda: len(monitor.packets) >= 20000 - sink.dropped)
    dropped = sink.dropped
    sink.emit(common_pb2.MESSAGE_SYSCALL_CLOSE, syscall_pb2.Close(sysno=3, fd=4))
    wait_for(lambda: monitor.of_type(common_pb2.MESSAGE_SYSCALL_CLOSE))
    (marker,) = monitor.of_type(common_pb2.MESSAGE_SYSCALL_CLOSE)
    assert marker.dropped == dropped  # the next packet through tells the monitor what it missed
    drops = [p.dropped for p in monitor.packets]
    assert drops == sorted(drops)
    sink.close()


def test_retries_back_off_before_dropping(monitor):
    sink = RemoteSink(connect_remote(monitor.path), retries=3, backoff=0.002, backoff_max=0.004)
    monitor.pause()
    message = sentry_pb2.TaskExit(exit_status=1)
    while sink.dropped == 0:
        sink.emit(common_pb2.MESSAGE_SENTRY_TASK_EXIT, message)
    start = time.perf_counter()
    sink.emit(common_pb2.MESSAGE_SENTRY_TASK_EXIT, message)
    assert time.perf_counter() - start >= 0.002 + 0.004 + 0.004
    assert sink.dropped == 2
    sink.close()


def test_dead_monitor_never_raises(monitor):
    sink = RemoteSink(connect_remote(monitor.path))
    sink.emit(common_pb2.MESSAGE_SENTRY_TASK_EXIT, sentry_pb2.TaskExit())
    wait_for(lambda: len(monitor.packets) == 1)
    monitor.close()
    for _ in range(100):
        sink.emit(common_pb2.MESSAGE_SENTRY_TASK_EXIT, sentry_pb2.TaskExit())
    assert sink.dropped >= 99
    sink.close()
    sink.emit(common_pb2.MESSAGE_SENTRY_TASK_EXIT, sentry_pb2.TaskExit())


def test_monitor_not_listening(sock_dir):
    path = f"{sock_dir}/nobody.sock"
    with pytest.raises(SinkSetupError, match=f"cannot connect to {path}"):
        connect_remote(path)


def test_monitor_that_never_answers(sock_dir):
    mon = Monitor(f"{sock_dir}/mute.sock", reply=None)
    try:
        with pytest.raises(SinkSetupError, match="did not answer the handshake"):
            connect_remote(mon.path, timeout=0.2)
    finally:
        mon.close()


def test_monitor_with_older_version(sock_dir):
    mon = Monitor(f"{sock_dir}/old.sock", reply=b"\x08\x00")
    try:
        with pytest.raises(SinkSetupError, match="need at least 1"):
            connect_remote(mon.path)
    finally:
        mon.close()


def remote_session(endpoint: str, ignore: bool):
    sink = {"name": "remote", "config": {"endpoint": endpoint}, "ignore_setup_error": ignore}
    return parse_session({"name": "Default", "points": [{"name": "sentry/task_exit"}], "sinks": [sink]})


def test_setup_fails_unless_ignore_setup_error(sock_dir, caplog):
    path = f"{sock_dir}/nobody.sock"
    with pytest.raises(SinkSetupError, match=path):
        session.setup_sinks(remote_session(path, ignore=False))
    config = remote_session(path, ignore=True)
    fds = session.setup_sinks(config)
    assert fds == [None]
    assert "ignore_setup_error" in caplog.text
    created = session.create(config, fds)
    assert created.sinks == ()
