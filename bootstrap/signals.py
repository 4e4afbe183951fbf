"""Signal names and numbers as `kill` takes them: 15, TERM, SIGTERM, term."""

from __future__ import annotations

import signal

from bootstrap.errors import OCIError


def parse_signal(text: str) -> int:
    """The signal number for a number or a (case-insensitive, SIG-optional) name."""
    if text.isdigit():
        signo = int(text)
        if 0 < signo < signal.NSIG:
            return signo
        raise OCIError(f"invalid signal {text!r}: not in 1..{signal.NSIG - 1}")
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name.startswith("SIGRTMIN+") or name.startswith("SIGRTMAX-"):
        base, _, offset = name.partition("+" if "+" in name else "-")
        if offset.isdigit():
            signo = signal.SIGRTMIN + int(offset) if base == "SIGRTMIN" else signal.SIGRTMAX - int(offset)
            if signal.SIGRTMIN <= signo <= signal.SIGRTMAX:
                return signo
    member = signal.Signals.__members__.get(name)
    if member is None:
        raise OCIError(f"invalid signal {text!r}: unknown name")
    return int(member)
