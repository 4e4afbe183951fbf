"""Garbage pointers, lengths, flags and fds to socket and event-file calls: errnos, never a Sentry bug."""

from __future__ import annotations


def test_hostile_arguments_return_errnos(sandbox_run, cprogram):
    r = sandbox_run([cprogram("hostile")], timeout=300)
    assert r.code == 0 and r.out.endswith("hostile done 20000\n"), (r.out[-2000:], r.err[-2000:])
    assert "raised" not in r.log and "Sentry bug" not in r.log, r.log[-4000:]
