"""epoll, eventfd, timerfd, signalfd and inotify from static C programs, on every usable platform."""

from __future__ import annotations

import os
import subprocess

import pytest

PROGRAMS = ["epoll_modes", "timerfd_ticks", "signalfd_usr1", "inotify_tmp"]


@pytest.mark.parametrize("name", PROGRAMS)
def test_event_program(sandbox_run, cprogram, name):
    r = sandbox_run([cprogram(name)])
    assert (r.code, r.out) == (0, f"{name} ok\n"), r.out + r.err
    assert "Sentry bug" not in r.log and "raised" not in r.log, r.log[-4000:]


@pytest.mark.parametrize("name", PROGRAMS)
def test_event_program_expectations_hold_on_linux(cprogram, name):
    env = {**os.environ, "KVMSANDBOX_TEST_NATIVE": "1"}
    r = subprocess.run([cprogram(name)], capture_output=True, text=True, timeout=60, env=env)
    assert (r.returncode, r.stdout) == (0, f"{name} ok\n"), r.stdout + r.stderr
