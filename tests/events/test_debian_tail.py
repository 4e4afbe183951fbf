"""Debian's `tail -f` and `tail -F` (coreutils: inotify + poll) follow a file another process changes."""

from __future__ import annotations

FOLLOW = """
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

# A log rotated by rename and re-creation: -F follows the name to the new file.
ROTATE = """
echo one > /tmp/log
tail -F /tmp/log 2>/dev/null & follower=$!
sleep 0.5
echo two >> /tmp/log
sleep 0.3
mv /tmp/log /tmp/log.1
echo three > /tmp/log
sleep 0.6
echo four >> /tmp/log
sleep 0.5
kill $follower
wait
echo stopped
"""


def test_tail_follows_appends(debian_do):
    r = debian_do(["/bin/bash", "-c", FOLLOW])
    assert (r.returncode, r.stdout.decode()) == (0, "one\ntwo\nthree\nstopped\n"), r.stderr.decode()[-3000:]


def test_tail_follows_a_rotated_name(debian_do):
    r = debian_do(["/bin/bash", "-c", ROTATE])
    expected = "one\ntwo\nthree\nfour\nstopped\n"
    assert (r.returncode, r.stdout.decode()) == (0, expected), r.stderr.decode()[-3000:]
