"""What the socket system calls need of every socket, whichever family serves it.

sentry/syscalls/net.py copies arguments in and results out; a family only
sees checked values: raw address bytes (at most 128) it decodes itself,
payloads already copied in, option values as bytes.
"""

from __future__ import annotations

import errno
from typing import Any

from sentry.errors import Errno
from sentry.net.unix.message import Creds, Received
from sentry.vfs.file import FileDescription


class Socket(FileDescription):
    family: int
    kind: int
    # The largest datagram/record a send may carry; bigger is EMSGSIZE before anything is copied.
    max_record: int

    def decode_addr(self, raw: bytes) -> Any:
        """An app's sockaddr as this family's name; EINVAL/EAFNOSUPPORT when malformed."""
        raise NotImplementedError

    def decode_bind_addr(self, raw: bytes) -> Any:
        """bind's address (some families take more there than elsewhere)."""
        return self.decode_addr(raw)

    def encode_addr(self, name: Any) -> bytes:
        """A name as the sockaddr the app gets back."""
        raise NotImplementedError

    def bind(self, task, name: Any) -> None:
        raise NotImplementedError

    def listen(self, backlog: int) -> None:
        raise NotImplementedError

    def connect(self, task, name: Any) -> None:
        raise NotImplementedError

    def disconnect(self) -> None:
        """connect(AF_UNSPEC): a datagram socket forgets its default peer."""

    def accept(self, task, flags: int) -> Socket:
        raise NotImplementedError

    def local_address(self) -> bytes:
        raise NotImplementedError

    def remote_address(self) -> bytes:
        """getpeername's sockaddr; ENOTCONN without a peer."""
        raise NotImplementedError

    def accept_address(self) -> bytes:
        """The peer's sockaddr as accept reports it for this (just accepted) socket."""
        return self.remote_address()

    def shutdown(self, how: int) -> None:
        raise NotImplementedError

    def send(
        self,
        task,
        data: bytes,
        flags: int,
        *,
        to: Any = None,
        rights: list[FileDescription] | None = None,
        creds: Creds | None = None,
    ) -> int:
        """Send data; the caller's references in `rights` pass to the socket (released on failure)."""
        raise NotImplementedError

    def recv(self, task, count: int, flags: int) -> Received:
        raise NotImplementedError

    def set_option(self, task, level: int, name: int, value: bytes) -> None:
        raise NotImplementedError

    def get_option(self, task, level: int, name: int) -> bytes:
        raise NotImplementedError


def refuse_ancillary(rights: list[FileDescription] | None, creds: Creds | None) -> None:
    """EINVAL for SCM_RIGHTS/SCM_CREDENTIALS on a socket not AF_UNIX, releasing the passed files."""
    if rights or creds is not None:
        for file in rights or ():
            file.decref()
        raise Errno(errno.EINVAL)
