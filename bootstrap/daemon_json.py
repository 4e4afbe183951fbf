"""`install` / `uninstall`: register the runtime in Docker's daemon.json.

A JSON edit that keeps every other key (runsc's behaviour, facts §2.5):
`runtimes[NAME] = {"path": ..., "runtimeArgs": [...]}`, runtimeArgs left out
when empty, written back with 4-space indents. The file is replaced by
rename so a crash never leaves dockerd a half-written config.
"""

from __future__ import annotations

import json
import os
from typing import Any

from bootstrap.errors import OCIError

DEFAULT_CONFIG = "/etc/docker/daemon.json"


def _read(path: str) -> dict[str, Any]:
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return {}
    if not text.strip():
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise OCIError(f"{path}: invalid JSON: {e}") from None
    if not isinstance(config, dict):
        raise OCIError(f"{path}: must hold a JSON object")
    return config


def _write(path: str, config: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".kvmsandbox.tmp"
    with open(tmp, "w") as f:
        json.dump(config, f, indent=4)
        f.write("\n")
    if os.path.exists(path):
        os.chmod(tmp, os.stat(path).st_mode & 0o7777)
    os.replace(tmp, path)


def install(path: str, runtime: str, executable: str, runtime_args: list[str]) -> str:
    """Add or replace the runtime entry; returns what happened, for the user."""
    config = _read(path)
    runtimes = config.setdefault("runtimes", {})
    if not isinstance(runtimes, dict):
        raise OCIError(f"{path}: runtimes must be a JSON object")
    verb = "updating" if runtime in runtimes else "adding"
    entry: dict[str, Any] = {"path": executable}
    if runtime_args:
        entry["runtimeArgs"] = list(runtime_args)
    runtimes[runtime] = entry
    _write(path, config)
    return f"Runtime {runtime} {'found' if verb == 'updating' else 'not found'}: {verb}"


def uninstall(path: str, runtime: str) -> str:
    """Remove the runtime entry (and an emptied runtimes object); a missing one is not an error."""
    config = _read(path)
    runtimes = config.get("runtimes")
    if not isinstance(runtimes, dict) or runtime not in runtimes:
        return f"Runtime {runtime!r} not found in {path!r}: nothing to remove"
    del runtimes[runtime]
    if not runtimes:
        del config["runtimes"]
    _write(path, config)
    return f"Removing runtime {runtime!r} from {path!r}."
