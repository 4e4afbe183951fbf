"""sockaddr_un decoding/encoding and control-message parsing, without a sandbox."""

from __future__ import annotations

import errno
import struct

import pytest

from sentry.errors import Errno
from sentry.net import cmsg, sockaddr


def raw(path: bytes, family: int = sockaddr.AF_UNIX) -> bytes:
    return struct.pack("<H", family) + path


@pytest.mark.parametrize(
    ("addr", "name"),
    [
        (raw(b"/tmp/s\0"), b"/tmp/s"),
        (raw(b"/tmp/s"), b"/tmp/s"),  # the length need not count the NUL
        (raw(b"/tmp/s\0garbage"), b"/tmp/s"),
        (raw(b"\0abstract\0with nul"), b"\0abstract\0with nul"),  # every byte of an abstract name counts
        (raw(b""), b""),  # autobind
        (raw(b"\0"), b"\0"),  # an abstract name may be empty
        (raw(b"x" * 108), b"x" * 108),
    ],
)
def test_decode(addr, name):
    assert sockaddr.decode(addr) == name


@pytest.mark.parametrize("addr", [b"", b"\x01", raw(b"/p", sockaddr.AF_INET), raw(b"x" * 109)])
def test_decode_rejects(addr):
    with pytest.raises(Errno) as e:
        sockaddr.decode(addr)
    assert e.value.code == errno.EINVAL


def test_encode_adds_the_nul_to_paths_only():
    assert sockaddr.encode(b"/s") == raw(b"/s\0")
    assert sockaddr.encode(b"\0ab") == raw(b"\0ab")
    assert sockaddr.encode(b"") == raw(b"")


class NoFiles:
    """A task whose fd table has nothing: SCM_RIGHTS must fail before taking references."""

    class fds:  # noqa: N801
        @staticmethod
        def get(fd):
            raise Errno(errno.EBADF)


@pytest.mark.parametrize(
    ("control", "code"),
    [
        (struct.pack("<Qii", 8, 1, 1), errno.EINVAL),  # cmsg_len below the header
        (struct.pack("<Qii", 64, 1, 1), errno.EINVAL),  # cmsg_len past the buffer
        (struct.pack("<Qii", 16, 0, 1), errno.EINVAL),  # not SOL_SOCKET
        (struct.pack("<Qii", 16, 1, 99), errno.EINVAL),  # unknown type
        (struct.pack("<Qiii", 20, 1, 1, 5), errno.EBADF),
        (struct.pack("<Qiii", 20, 1, 1, -1), errno.EBADF),
        (struct.pack("<Qii", 16 + 4 * 254, 1, 1) + bytes(4 * 254), errno.EINVAL),  # over SCM_MAX_FD
    ],
)
def test_decode_control_rejects(control, code):
    with pytest.raises(Errno) as e:
        cmsg.decode(NoFiles(), control)
    assert e.value.code == code


def test_empty_and_short_control_carry_nothing():
    assert cmsg.decode(NoFiles(), b"") == ([], None)
    assert cmsg.decode(NoFiles(), b"\0" * 15) == ([], None)
