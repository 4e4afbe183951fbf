"""The point catalogue: runsc's names and fields, our syscall table's numbers, the metadata listing."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from trace_fakes import make_task

from sentry.seccheck import context, points
from sentry.seccheck.proto.common_pb2 import ContextData
from sentry.syscalls import table


def test_counts_and_listing():
    schematized = 2 * len(points.SCHEMATIZED)
    raw = 2 * (points.RAW_SYSNO_MAX + 1)
    assert len(points.POINTS) == 5 + schematized + raw == 1015
    text = points.metadata_text()
    lines = text.splitlines()
    assert lines[0] == "POINTS (1015)"
    assert lines[1] == (
        "Name: container/start, optional fields: [env], context fields: "
        "[time|thread_id|task_start_time|group_id|thread_group_start_time|container_id|credentials|cwd|"
        "process_name|parent_thread_group_id]"
    )
    assert "Name: syscall/execveat/enter, optional fields: [fd_path|envv], context fields: [" in text
    assert lines[-4:] == ["", "SINKS (2)", "Name: null", "Name: remote"]
    names = [line.split(",")[0] for line in lines[1:-4]]
    assert names == sorted(names)  # runsc lists them in name order


def test_raw_points_cover_the_syscall_table():
    assert points.RAW_SYSNO_MAX == table.MAX_NR


def test_schematized_numbers_match_the_syscall_table():
    by_nr = {row.nr: row.name for row in table.rows()}
    for name, (nr, _, _) in points.SCHEMATIZED.items():
        assert by_nr[nr] == name


def test_every_context_field_is_filled():
    ctx = ContextData()
    context.filler(frozenset(points.CONTEXT_FIELDS))(ctx, make_task())
    assert len(ctx.ListFields()) == len(points.CONTEXT_FIELDS) == 10
    assert context.filler(frozenset()) is None


@pytest.mark.skipif(shutil.which("runsc") is None, reason="Debian runsc is not installed")
def test_superset_of_debian_runsc_points():
    """Every point runsc lists exists here with the same optional fields, so its session files work."""
    out = subprocess.run(
        ["runsc", "trace", "metadata"], capture_output=True, text=True, timeout=60, check=True
    )
    theirs = {}
    for line in out.stdout.splitlines():
        if line.startswith("Name: ") and ", optional fields: [" in line:
            name, rest = line[len("Name: ") :].split(", optional fields: [", 1)
            theirs[name] = tuple(f for f in rest.split("]", 1)[0].split("|") if f)
    assert len(theirs) > 900
    for name, optional in theirs.items():
        assert name in points.POINTS, name
        assert set(optional) <= set(points.POINTS[name].optional_fields), name
