"""Message framing shared by the gofer server and client.

The connection is an AF_UNIX SOCK_SEQPACKET pair, so the kernel keeps message
boundaries: one protobuf message is one packet, and donated fds ride along as
SCM_RIGHTS on the same packet. No length prefix is needed; each packet starts
with a version byte instead, so that an empty message is never an empty
packet (which recvmsg could not tell from the peer hanging up).
"""

from __future__ import annotations

import socket

from google.protobuf.message import DecodeError, Message

# Largest packet either side sends; ReadDir pages are sized to stay below it.
MAX_MESSAGE = 1 << 20
MAX_FDS = 4
VERSION = b"\x01"


class ProtocolError(Exception):
    """The peer sent something that is not a well-formed message."""


def send(sock: socket.socket, message: Message, fds: list[int] | tuple[int, ...] = ()) -> None:
    data = VERSION + message.SerializeToString()
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.sendall(data)


def recv(sock: socket.socket, message_type: type[Message]) -> tuple[Message, list[int]] | None:
    """Receive one message; None when the peer has closed the connection."""
    data, fds, flags, _ = socket.recv_fds(sock, MAX_MESSAGE, MAX_FDS)
    if not data and not fds:
        return None
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
        for fd in fds:
            socket.close(fd)
        raise ProtocolError("truncated packet")
    message = message_type()
    try:
        if data[:1] != VERSION:
            raise DecodeError("unknown wire version")
        message.ParseFromString(data[1:])
    except DecodeError as e:
        for fd in fds:
            socket.close(fd)
        raise ProtocolError(str(e)) from e
    return message, fds
