"""Fixtures for the trace tests: a fake Sentry task (trace_fakes.py), monitors, sessions."""

from __future__ import annotations

import shutil
import tempfile

import pytest
from trace_fakes import make_task
from trace_monitor import Monitor

from sentry.seccheck import hooks, session


@pytest.fixture
def task():
    return make_task()


@pytest.fixture
def sock_dir():
    """A short directory for unix socket paths (sun_path holds 108 bytes)."""
    path = tempfile.mkdtemp(prefix="trace", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def monitor(sock_dir):
    mon = Monitor(f"{sock_dir}/mon.sock")
    yield mon
    mon.close()


@pytest.fixture(autouse=True)
def _no_session_left():
    """Every test starts and ends with no active session."""
    yield
    current = session.describe_all()
    if current:
        session.delete(current[0]["name"])
    assert all(h is None for h in hooks.SYSCALL_ENTER + hooks.SYSCALL_EXIT)
    assert hooks.SYSCALL_TRACED == [False]
