"""Logging in the sandbox process: to `--log` and `--debug-log`, never to the container's stdio.

The sandbox process's fds 1 and 2 are the container's output (what `docker
logs` shows), so its own warnings go where the CLI's go: one JSON object per
line in `--log` when its format is json (what the shim reads), text
otherwise; everything at debug level to `--debug-log`. With neither, they are
dropped.
"""

from __future__ import annotations

import json
import logging
import time


class JsonFormatter(logging.Formatter):
    """runc's --log-format json records: {"level", "msg", "time"}."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        return json.dumps({"level": record.levelname.lower(), "msg": record.getMessage(), "time": stamp})


def configure(log: str | None, log_format: str, debug_log: str | None) -> None:
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if debug_log else logging.INFO)
    root.addHandler(logging.NullHandler())  # never Python's last-resort handler on stderr
    if log:
        handler = logging.FileHandler(log, delay=True)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(
            JsonFormatter() if log_format == "json" else logging.Formatter("%(levelname).1s %(message)s")
        )
        root.addHandler(handler)
    if debug_log:
        debug = logging.FileHandler(debug_log, delay=True)
        debug.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s %(name)s] %(message)s"))
        root.addHandler(debug)
