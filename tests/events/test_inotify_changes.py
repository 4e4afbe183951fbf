"""How inotify turns two directory listings into events, and the inotify_event layout, without a sandbox."""

from __future__ import annotations

import struct

from sentry.vfs.events import inotify as ino


def names(events):
    return [(mask & ~ino.IN_ISDIR, name, bool(cookie)) for mask, name, cookie in events]


def test_created_and_deleted_names():
    old = {b"a": (1, False), b"d": (2, True)}
    new = {b"a": (1, False), b"b": (3, False)}
    events = ino.entry_changes(old, new)
    assert names(events) == [(ino.IN_DELETE, b"d", False), (ino.IN_CREATE, b"b", False)]
    assert events[0][0] & ino.IN_ISDIR


def test_rename_pairs_moved_from_and_to_with_one_cookie():
    events = ino.entry_changes({b"log": (7, False)}, {b"log.1": (7, False)})
    assert names(events) == [(ino.IN_MOVED_FROM, b"log", True), (ino.IN_MOVED_TO, b"log.1", True)]
    assert events[0][2] == events[1][2]


def test_rotation_is_a_move_and_a_create():
    events = ino.entry_changes({b"log": (7, False)}, {b"log": (8, False), b"log.1": (7, False)})
    assert names(events) == [
        (ino.IN_MOVED_FROM, b"log", True),
        (ino.IN_MOVED_TO, b"log.1", True),
        (ino.IN_CREATE, b"log", False),
    ]


def test_replaced_inode_under_the_same_name():
    assert names(ino.entry_changes({b"f": (1, False)}, {b"f": (2, False)})) == [
        (ino.IN_DELETE, b"f", False),
        (ino.IN_CREATE, b"f", False),
    ]


def test_event_layout_pads_names_to_16_bytes():
    event = ino.pack_event(3, ino.IN_CREATE, b"new-file", 0)
    wd, mask, cookie, length = struct.unpack_from("<iIII", event)
    assert (wd, mask, cookie, length) == (3, ino.IN_CREATE, 0, 16)
    assert event[16:] == b"new-file".ljust(16, b"\0")
    assert len(ino.pack_event(1, ino.IN_MODIFY, b"")) == 16
    assert struct.unpack_from("<I", ino.pack_event(1, 0, b"x" * 16), 12)[0] == 32
