"""Session files: what runsc accepts parses, each malformed case fails with an error naming the problem."""

from __future__ import annotations

import json

import pytest

from sentry.seccheck.config import (
    DEFAULT_BACKOFF,
    ConfigError,
    load_pod_init_config,
    load_session_file,
    parse_session,
)

REMOTE = {"name": "remote", "config": {"endpoint": "/tmp/gvisor_events.sock"}}

# The session from the seed article (runsc's documentation example).
SEED = {
    "trace_session": {
        "name": "Default",
        "points": [
            {"name": "sentry/clone"},
            {"name": "syscall/fork/enter", "context_fields": ["group_id", "process_name"]},
            {"name": "syscall/fork/exit", "context_fields": ["group_id", "process_name"]},
            {"name": "syscall/execve/enter", "context_fields": ["group_id", "process_name"]},
            {"name": "syscall/sysno/35/enter", "context_fields": ["group_id", "process_name"]},
            {"name": "syscall/sysno/35/exit"},
        ],
        "sinks": [REMOTE],
    }
}


def write(tmp_path, obj) -> str:
    path = tmp_path / "session.json"
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


def session(**changes):
    base = {"name": "Default", "points": [{"name": "sentry/clone"}], "sinks": [REMOTE]}
    base.update(changes)
    return base


def test_seed_session_parses(tmp_path):
    config = load_pod_init_config(write(tmp_path, SEED))
    assert config is not None
    names = [p.point.name for p in config.points]
    assert names[0] == "sentry/clone" and "syscall/sysno/35/exit" in names
    fork = next(p for p in config.points if p.point.name == "syscall/fork/enter")
    assert fork.context_fields == {"group_id", "process_name"}
    (sink,) = config.sinks
    assert sink.remote.endpoint == "/tmp/gvisor_events.sock"
    assert sink.remote.retries == 0 and sink.remote.backoff == DEFAULT_BACKOFF
    assert not sink.ignore_setup_error


def test_trace_create_takes_bare_session_or_pod_init_file(tmp_path):
    assert load_session_file(write(tmp_path, SEED)).name == "Default"
    bare = load_session_file(write(tmp_path, SEED["trace_session"]))
    assert len(bare.points) == 6


def test_remote_options():
    config = parse_session(
        session(
            sinks=[
                {
                    "name": "remote",
                    "config": {"endpoint": "/x", "retries": 3, "backoff": "1ms", "backoff_max": "1.5s"},
                    "ignore_setup_error": True,
                },
                {"name": "null"},
            ]
        )
    )
    remote, null = config.sinks
    assert (remote.remote.retries, remote.remote.backoff, remote.remote.backoff_max) == (3, 1e-3, 1.5)
    assert remote.ignore_setup_error and null.remote is None


def test_retries_may_be_an_integral_json_float():
    config = parse_session(session(sinks=[{"name": "remote", "config": {"endpoint": "/x", "retries": 2.0}}]))
    assert config.sinks[0].remote.retries == 2


def test_ignore_missing_skips_unknown_points_and_fields():
    config = parse_session(
        session(
            ignore_missing=True,
            points=[
                {"name": "syscall/nosuch/enter"},
                {
                    "name": "syscall/openat/enter",
                    "optional_fields": ["fd_path", "bogus"],
                    "context_fields": ["x"],
                },
            ],
        )
    )
    (point,) = config.points
    assert point.point.name == "syscall/openat/enter"
    assert point.optional_fields == {"fd_path"} and point.context_fields == frozenset()


