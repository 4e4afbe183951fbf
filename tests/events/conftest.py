"""tests/events: epoll, eventfd, timerfd, signalfd, inotify from real programs (fixtures: tests/net)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "net"))

from sandbox_fixtures import cprogram, debian_do, debian_root, platform_name, sandbox_run  # noqa: E402

__all__ = ["cprogram", "debian_do", "debian_root", "platform_name", "sandbox_run"]
