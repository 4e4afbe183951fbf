"""tests/debian: Debian bookworm's own programs in the sandbox (fixtures: tests/net/sandbox_fixtures.py)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "net"))

from sandbox_fixtures import debian_do, debian_root, platform_name  # noqa: E402

__all__ = ["debian_do", "debian_root", "platform_name"]