@pytest.mark.parametrize(
    ("obj", "needle"),
    [
        (session(name="Mine"), 'name must be "Default", got "Mine"'),
        (session(name=None), 'name must be "Default", got null'),
        (session(points=[{"name": "syscall/nosuch/enter"}]), 'unknown point "syscall/nosuch/enter"'),
        (session(points=[{"name": "syscall/sysno/451/enter"}]), 'unknown point "syscall/sysno/451/enter"'),
        (
            session(points=[{"name": "syscall/open/enter", "optional_fields": ["fd_path"]}]),
            'unknown optional field "fd_path"',
        ),
        (
            session(points=[{"name": "sentry/task_exit", "context_fields": ["pid"]}]),
            'unknown context field "pid"',
        ),
        (session(points=[{"name": "sentry/clone"}, {"name": "sentry/clone"}]), "listed twice"),
        (session(points="sentry/clone"), "points: expected a list, got a string"),
        (session(points=[{"name": 3}]), "points[0].name: expected a string"),
        (session(sinks=[{"name": "strace"}]), 'unknown sink "strace"'),
        (session(ignore_missing=True, sinks=[{"name": "strace"}]), 'unknown sink "strace"'),
        (
            session(sinks=[{"name": "remote", "config": {"endpoint": "/x", "retries": 1.5}}]),
            "retries: expected an integer, got 1.5",
        ),
        (
            session(sinks=[{"name": "remote", "config": {"endpoint": "/x", "retries": "3"}}]),
            'retries: expected an integer, got "3"',
        ),
        (
            session(sinks=[{"name": "remote", "config": {"endpoint": "/x", "retries": -1}}]),
            "retries: must not be negative",
        ),
        (
            session(sinks=[{"name": "remote", "config": {"endpoint": "/x", "backoff": "5"}}]),
            "backoff: invalid duration '5'",
        ),
        (
            session(sinks=[{"name": "remote", "config": {"endpoint": "/x", "backoff": 5}}]),
            "backoff: expected a string",
        ),
        (session(sinks=[{"name": "remote", "config": {}}]), 'remote sink needs "endpoint"'),
        (
            session(sinks=[{"name": "remote", "config": {"endpoint": "/x", "endpiont": "/y"}}]),
            'unknown remote sink option "endpiont"',
        ),
        (
            session(sinks=[{"name": "remote", "config": {"endpoint": "/x"}, "ignore_setup_error": "yes"}]),
            'ignore_setup_error: expected true or false, got "yes"',
        ),
        (session(ignore_missing=1), "ignore_missing: expected true or false, got 1"),
        ([], "expected a JSON object, got a list"),
    ],
)
def test_malformed_session(tmp_path, obj, needle):
    with pytest.raises(ConfigError) as err:
        load_session_file(write(tmp_path, obj))
    assert needle in str(err.value)


@pytest.mark.parametrize(
    ("obj", "needle"),
    [
        ({"trace_session": session(), "extra": 1}, 'unknown field "extra"'),
        ({"trace_session": session(extra=1)}, 'trace_session: unknown field "extra"'),
        (
            {"trace_session": session(points=[{"name": "sentry/clone", "fields": []}])},
            'points[0]: unknown field "fields"',
        ),
        ({"trace_session": session(sinks=[{**REMOTE, "retry": 1}])}, 'sinks[0]: unknown field "retry"'),
        ({"trace_session": session(options={"cache": 1})}, 'options: unknown field "cache"'),
        ({"trace_session": session(name="default")}, 'name must be "Default", got "default"'),
    ],
)
def test_malformed_pod_init_config(tmp_path, obj, needle):
    """--pod-init-config rejects unknown keys at every level (runsc decodes with DisallowUnknownFields)."""
    path = write(tmp_path, obj)
    with pytest.raises(ConfigError) as err:
        load_pod_init_config(path)
    assert needle in str(err.value) and path in str(err.value)


def test_trace_create_ignores_unknown_keys(tmp_path):
    """runsc's `trace create` decodes leniently: the same pod-init file with extra keys still works."""
    config = load_session_file(write(tmp_path, {"trace_session": session(extra=1), "other": True}))
    assert config.points[0].point.name == "sentry/clone"


def test_pod_init_config_without_session(tmp_path):
    assert load_pod_init_config(write(tmp_path, {})) is None


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read session file"):
        load_session_file(str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_session_file(write(tmp_path, "{name: Default"))
