"""The `null` sink: takes every point and does nothing, so a session measures the points alone."""

from __future__ import annotations

from google.protobuf.message import Message


class NullSink:
    name = "null"
    dropped = 0

    def emit(self, message_type: int, message: Message) -> None:
        """Discard the point."""

    def close(self) -> None:
        """Nothing to release."""
