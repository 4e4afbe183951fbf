"""epoll, eventfd, timerfd, signalfd and inotify from static C programs, on every usable platform."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("name", ["epoll_modes", "timerfd_ticks", "signalfd_usr1", "inotify_tmp"])
def test_event_program(sandbox_run, cprogram, name):
    r = sandbox_run([cprogram(name)])
    assert (r.code, r.out) == (0, f"{name} ok\n"), r.out + r.err
    assert "Sentry bug" not in r.log and "raised" not in r.log, r.log[-4000:]
