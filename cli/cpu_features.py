"""`kvmsandbox cpu-features`: the host's CPU features, one line, as runsc prints them.

The names feed allowed-feature lists (the same spelling runsc uses), so the
line is byte-compatible with upstream runsc's `cpu-features`.
"""

from __future__ import annotations

import click

from kvmsandbox import cpuid


@click.command("cpu-features")
def cpu_features() -> None:
    """List the CPU features of this machine (comma-separated, runsc's names and order)."""
    click.echo(cpuid.feature_line())
