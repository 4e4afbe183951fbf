"""The `remote` sink: points streamed to a monitor over a SOCK_SEQPACKET unix socket.

The connection is made outside the Sentry (`connect_remote`, called by the
CLI or bootstrap that creates the session) and only its fd is handed in,
because the Sentry makes no host sockets of its own. Sends never block: when
the monitor is not keeping up (EAGAIN) the point is retried `retries` times
with doubling backoff and then dropped; a monitor that went away stops the
sink. Either way the drop is counted and the next header that gets through
carries the count, so the monitor knows what it missed.
"""

from __future__ import annotations

import errno
import socket
import threading
import time

from google.protobuf.message import Message

from sentry.seccheck import wire
from sentry.seccheck.config import DEFAULT_BACKOFF, DEFAULT_BACKOFF_MAX

SETUP_TIMEOUT = 10.0
_FLAGS = socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL


class SinkSetupError(Exception):
    """The monitor could not be reached or did not answer the handshake."""


def connect_remote(endpoint: str, timeout: float = SETUP_TIMEOUT) -> int:
    """Connect to the monitor at `endpoint` and handshake; return the non-blocking fd (the caller owns it)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(endpoint)
        except OSError as e:
            raise SinkSetupError(f"remote sink: cannot connect to {endpoint}: {e.strerror or e}") from e
        try:
            sock.send(wire.handshake())
            reply = sock.recv(wire.HANDSHAKE_BUFFER)
        except TimeoutError as e:
            raise SinkSetupError(
                f"remote sink: {endpoint} did not answer the handshake in {timeout:g}s"
            ) from e
        except OSError as e:
            raise SinkSetupError(f"remote sink: handshake with {endpoint} failed: {e.strerror or e}") from e
        if not reply:
            raise SinkSetupError(f"remote sink: {endpoint} closed the connection during the handshake")
        try:
            wire.peer_version(reply)
        except wire.HandshakeError as e:
            raise SinkSetupError(f"remote sink: {endpoint}: {e}") from e
        sock.setblocking(False)
        return sock.detach()
    finally:
        sock.close()


class RemoteSink:
    """Sends each point as one packet: header + payload. Owns `fd` from now on."""

    name = "remote"

    def __init__(
        self,
        fd: int,
        retries: int = 0,
        backoff: float = DEFAULT_BACKOFF,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
    ) -> None:
        self._sock = socket.socket(fileno=fd)
        self._sock.setblocking(False)
        self._retries = retries
        self._backoff = backoff
        self._backoff_max = backoff_max
        self._dropped = 0
        self._lock = threading.Lock()
        self._closed = False

    @property
    def dropped(self) -> int:
        return self._dropped

    def emit(self, message_type: int, message: Message) -> None:
        if self._closed:
            self._drop()
            return
        packet = (wire.header(message_type, self._dropped), message.SerializeToString())
        try:
            self._sock.sendmsg(packet, (), _FLAGS)
        except BlockingIOError:
            self._retry(packet)
        except OSError as e:
            if e.errno != errno.EMSGSIZE:
                self._closed = True  # the monitor hung up: stop paying for sends that cannot succeed
            self._drop()

    def _retry(self, packet: tuple[bytes, bytes]) -> None:
        delay = self._backoff
        for _ in range(self._retries):
            time.sleep(delay)
            delay = min(delay * 2, self._backoff_max)
            try:
                self._sock.sendmsg(packet, (), _FLAGS)
                return
            except BlockingIOError:
                continue
            except OSError:
                self._closed = True
                break
        self._drop()

    def _drop(self) -> None:
        with self._lock:
            self._dropped += 1

    def close(self) -> None:
        self._closed = True
        self._sock.close()
