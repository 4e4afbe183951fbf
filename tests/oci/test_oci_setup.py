"""spec, features, install/uninstall, kill's signal parsing, error reporting (in-process CLI)."""

from __future__ import annotations

import json
import signal

import pytest
from click.testing import CliRunner

from bootstrap.errors import OCIError
from bootstrap.signals import parse_signal
from cli.main import main
from cli.oci_query import parse_interval


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("text", "signo"),
    [("15", 15), ("9", 9), ("TERM", 15), ("SIGTERM", 15), ("term", 15), ("sigusr1", 10), ("KILL", 9),
     ("RTMIN+1", signal.SIGRTMIN + 1), ("SIGRTMAX-0", signal.SIGRTMAX)],
)  # fmt: skip
def test_parse_signal(text: str, signo: int) -> None:
    assert parse_signal(text) == signo


@pytest.mark.parametrize("text", ["0", "65", "SIGNOPE", "", "-9", "RTMIN+99"])
def test_parse_signal_rejects(text: str) -> None:
    with pytest.raises(OCIError, match="invalid signal"):
        parse_signal(text)


@pytest.mark.parametrize(("text", "seconds"), [("5", 5), ("5s", 5), ("500ms", 0.5), ("1m", 60)])
def test_events_interval(text: str, seconds: float) -> None:
    assert parse_interval(text) == seconds


def test_spec_writes_a_runsc_like_config(tmp_path) -> None:
    code, _, err = run("spec", "--bundle", str(tmp_path), "--", "echo", "-n", "hi")
    assert code == 0, err
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["process"]["args"] == ["echo", "-n", "hi"]
    assert config["root"] == {"path": "rootfs", "readonly": True}
    assert config["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    code, _, err = run("spec", "--bundle", str(tmp_path))
    assert code == 1 and "exists" in err


def test_features_json() -> None:
    code, out, _ = run("features")
    assert code == 0
    doc = json.loads(out)
    assert doc["ociVersionMin"] == "1.0.0"
    assert doc["hooks"] == ["prestart", "createRuntime", "poststart", "poststop"]
    assert {"pid", "network", "mount", "ipc", "uts", "user"} <= set(doc["linux"]["namespaces"])
    assert "CAP_SYS_ADMIN" in doc["linux"]["capabilities"]


def test_install_preserves_other_keys(tmp_path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps({"log-level": "info", "runtimes": {"other": {"path": "/bin/other"}}}))
    exe = "/usr/bin/kvmsandbox"
    code, _, err = run(
        "install",
        "--config-file",
        str(path),
        "--runtime",
        "kvm",
        "--path",
        exe,
        "--",
        "--platform=kvm",
        "--network=none",
    )
    assert code == 0, err
    assert "Successfully updated config." in err
    config = json.loads(path.read_text())
    assert config == {
        "log-level": "info",
        "runtimes": {
            "other": {"path": "/bin/other"},
            "kvm": {"path": "/usr/bin/kvmsandbox", "runtimeArgs": ["--platform=kvm", "--network=none"]},
        },
    }
    assert path.read_text().startswith('{\n    "log-level"')  # 4-space indents, as runsc writes
    # Reinstalling without args drops runtimeArgs.
    run("install", "--config-file", str(path), "--runtime", "kvm", "--path", "/usr/bin/kvmsandbox")
    assert json.loads(path.read_text())["runtimes"]["kvm"] == {"path": "/usr/bin/kvmsandbox"}
    code, _, err = run("uninstall", "--config-file", str(path), "--runtime", "kvm")
    assert code == 0 and "Removing runtime" in err
    assert json.loads(path.read_text()) == {
        "log-level": "info",
        "runtimes": {"other": {"path": "/bin/other"}},
    }
    code, _, _ = run("uninstall", "--config-file", str(path), "--runtime", "kvm")
    assert code == 0


def test_install_creates_a_missing_file(tmp_path) -> None:
    path = tmp_path / "etc" / "daemon.json"
    code, _, err = run("install", "--config-file", str(path), "--path", "/x/kvmsandbox")
    assert code == 0, err
    assert json.loads(path.read_text()) == {"runtimes": {"kvmsandbox": {"path": "/x/kvmsandbox"}}}


def test_install_refuses_broken_json(tmp_path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text("{oops")
    code, _, err = run("install", "--config-file", str(path), "--path", "/x")
    assert code == 1 and "invalid JSON" in err
    assert path.read_text() == "{oops"


def test_errors_go_to_stderr_and_the_log_as_json(tmp_path) -> None:
    log = tmp_path / "log.json"
    code, out, err = run("--root", str(tmp_path), "--log", str(log), "--log-format", "json", "state", "nope")
    assert code == 1 and out == ""
    assert "container 'nope' does not exist" in err
    record = json.loads(log.read_text().splitlines()[-1])
    assert record["level"] == "error" and "does not exist" in record["msg"] and record["time"]


@pytest.mark.parametrize(
    "args",
    [
        ["delete", "nope"],
        ["kill", "nope", "9"],
        ["start", "nope"],
        ["ps", "nope"],
        ["exec", "nope", "true"],
        ["pause", "nope"],
        ["wait", "nope"],
        ["events", "--stats", "nope"],
    ],
)
def test_commands_on_a_missing_container_fail(tmp_path, args: list[str]) -> None:
    code, _, err = run("--root", str(tmp_path), *args)
    assert code == 1 and "does not exist" in err


def test_delete_force_of_a_missing_container_succeeds(tmp_path) -> None:
    assert run("--root", str(tmp_path), "delete", "--force", "nope")[0] == 0


def test_list_empty(tmp_path) -> None:
    assert run("--root", str(tmp_path), "list", "--format", "json") == (0, "[]\n", "")
