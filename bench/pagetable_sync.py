"""How page-table changes reach a PVM guest: trampoline-applied writes vs memslot re-registration.

docs/ring0.md records the outcome. Prints medians (µs) of:
  round trip            null syscall, nothing to apply (fast path)
  queued change         one present PTE changed between two syscalls (slow path applies it)
  memslot re-register   delete + re-add the kernel memory slot (ioctls only)
  round trip after it   the next null syscall, paying for the dropped shadow pages
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from kvmsandbox.kvmplatform import KVMPlatform
from kvmsandbox.platform import Access, Regs
from kvmsandbox.ring0.build import assemble
from kvmsandbox.vcpu.machine import KERNEL_GPA, KERNEL_SLOT, host_address

SNIPPET = Path(__file__).with_name("snippets") / "null_syscall.S"
CODE_VA, DATA_VA, STACK_TOP = 0x400000, 0x10000000, 0x800000


def median_us(step, n: int) -> float:
    samples = []
    for i in range(n):
        start = time.perf_counter_ns()
        step(i)
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000


def main(n: int = 2000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        code = assemble(SNIPPET, Path(tmp)).read_bytes()
    platform = KVMPlatform(memory_size=64 << 20)
    try:
        asp = platform.new_address_space()
        text = platform.memory_file.allocate(1)
        platform.memory_file.write(text, code)
        asp.map(CODE_VA, 4096, text, Access.RX)
        frames = platform.memory_file.allocate(2)
        asp.map(DATA_VA, 4096, frames, Access.RW)
        ctx = platform.new_context()
        regs = Regs(rip=CODE_VA, rsp=STACK_TOP)
        ctx.switch(asp, regs)

        def round_trip(_: int) -> None:
            ctx.switch(asp, regs)

        def queued_change(i: int) -> None:
            asp.map(DATA_VA, 4096, frames + (i % 2) * 4096, Access.RW)
            ctx.switch(asp, regs)

        kmem = platform.machine.kmem
        kmem_address = host_address(kmem.file)

        def reregister(_: int) -> None:
            platform.machine.vm.set_user_memory_region(KERNEL_SLOT, KERNEL_GPA, 0, 0)
            platform.machine.vm.set_user_memory_region(KERNEL_SLOT, KERNEL_GPA, kmem.file.size, kmem_address)

        def reregister_and_run(i: int) -> None:
            reregister(i)
            ctx.switch(asp, regs)

        rows = [
            ("round trip", median_us(round_trip, n)),
            ("queued change + round trip", median_us(queued_change, n)),
            ("memslot re-register (ioctls)", median_us(reregister, n // 10)),
            ("memslot re-register + round trip", median_us(reregister_and_run, n // 10)),
        ]
    finally:
        platform.close()
    print("| operation | median µs |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value:.1f} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
