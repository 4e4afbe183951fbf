"""The syscall table: complete, consistent with the handlers, and ENOSYS for unimplemented numbers."""

from __future__ import annotations

import errno

from sentry.syscalls import dispatch, table


def test_every_number_has_a_row():
    rows = table.rows()
    assert [r.nr for r in rows] == list(range(table.MAX_NR + 1))
    assert {r.support for r in rows} <= {table.FULL, table.PARTIAL, table.UNIMPLEMENTED}
    assert all(r.note for r in rows)
    assert (
        rows[0].name == "read" and rows[435].name == "clone3" and rows[450].name == "set_mempolicy_home_node"
    )


def test_supported_rows_have_handlers_and_unimplemented_have_none():
    handlers = table.handlers()
    for row in table.rows():
        if row.support == table.UNIMPLEMENTED:
            assert row.name not in handlers, row
        else:
            assert row.name in handlers, row


def test_rseq_is_enosys():
    assert next(r for r in table.rows() if r.name == "rseq").support == table.UNIMPLEMENTED


class _Kernel:
    def __init__(self) -> None:
        import collections

        self.unimplemented = collections.Counter()


class _Regs:
    rax = 0


class _Task:
    tid = 1

    def __init__(self) -> None:
        self.kernel = _Kernel()
        self.regs = _Regs()


def test_unimplemented_numbers_return_enosys_and_are_counted():
    task = _Task()
    for nr in (334, 400, 450, 451, -1, 1 << 40):
        dispatch.dispatch(task, nr, (0,) * 6)
        assert task.regs.rax == (-errno.ENOSYS) & ((1 << 64) - 1)
    assert task.kernel.unimplemented[334] == 1 and task.kernel.unimplemented[400] == 1
