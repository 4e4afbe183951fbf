"""A trace monitor written from the wire format alone (facts/gvisor.md §3.3–3.4), not from sentry/seccheck.

It listens on a SOCK_SEQPACKET unix socket, answers each sandbox's handshake
with `Handshake{version=1}`, then records every packet's header and payload.
Payloads are decoded with a small protobuf wire decoder into
{field number: [values]} so tests check runsc's field numbers directly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import struct
import threading
import time

HANDSHAKE_V1 = b"\x08\x01"  # field 1 (version), varint 1


@dataclasses.dataclass
class Packet:
    header_size: int
    message_type: int
    dropped: int
    payload: bytes

    def fields(self) -> dict[int, list[int | bytes]]:
        return decode(self.payload)


def decode(data: bytes) -> dict[int, list[int | bytes]]:
    """Protobuf wire decoding: varints as ints, length-delimited as bytes, fixed as ints."""
    out: dict[int, list[int | bytes]] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = _varint(data, pos)
        elif wire_type == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire_type == 1:
            (value,), pos = struct.unpack_from("<Q", data, pos), pos + 8
        elif wire_type == 5:
            (value,), pos = struct.unpack_from("<I", data, pos), pos + 4
        else:
            raise ValueError(f"wire type {wire_type} at {pos}")
        out.setdefault(number, []).append(value)
    return out


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def wait_for(predicate, timeout: float = 5.0) -> None:
    """Poll until predicate() is true; the monitor reads on its own thread."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.005)


def signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def one(fields: dict[int, list[int | bytes]], number: int, default: int | bytes | None = None):
    values = fields.get(number)
    return values[-1] if values else default


class Monitor:
    """Accepts sandboxes on `path` and records their packets; `pause()` stops reading (a stuck monitor)."""

    def __init__(self, path: str, reply: bytes | None = HANDSHAKE_V1) -> None:
        self.path = path
        self.reply = reply
        self.handshakes: list[bytes] = []
        self.packets: list[Packet] = []
        self.closed = threading.Event()  # a connection ended
        self.ended = 0
        self.reading = threading.Event()
        self.reading.set()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._listener.bind(path)
        self._listener.listen(4)
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        """One monitor serves any number of sandboxes, each connection on its own thread."""
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        self.handshakes.append(conn.recv(65536))
        if self.reply is None:
            return  # a monitor that never answers
        conn.send(self.reply)
        while True:
            self.reading.wait()
            try:
                data = conn.recv(1 << 16)
            except OSError:
                break
            if not data:
                break
            header_size, message_type, dropped = struct.unpack_from("<HHI", data)
            self.packets.append(Packet(header_size, message_type, dropped, data[header_size:]))
        self.ended += 1
        self.closed.set()

    def pause(self) -> None:
        self.reading.clear()

    def resume(self) -> None:
        self.reading.set()

    def hang_up(self) -> None:
        for conn in self._conns:
            conn.shutdown(socket.SHUT_RDWR)

    def types(self) -> set[int]:
        return {p.message_type for p in self.packets}

    def of_type(self, message_type: int) -> list[Packet]:
        return [p for p in self.packets if p.message_type == message_type]

    def close(self) -> None:
        self.reading.set()
        for sock in (self._listener, *self._conns):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._thread.join(5)
        if os.path.exists(self.path):
            os.unlink(self.path)
