"""Session files: parse and validate them against the point catalogue, with errors that name the problem.

A session is runsc's JSON: `name` (only "Default"), `points` (each with
optional and context fields), `sinks` (`null` or `remote` with its config),
`ignore_missing` (skip unknown points and fields, never unknown sinks) and
`options`. `--pod-init-config` wraps it as `{"trace_session": ...}` and, like
runsc's DisallowUnknownFields decoding, rejects any key it does not know;
`trace create --config` ignores keys it does not know, as runsc does.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from sentry.seccheck.duration import parse_duration
from sentry.seccheck.points import POINTS, SINK_NAMES, Point

SESSION_NAME = "Default"
DEFAULT_BACKOFF = 25e-6
DEFAULT_BACKOFF_MAX = 10e-3

_SESSION_KEYS = {"name", "points", "sinks", "ignore_missing", "options"}
_POINT_KEYS = {"name", "optional_fields", "context_fields"}
_SINK_KEYS = {"name", "config", "ignore_setup_error"}
_OPTION_KEYS = {"execve_hash_cache_capacity"}
_REMOTE_KEYS = {"endpoint", "retries", "backoff", "backoff_max"}


class ConfigError(ValueError):
    """A session file that runsc would reject; the message says where and why."""


@dataclasses.dataclass(frozen=True)
class PointConfig:
    point: Point
    optional_fields: frozenset[str]
    context_fields: frozenset[str]


@dataclasses.dataclass(frozen=True)
class RemoteConfig:
    """The remote sink's settings; backoffs in seconds."""

    endpoint: str
    retries: int = 0
    backoff: float = DEFAULT_BACKOFF
    backoff_max: float = DEFAULT_BACKOFF_MAX


@dataclasses.dataclass(frozen=True)
class SinkConfig:
    name: str
    remote: RemoteConfig | None
    ignore_setup_error: bool


@dataclasses.dataclass(frozen=True)
class SessionConfig:
    """A validated session. `raw` is the JSON object it came from, what travels to the sandbox."""

    name: str
    points: tuple[PointConfig, ...]
    sinks: tuple[SinkConfig, ...]
    ignore_missing: bool
    raw: dict[str, Any]


def parse_session(raw: Any, *, strict: bool = False, where: str = "session") -> SessionConfig:
    """Validate a decoded session object; `strict` rejects unknown keys (pod-init-config)."""
    obj = _object(raw, where, _SESSION_KEYS, strict)
    name = obj.get("name")
    if name != SESSION_NAME:
        raise ConfigError(f'{where}: name must be "{SESSION_NAME}", got {json.dumps(name)}')
    ignore_missing = _bool(obj, "ignore_missing", where)
    _options(obj.get("options", {}), f"{where}.options", strict)
    points: dict[str, PointConfig] = {}
    for i, item in enumerate(_list(obj, "points", where)):
        parsed = _point(item, f"{where}.points[{i}]", ignore_missing, strict)
        if parsed is None:
            continue
        if parsed.point.name in points:
            raise ConfigError(f'{where}.points[{i}]: point "{parsed.point.name}" is listed twice')
        points[parsed.point.name] = parsed
    sinks = tuple(
        _sink(item, f"{where}.sinks[{i}]", strict) for i, item in enumerate(_list(obj, "sinks", where))
    )
    return SessionConfig(SESSION_NAME, tuple(points.values()), sinks, ignore_missing, obj)


def load_session_file(path: str) -> SessionConfig:
    """`trace create --config`: a bare session or a pod-init-config file, unknown keys ignored."""
    raw = _read_json(path)
    if isinstance(raw, dict) and "trace_session" in raw:
        return parse_session(raw["trace_session"], where=f"{path}: trace_session")
    return parse_session(raw, where=path)


def load_pod_init_config(path: str) -> SessionConfig | None:
    """`--pod-init-config`: `{"trace_session": ...}`, every key checked; None if it has no session."""
    raw = _object(_read_json(path), path, {"trace_session"}, strict=True)
    if "trace_session" not in raw:
        return None
    return parse_session(raw["trace_session"], strict=True, where=f"{path}: trace_session")


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read session file: {e.strerror}") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid JSON: {e}") from e


def _object(raw: Any, where: str, known: set[str], strict: bool) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {_kind(raw)}")
    unknown = sorted(set(raw) - known)
    if strict and unknown:
        raise ConfigError(f'{where}: unknown field "{unknown[0]}" (known: {", ".join(sorted(known))})')
    return raw


