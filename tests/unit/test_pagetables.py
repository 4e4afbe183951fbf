"""Page-table bookkeeping: which changes the host may write and which must be queued for the guest."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kvmsandbox.memory.pagetables import (
    PTE_ADDR_MASK,
    PTE_NX,
    PTE_PRESENT,
    PTE_WRITE,
    KernelMemory,
    PageTables,
    leaf_flags,
)
from kvmsandbox.platform import PAGE_SIZE, Access

KMEM_SIZE = 4 << 20
VAS = [0x400000 + i * PAGE_SIZE for i in range(6)] + [0x7EFF_FFFF_0000]
FRAMES = [0x1_0000_0000 + i * PAGE_SIZE for i in range(4)]
PERMS = [Access.NONE, Access.READ, Access.RW, Access.RX, Access.RWX]

ops = st.lists(
    st.tuples(st.sampled_from(VAS), st.sampled_from(FRAMES), st.sampled_from(PERMS), st.booleans()),
    max_size=40,
)


def guest_apply(tables: PageTables) -> None:
    """What the trampoline does with the queue: write every value."""
    for entry, value in tables.take_pending().items():
        tables.kmem.write_entry(entry, value)
    tables.applied(tables.take_pending())


@settings(max_examples=150, deadline=None)
@given(ops, st.integers(min_value=0, max_value=40))
def test_logical_view_matches_model_and_host_writes_never_hide_a_present_entry(sequence, apply_at):
    kmem = KernelMemory(0x100000, KMEM_SIZE)
    try:
        tables = PageTables(kmem)
        model: dict[int, int] = {}
        for step, (va, frame, perms, unmap) in enumerate(sequence):
            if step == apply_at:
                guest_apply(tables)
            entry = tables.leaf_entry(va, create=True)
            before = kmem.read_entry(entry)
            pending_before = entry in tables.pending
            value = 0 if unmap else frame | leaf_flags(perms)
            tables.set_entry(entry, value)
            model[va] = value
            after = kmem.read_entry(entry)
            if after != before:
                # The host wrote memory the guest walks: only safe if nothing could be cached
                # for it, or the change only grants rights on the same frame.
                assert not pending_before
                assert not before & PTE_PRESENT or (
                    (before & PTE_ADDR_MASK) == (after & PTE_ADDR_MASK)
                    and after & PTE_PRESENT
                    and not (before & PTE_WRITE and not after & PTE_WRITE)
                    and not (after & PTE_NX and not before & PTE_NX)
                )
            for model_va, model_value in model.items():
                assert tables.logical(tables.leaf_entry(model_va, create=False)) == model_value
        guest_apply(tables)
        assert not tables.pending
        for model_va, model_value in model.items():
            assert kmem.read_entry(tables.leaf_entry(model_va, create=False)) == model_value
    finally:
        kmem.close()


def test_removing_a_present_mapping_is_queued_not_written():
    kmem = KernelMemory(0x100000, KMEM_SIZE)
    try:
        tables = PageTables(kmem)
        tables.map_page(0x400000, FRAMES[0], leaf_flags(Access.RW))
        entry = tables.leaf_entry(0x400000, create=False)
        written = kmem.read_entry(entry)
        assert written & PTE_PRESENT
        tables.set_entry(entry, 0)
        assert kmem.read_entry(entry) == written, "host must not clear a present entry itself"
        assert tables.pending == {entry: 0}
        assert tables.translate(0x400000) is None
    finally:
        kmem.close()


def test_retired_pages_come_back_only_after_reclaim():
    kmem = KernelMemory(0x100000, KMEM_SIZE)
    try:
        tables = PageTables(kmem)
        tables.map_page(0x400000, FRAMES[0], leaf_flags(Access.READ))
        kmem.retire(tables.pages)
        assert kmem.has_retired()
        fresh = {kmem.alloc_page() for _ in range(8)}
        assert not fresh & set(tables.pages), "retired page-table pages reused before the guest scrubbed them"
        taken = kmem.take_retired(100)
        assert sorted(taken) == sorted(tables.pages)
        kmem.reclaim(taken)
        assert not kmem.has_retired()
    finally:
        kmem.close()
