"""Logging in the sandbox process: to `--log` and `--debug-log`, never to the container's stdio.

The sandbox process's fds 1 and 2 are the container's output (what `docker
logs` shows), so its own warnings go where the CLI's go: one JSON object per
line in `--log` when its format is json (what the shim reads), text
otherwise; everything at debug level to `--debug-log`. With neither, they are
dropped. The files are opened at once: the sandbox process confines itself
after boot and cannot open host paths later.
"""

from __future__ import annotations

import contextlib
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
        text = logging.Formatter("%(levelname).1s %(message)s")
        _add_file(root, log, logging.WARNING, JsonFormatter() if log_format == "json" else text)
    if debug_log:
        _add_file(
            root,
            debug_log,
            logging.DEBUG,
            logging.Formatter("%(asctime)s %(levelname).1s %(name)s] %(message)s"),
        )


def _add_file(root: logging.Logger, path: str, level: int, formatter: logging.Formatter) -> None:
    """A log file we cannot open is skipped: logging never stops the sandbox from booting."""
    with contextlib.suppress(OSError):
        handler = logging.FileHandler(path)
        handler.setLevel(level)
        handler.setFormatter(formatter)
        root.addHandler(handler)