def _list(obj: dict[str, Any], key: str, where: str) -> list[Any]:
    value = obj.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{where}.{key}: expected a list, got {_kind(value)}")
    return value


def _bool(obj: dict[str, Any], key: str, where: str) -> bool:
    value = obj.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}.{key}: expected true or false, got {json.dumps(value)}")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {_kind(value)}")
    return value


def _integer(value: Any, where: str) -> int:
    """A JSON number with an integral value (runsc reads numbers as float64 and checks)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ConfigError(f"{where}: expected an integer, got {json.dumps(value)}")
    return int(value)


def _options(raw: Any, where: str, strict: bool) -> None:
    obj = _object(raw, where, _OPTION_KEYS, strict)
    if "execve_hash_cache_capacity" in obj:
        _integer(obj["execve_hash_cache_capacity"], f"{where}.execve_hash_cache_capacity")


def _point(raw: Any, where: str, ignore_missing: bool, strict: bool) -> PointConfig | None:
    obj = _object(raw, where, _POINT_KEYS, strict)
    name = _string(obj.get("name"), f"{where}.name")
    point = POINTS.get(name)
    if point is None:
        if ignore_missing:
            return None
        raise ConfigError(f'{where}: unknown point "{name}" (`trace metadata` lists them)')
    optional = _fields(obj, "optional_fields", point.optional_fields, f'{where} "{name}"', ignore_missing)
    context = _fields(obj, "context_fields", point.context_fields, f'{where} "{name}"', ignore_missing)
    return PointConfig(point, optional, context)


def _fields(
    obj: dict[str, Any], key: str, allowed: tuple[str, ...], where: str, ignore: bool
) -> frozenset[str]:
    chosen = set()
    for i, value in enumerate(_list(obj, key, where)):
        field = _string(value, f"{where}.{key}[{i}]")
        if field in allowed:
            chosen.add(field)
        elif not ignore:
            kind = key.removesuffix("s").replace("_", " ")
            raise ConfigError(f'{where}: unknown {kind} "{field}" (valid: {"|".join(allowed) or "none"})')
    return frozenset(chosen)


def _sink(raw: Any, where: str, strict: bool) -> SinkConfig:
    obj = _object(raw, where, _SINK_KEYS, strict)
    name = _string(obj.get("name"), f"{where}.name")
    if name not in SINK_NAMES:
        raise ConfigError(f'{where}: unknown sink "{name}" (valid: {"|".join(SINK_NAMES)})')
    ignore_setup_error = _bool(obj, "ignore_setup_error", where)
    config = obj.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{where}.config: expected a JSON object, got {_kind(config)}")
    remote = _remote(config, f"{where}.config") if name == "remote" else None
    return SinkConfig(name, remote, ignore_setup_error)


def _remote(config: dict[str, Any], where: str) -> RemoteConfig:
    unknown = sorted(set(config) - _REMOTE_KEYS)
    if unknown:
        raise ConfigError(
            f'{where}: unknown remote sink option "{unknown[0]}" (known: {", ".join(sorted(_REMOTE_KEYS))})'
        )
    if "endpoint" not in config:
        raise ConfigError(f'{where}: remote sink needs "endpoint" (the monitor\'s unix socket path)')
    endpoint = _string(config["endpoint"], f"{where}.endpoint")
    if not endpoint:
        raise ConfigError(f"{where}.endpoint: must not be empty")
    retries = _integer(config.get("retries", 0), f"{where}.retries")
    if retries < 0:
        raise ConfigError(f"{where}.retries: must not be negative, got {retries}")
    backoff = _duration(config, "backoff", DEFAULT_BACKOFF, where)
    backoff_max = _duration(config, "backoff_max", DEFAULT_BACKOFF_MAX, where)
    return RemoteConfig(endpoint, retries, backoff, backoff_max)


def _duration(config: dict[str, Any], key: str, default: float, where: str) -> float:
    if key not in config:
        return default
    text = _string(config[key], f"{where}.{key}")
    try:
        seconds = parse_duration(text)
    except ValueError as e:
        raise ConfigError(f"{where}.{key}: {e}") from e
    if seconds < 0:
        raise ConfigError(f"{where}.{key}: must not be negative, got {text!r}")
    return seconds


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), f"the number {value}" if isinstance(value, (int, float)) else repr(value))
