"""What travels between AF_UNIX sockets: bytes plus, optionally, file descriptions and credentials."""

from __future__ import annotations

import dataclasses

from sentry.vfs.file import FileDescription

# Linux's overflow ids: what SO_PEERCRED reports for a socket without a peer.
OVERFLOW_ID = 65534


@dataclasses.dataclass(frozen=True)
class Creds:
    """struct ucred: the sender as SO_PEERCRED and SCM_CREDENTIALS report it."""

    pid: int
    uid: int
    gid: int

    @classmethod
    def of(cls, task) -> Creds:
        return cls(task.tg.pid, task.creds.euid, task.creds.egid)


NO_CREDS = Creds(0, OVERFLOW_ID, OVERFLOW_ID)


@dataclasses.dataclass
class Message:
    """One send: a datagram/record, or a chunk of a stream (consumed from the front)."""

    data: bytes
    creds: Creds
    sender: bytes = b""  # the sender's bound name, for recvfrom on datagram sockets
    rights: list[FileDescription] = dataclasses.field(default_factory=list)

    def drop_rights(self) -> None:
        """Release the passed files nobody received."""
        rights, self.rights = self.rights, []
        for file in rights:
            file.decref()


@dataclasses.dataclass
class Received:
    """One recv's result: data, the message's real size (MSG_TRUNC), and ancillary data."""

    data: bytes
    size: int
    sender: bytes = b""
    rights: list[FileDescription] = dataclasses.field(default_factory=list)
    creds: Creds | None = None
    truncated: bool = False
