"""The command group: global flags, usage errors, flags and help topics."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import types

import click
import pytest
from click.testing import CliRunner

import cli.help_platforms
from cli import help_syscalls
from cli.main import GlobalFlags, main
from cli.oci import OCI_COMMANDS
from kvmsandbox import platform


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    "args",
    [
        ["--no-such-flag", "flags"],
        ["--log-format", "yaml", "flags"],
        ["--network", "bridge", "flags"],
        ["--overlay2", "root:disk", "flags"],
        ["--file-access", "private", "flags"],
        ["no-such-command"],
        ["cpu-features", "--verbose"],
        ["help", "syscalls", "--format", "xml"],
        ["help", "no-such-topic"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    code, output = run(*args)
    assert code == 2, output
    assert "Usage:" in output


def test_global_flags_reach_subcommands() -> None:
    seen = []

    @main.command("probe-flags")
    @click.pass_obj
    def probe(flags: GlobalFlags) -> None:
        seen.append(flags)

    try:
        code, output = run(
            "--root", "/tmp/r", "--log-format", "json", "--debug", "--platform", "systrap",
            "--network", "host", "--overlay2", "all:dir=/tmp/o,size=1g", "--file-access", "shared",
            "probe-flags",
        )  # fmt: skip
    finally:
        main.commands.pop("probe-flags")
    assert code == 0, output
    assert seen == [
        GlobalFlags(
            root="/tmp/r", log_format="json", debug=True, platform="systrap", network="host",
            overlay2="all:dir=/tmp/o,size=1g", file_access="shared",
        )
    ]  # fmt: skip


def test_flags_lists_every_global_flag() -> None:
    code, output = run("flags")
    assert code == 0
    for field in GlobalFlags.__dataclass_fields__:
        assert "--" + field.replace("_", "-") in output


def test_help_platforms_lists_every_platform() -> None:
    code, output = run("help", "platforms")
    assert code == 0, output
    header, *rows = output.splitlines()
    assert header.split() == ["NAME", "FLAVOUR", "USABLE", "DETAILS"]
    names = [row.split()[0] for row in rows]
    assert set(cli.help_platforms.BACKENDS) <= set(names)
    for row in rows:
        assert row.split()[2] in ("yes", "no")


def test_help_platforms_survives_a_broken_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli.help_platforms.BACKENDS, "broken", "kvmsandbox.no_such_backend_module")

    def bad_probe() -> platform.PlatformInfo:
        raise RuntimeError("probe exploded")

    monkeypatch.setitem(platform._REGISTRY, "crashy", platform._Entry(bad_probe, lambda: None))
    code, output = run("help", "platforms")
    assert code == 0, output
    rows = {row[0]: row[1:] for row in (line.split(None, 3) for line in output.splitlines()[1:])}
    assert rows["broken"][1] == "no"
    assert rows["broken"][2].startswith(
        "import kvmsandbox.no_such_backend_module failed: ModuleNotFoundError"
    )
    assert rows["crashy"][1:] == ["no", "probe failed: RuntimeError: probe exploded"]


def test_help_command_shows_its_usage() -> None:
    code, output = run("help", "cpu-features")
    assert code == 0
    assert "cpu-features [OPTIONS]" in output


ROWS = [
    types.SimpleNamespace(
        nr=28, name="madvise", support="Partial Support", note="Some <advice>, ignored.\nSee: x"
    ),
    types.SimpleNamespace(nr=0, name="read", support="Full Support", note="Fully Supported."),
    types.SimpleNamespace(nr=134, name="uselib", support="Unimplemented", note=""),
    types.SimpleNamespace(nr=335, name="", support="Unimplemented", note="Not a system call number."),
]


@pytest.fixture
def fake_table(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType(help_syscalls.TABLE_MODULE)
    module.rows = lambda: ROWS  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, help_syscalls.TABLE_MODULE, module)


def test_help_syscalls_table(fake_table: None) -> None:
    code, output = run("help", "syscalls")
    assert code == 0, output
    assert output == (
        "linux/amd64:\n\n"
        "NUM  NAME     SUPPORT          NOTE\n"
        "0    read     Full Support     Fully Supported.\n"
        "28   madvise  Partial Support  Some <advice>, ignored.\n"
        "                               See: x\n"
        "134  uselib   Unimplemented    \n"
    )


def test_help_syscalls_csv(fake_table: None) -> None:
    code, output = run("help", "syscalls", "--format", "csv")
    assert code == 0, output
    assert output == (
        "OS,Arch,Num,Name,Support,Note\n"
        "linux,amd64,0,read,Full Support,Fully Supported.\n"
        'linux,amd64,28,madvise,Partial Support,"Some <advice>, ignored.\nSee: x"\n'
        "linux,amd64,134,uselib,Unimplemented,\n"
    )


def test_help_syscalls_json(fake_table: None) -> None:
    code, output = run("help", "syscalls", "--format=json")
    assert code == 0, output
    assert "\\u003cadvice\\u003e" in output
    calls = json.loads(output)["linux"]["amd64"]["syscalls"]
    assert list(calls) == ["0", "134", "28"]  # encoding/json sorts keys as strings
    assert calls["134"] == {"name": "uselib", "support": "Unimplemented"}
    assert list(calls["28"]) == ["name", "support", "note"]  # Go struct field order
    assert calls["28"]["note"] == "Some <advice>, ignored.\nSee: x"


def test_help_syscalls_without_a_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, help_syscalls.TABLE_MODULE, None)
    code, output = run("help", "syscalls")
    assert code == 1
    assert "syscall table (sentry.syscalls.table.rows()) is not available" in output


def test_version_is_runsc_shaped() -> None:
    code, output = run("--version")
    assert code == 0
    first, second = output.splitlines()
    assert first.startswith("kvmsandbox version ")
    assert second.startswith("spec: ")


def test_errors_go_to_log_as_json(tmp_path) -> None:
    log = tmp_path / "log.json"

    @main.command("log-error")
    def log_error() -> None:
        logging.getLogger("kvmsandbox.test").error("loading container: %s", "file does not exist")

    try:
        code, output = run("--log", str(log), "--log-format", "json", "log-error")
    finally:
        main.commands.pop("log-error")
    assert code == 0, output
    record = json.loads(log.read_text().splitlines()[-1])
    assert record["msg"] == "loading container: file does not exist"
    assert record["level"] == "error"
    assert set(record) == {"msg", "level", "time"}


def test_systemd_cgroup_is_accepted(tmp_path) -> None:
    code, output = run("--root", str(tmp_path), "--systemd-cgroup", "state", "nonexistent")
    assert code == 1, output  # the state command's own "does not exist", not a usage error
    assert "does not exist" in output
    assert "--systemd-cgroup" in run("flags")[1]


@pytest.mark.parametrize("flag", ["--log", "--debug-log"])
def test_log_in_a_missing_directory_is_one_line(tmp_path, flag: str) -> None:
    path = tmp_path / "no-such-dir" / "log.json"
    result = CliRunner().invoke(main, [flag, str(path), "flags"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.output == f"kvmsandbox: open {path}: No such file or directory\n"


def test_every_lazy_command_loads_under_its_name() -> None:
    """The name map in cli/oci.py matches each module's *_COMMANDS list, so no command is missed."""
    for name in main.list_commands(click.Context(main)):
        assert main.get_command(click.Context(main), name).name == name
    modules = {spec.partition(":")[0] for spec in OCI_COMMANDS.values()}
    listed = {
        c.name
        for m in modules
        for attr, v in vars(sys.modules[m]).items()
        if attr.endswith("_COMMANDS")
        for c in v
    }
    assert listed == set(OCI_COMMANDS)


def test_a_command_imports_only_its_own_module(tmp_path) -> None:
    """`delete` (one of a shim's several calls per container) loads no other command's module, nor
    what only booting a sandbox needs."""
    probe = (
        "import sys; from cli.main import main\n"
        f"main(['--root', {str(tmp_path)!r}, 'delete', '--force', 'gone'], standalone_mode=False)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('cli.', 'sentry', 'bootstrap.launcher'))))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = result.stdout.strip()
    assert loaded == "['cli.lazy_group', 'cli.main', 'cli.oci', 'cli.oci_common', 'cli.oci_lifecycle']", (
        loaded
    )
