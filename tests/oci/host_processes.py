"""Which host processes are still running, for tests that a failed create leaves none behind."""

from __future__ import annotations

import os


def processes_mentioning(text: str) -> list[str]:
    """Pids of live processes whose command line holds `text` (a test's tmp_path: its sandbox, gofer)."""
    return [pid for pid in os.listdir("/proc") if pid.isdigit() and text in _cmdline(pid)]


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""  # it exited meanwhile
