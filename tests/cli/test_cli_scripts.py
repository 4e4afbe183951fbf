"""The set-up contract: README's two commands, .ci/run, and install.sh's interface."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _setup_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


def test_readme_has_exactly_two_setup_commands() -> None:
    install, test = _setup_commands()
    assert install.startswith("./install.sh && kvmsandbox do -- ")
    assert "\n" not in install and "\n" not in test
    assert test == "./test.sh"


def test_ci_runs_the_readme_test_command() -> None:
    lines = [ln for ln in (REPO / ".ci/run").read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines[-1] == f"exec {_setup_commands()[1]}"


def test_scripts_parse_and_reject_unknown_arguments() -> None:
    for script in ("install.sh", "test.sh", ".ci/run"):
        subprocess.run(["bash", "-n", str(REPO / script)], check=True)
    proc = subprocess.run(["bash", str(REPO / "install.sh"), "--bogus"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr


def test_sourcing_install_runs_nothing() -> None:
    proc = subprocess.run(
        ["bash", "-c", f"source {REPO / 'install.sh'} && declare -F kvmsb_install_deps"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "kvmsb_install_deps"
    assert proc.stderr == ""
