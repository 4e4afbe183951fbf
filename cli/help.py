"""`kvmsandbox help`: topics (platforms, syscalls) and any command's usage.

runsc answers `help <command>` with that command's usage and keeps two
topics that are not commands; a click group whose unknown names fall back
to the main command's subcommands gives both with one parser.
"""

from __future__ import annotations

import click

from cli.help_platforms import platforms
from cli.help_syscalls import syscalls


class HelpGroup(click.Group):
    """Resolves `help NAME` to a topic, or to a command that prints NAME's help."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        topic = super().get_command(ctx, cmd_name)
        if topic is not None:
            return topic
        root = ctx.find_root()
        target = root.command.get_command(root, cmd_name) if isinstance(root.command, click.Group) else None
        if target is None:
            return None

        @click.command(cmd_name, help=f"Show the usage of `{cmd_name}`.")
        def show() -> None:
            parent = click.Context(root.command, info_name=root.info_name)
            click.echo(target.get_help(click.Context(target, info_name=cmd_name, parent=parent)))

        return show


@click.group("help", cls=HelpGroup, invoke_without_command=True)
@click.pass_context
def help_group(ctx: click.Context) -> None:
    """Help topics (platforms, syscalls) or usage of a command: `help COMMAND`."""
    if ctx.invoked_subcommand is None:
        root = ctx.find_root()
        click.echo(root.command.get_help(root))


help_group.add_command(platforms)
help_group.add_command(syscalls)
