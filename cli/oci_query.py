"""state, list, ps, events: what the runtime reports about containers."""

from __future__ import annotations

import json
import re
import time

import click

from bootstrap import container, procinfo
from bootstrap.backend import ProcessInfo
from bootstrap.errors import OCIError
from bootstrap.state import oci_state
from cli.oci_common import report_errors, store


@click.command("state")
@click.argument("container_id")
@click.pass_context
@report_errors
def state_command(ctx: click.Context, container_id: str) -> None:
    """Print the container's OCI state JSON."""
    states = store(ctx)
    click.echo(json.dumps(oci_state(states, states.load(container_id)), indent=2))


@click.command("list")
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "table", "json"]), default="text")
@click.option("--quiet", "-q", is_flag=True, help="Print only the ids.")
@click.pass_context
@report_errors
def list_command(ctx: click.Context, fmt: str, quiet: bool) -> None:
    """List the containers under --root."""
    states = store(ctx)
    rows = [oci_state(states, s) for s in states.list()]
    if quiet:
        for row in rows:
            click.echo(row["id"])
    elif fmt == "json":
        click.echo(json.dumps(rows))
    else:
        table = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        table += [(r["id"], str(r["pid"]), r["status"], r["bundle"], r["created"], r["owner"]) for r in rows]
        _echo_table(table)


def host_pids(processes: list[ProcessInfo], sandbox_pid: int) -> list[int]:
    """Host pids for `ps --format json`: what dockerd matches against host `ps` for `docker top`.

    A process is shown as its mirror (bootstrap/mirrors), a child of the
    sandbox process named by its pid there; one without a mirror as the
    sandbox process, which is what the host sees of it.
    """
    mirrors = procinfo.children_by_own_pid(sandbox_pid) if any(p.mirror_pid for p in processes) else {}
    return list(dict.fromkeys(mirrors.get(p.mirror_pid, sandbox_pid) for p in processes))


@click.command("ps")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.argument("container_id")
@click.argument("ps_args", nargs=-1)
@click.pass_context
@report_errors
def ps_command(ctx: click.Context, container_id: str, fmt: str, ps_args: tuple[str, ...]) -> None:
    """List the container's processes (json: host pids, for `docker top`)."""
    states = store(ctx)
    state = states.load(container_id)
    processes = container.processes(states, container_id, mirrors=fmt == "json")
    if fmt == "json":
        click.echo(json.dumps(host_pids(processes, state.pid)))
        return
    table = [("UID", "PID", "PPID", "C", "TTY", "STIME", "TIME", "CMD")]
    for p in processes:
        stime = time.strftime("%H:%M", time.localtime(p.start_time)) if p.start_time else "?"
        cpu = int(p.cpu_seconds)
        cputime = f"{cpu // 3600:02d}:{cpu // 60 % 60:02d}:{cpu % 60:02d}"
        table.append((str(p.uid), str(p.pid), str(p.ppid), "0", p.tty, stime, cputime, p.cmd))
    _echo_table(table)


def parse_interval(text: str) -> float:
    """Seconds from runsc's integer form (`5`) or go-runc's duration form (`5s`, `500ms`, `1m`)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", text.strip())
    if not m or float(m.group(1)) <= 0:
        raise click.BadParameter(f"{text!r} is not a positive duration like 5 or 5s")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]


@click.command("events")
@click.option("--stats", is_flag=True, help="Print one stats event and exit.")
@click.option("--interval", default="5", help="Seconds between stats events (5, 5s, 500ms).")
@click.argument("container_id")
@click.pass_context
@report_errors
def events_command(ctx: click.Context, container_id: str, stats: bool, interval: str) -> None:
    """Print stats events for the container as JSON lines."""
    period = parse_interval(interval)
    states = store(ctx)
    while True:
        try:
            data = container.stats(states, container_id)
        except OCIError:
            if stats:
                raise
            return  # the container stopped: the stream ends
        click.echo(json.dumps({"type": "stats", "id": container_id, "data": data}))
        if stats:
            return
        time.sleep(period)


def _echo_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


QUERY_COMMANDS = [state_command, list_command, ps_command, events_command]
