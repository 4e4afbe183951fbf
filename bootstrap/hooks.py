"""OCI lifecycle hooks, run on the host as runc and runsc run them.

`createRuntime` runs at the end of `create` (a failure fails the create,
which then cleans up); `prestart` when `start` is called, before the
process runs (a failure stops the container and fails the start);
`poststart` after `start` and `poststop` at `delete` (failures are logged,
as the spec says, and the rest go on).
Each hook gets the container's state JSON on stdin. `createContainer` and
`startContainer` would have to run inside the container, that is inside the
Sentry, which runs no host programs; they are accepted and logged as skipped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
from typing import Any

from bootstrap.errors import OCIError, SpecError

HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
IN_CONTAINER = ("createContainer", "startContainer")

log = logging.getLogger("kvmsandbox")


@dataclasses.dataclass(frozen=True)
class Hook:
    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "args": list(self.args), "env": list(self.env)}
        if self.timeout is not None:
            out["timeout"] = self.timeout
        return out


def parse_hooks(obj: object) -> dict[str, tuple[Hook, ...]]:
    """config.json's `hooks`, validated; every error names its field."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise SpecError("hooks", "must be a JSON object")
    out = {}
    for kind, items in obj.items():
        if kind not in HOOK_KINDS:
            raise SpecError(f"hooks.{kind}", f"unknown hook kind (known: {', '.join(HOOK_KINDS)})")
        if not isinstance(items, list):
            raise SpecError(f"hooks.{kind}", "must be a JSON array")
        out[kind] = tuple(_hook(item, f"hooks.{kind}[{i}]") for i, item in enumerate(items))
    return out


def _hook(obj: object, where: str) -> Hook:
    if not isinstance(obj, dict):
        raise SpecError(where, "must be a JSON object")
    path = obj.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise SpecError(f"{where}.path", "must be an absolute path")
    lists = {}
    for name in ("args", "env"):
        value = obj.get(name) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SpecError(f"{where}.{name}", "must be an array of strings")
        lists[name] = tuple(value)
    timeout = obj.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0):
        raise SpecError(f"{where}.timeout", "must be a positive integer (seconds)")
    return Hook(path, lists["args"], lists["env"], timeout)


def run_hooks(kind: str, hooks: list[dict[str, Any]], state: dict[str, Any], *, fatal: bool) -> None:
    """Run the hooks of one kind in order (as recorded at create); raise on failure if fatal."""
    for raw in hooks:
        hook = _hook(raw, f"hooks.{kind}")
        try:
            result = subprocess.run(
                list(hook.args) or [hook.path],
                executable=hook.path,
                input=json.dumps(state).encode(),
                env=dict(e.split("=", 1) for e in hook.env),
                capture_output=True,
                timeout=hook.timeout,
                cwd=state.get("bundle") or "/",
            )
            problem = f"exit status {result.returncode}" if result.returncode else ""
            detail = result.stderr.decode(errors="replace").strip()
        except (OSError, subprocess.TimeoutExpired) as e:
            problem, detail = str(e), ""
        if problem:
            message = f"{kind} hook {hook.path}: {problem}" + (f": {detail}" if detail else "")
            if fatal:
                raise OCIError(message)
            log.warning("%s", message)
