"""tests/net: AF_UNIX sockets exercised by real programs in the sandbox (fixtures: sandbox_fixtures.py)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from sandbox_fixtures import cprogram, debian_do, debian_root, platform_name, sandbox_run  # noqa: E402

__all__ = ["cprogram", "debian_do", "debian_root", "platform_name", "sandbox_run"]
