"""Debian's `tail -f` (coreutils, inotify + poll) follows a file another process appends to."""

from __future__ import annotations

SCRIPT = """
echo one > /tmp/followed
tail -f /tmp/followed & follower=$!
sleep 0.5
echo two >> /tmp/followed
sleep 0.3
echo three >> /tmp/followed
sleep 0.5
kill $follower
wait
echo stopped
"""


def test_tail_follows_appends(debian_do):
    r = debian_do(["/bin/bash", "-c", SCRIPT])
    assert (r.returncode, r.stdout.decode()) == (0, "one\ntwo\nthree\nstopped\n"), r.stderr.decode()[-3000:]
