"""Go duration strings ("25us", "10ms", "1m30s"): runsc's remote sink takes its backoffs in this form."""

from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_TERM = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string; ValueError for anything time.ParseDuration rejects."""
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0.0
    if not body:
        raise ValueError(f"invalid duration {text!r}")
    total, pos = 0.0, 0
    while pos < len(body):
        match = _TERM.match(body, pos)
        if match is None:
            raise ValueError(f"invalid duration {text!r} (expected a number and a unit ns|us|ms|s|m|h)")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return -total if text.startswith("-") else total
