"""`kvmsandbox help syscalls`: the Sentry's syscall table in runsc's three formats.

Tools written for `runsc help syscalls` (compatibility dashboards, diffing
support between releases) parse its exact output, so the table, CSV and
JSON forms below follow runsc's writers: Go's tabwriter with padding 2, Go's
csv quoting, and encoding/json's indent, key order and HTML escaping.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Iterable

import click

OS_NAME = "linux"
ARCH = "amd64"
TABLE_MODULE = "sentry.syscalls.table"


@dataclasses.dataclass(frozen=True)
class Row:
    """One syscall's documentation, normalised from the Sentry's table."""

    nr: int
    name: str
    support: str
    note: str


def load_rows() -> list[Row]:
    """The Sentry's named rows sorted by number; a ClickException if the table cannot be loaded."""
    try:
        table = importlib.import_module(TABLE_MODULE)
        raw = table.rows()
    except Exception as exc:  # the Sentry may be absent or broken; say so instead of a traceback
        raise click.ClickException(
            f"the syscall table ({TABLE_MODULE}.rows()) is not available: {type(exc).__name__}: {exc}"
        ) from exc
    rows = [
        Row(int(r.nr), str(r.name), str(getattr(r.support, "value", r.support)), r.note or "") for r in raw
    ]
    # Numbers with no system call behind them (a table may list them so dispatch is total)
    # are not documented, as in runsc.
    return sorted((r for r in rows if r.name), key=lambda r: r.nr)


def _tabwrite(lines: list[list[str]], padding: int = 2) -> str:
    """Go's text/tabwriter (minwidth 0, padding 2, ' '): every cell but a line's last is a column."""
    ncols = max(len(cells) - 1 for cells in lines)
    widths = [max((len(c[i]) for c in lines if i < len(c) - 1), default=0) + padding for i in range(ncols)]
    out = []
    for cells in lines:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])]
        out.append("".join(padded) + cells[-1] + "\n")
    return "".join(out)


def render_table(rows: Iterable[Row]) -> str:
    lines = [["NUM", "NAME", "SUPPORT", "NOTE"]]
    for row in rows:
        first, *more = row.note.split("\n")
        lines.append([str(row.nr), row.name, row.support, first])
        # Continuation lines keep the note column aligned, as runsc's "See: <url>" lines do.
        lines.extend(["", "", "", extra] for extra in more)
    return f"{OS_NAME}/{ARCH}:\n\n" + _tabwrite(lines)


def _csv_field(field: str) -> str:
    """Go's encoding/csv quoting: quote on comma, quote, CR/LF, a leading space, or a lone `\\.`."""
    needs = field == r"\." or any(ch in field for ch in ',"\r\n') or field[:1].isspace()
    return '"' + field.replace('"', '""') + '"' if needs else field


def render_csv(rows: Iterable[Row]) -> str:
    lines = [["OS", "Arch", "Num", "Name", "Support", "Note"]]
    lines.extend([OS_NAME, ARCH, str(r.nr), r.name, r.support, r.note] for r in rows)
    return "".join(",".join(_csv_field(f) for f in line) + "\n" for line in lines)


def render_json(rows: Iterable[Row]) -> str:
    # encoding/json: struct fields in declaration order (name, support, note-if-any);
    # map keys sorted as strings ("0", "1", "10", ...).
    calls = {}
    for row in sorted(rows, key=lambda r: str(r.nr)):
        doc = {"name": row.name, "support": row.support}
        if row.note:
            doc["note"] = row.note
        calls[str(row.nr)] = doc
    text = json.dumps({OS_NAME: {ARCH: {"syscalls": calls}}}, indent=2, ensure_ascii=False)
    # encoding/json escapes these for safe embedding in HTML; do the same so outputs diff cleanly.
    for char, escape in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        text = text.replace(char, escape)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029") + "\n"


RENDERERS = {"table": render_table, "csv": render_csv, "json": render_json}


@click.command("syscalls")
@click.option("--format", "fmt", type=click.Choice(list(RENDERERS)), default="table", show_default=True)
@click.option("--os", "os_name", type=click.Choice(["all", OS_NAME]), default="all", show_default=True)
@click.option("--arch", type=click.Choice(["all", ARCH]), default="all", show_default=True)
@click.option("--filename", type=click.Path(dir_okay=False, writable=True), help="Write here, not stdout.")
def syscalls(fmt: str, os_name: str, arch: str, filename: str | None) -> None:
    """Print the support level of every system call (runsc's `help syscalls`)."""
    text = RENDERERS[fmt](load_rows())
    if filename:
        with open(filename, "w") as out:
            out.write(text)
    else:
        click.echo(text, nl=False)
