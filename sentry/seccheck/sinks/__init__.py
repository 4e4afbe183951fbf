"""Where trace points go: `null` (discards, for tests and overhead measurements) and `remote`.

A sink runs in the Sentry's task threads: `emit` must be cheap, never block
on the consumer and never raise. `dropped` counts the points it could not
deliver (what `trace list` shows).
"""

from __future__ import annotations

from typing import Protocol

from google.protobuf.message import Message


class Sink(Protocol):
    name: str

    @property
    def dropped(self) -> int: ...

    def emit(self, message_type: int, message: Message) -> None: ...

    def close(self) -> None: ...
