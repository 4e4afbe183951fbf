"""Platform round-trip costs next to native Linux and Debian's runsc (issue 2).

One run prints a markdown report: per-operation medians for

- a null system call round trip (app -> platform -> serving loop -> app),
- a page fault + map + resume (app touches a fresh page; the loop maps it),
- a map + unmap pair of 1 page and of 1 MiB, including the two switches that
  apply them (the kvm platform only queues page-table writes; the ring0
  trampoline applies them at the next entry, so a map is not done until then),

for each usable platform of ours (driven directly through the platform
interface by a minimal serving loop, like a tiny Sentry, running machine
code from bench/snippets/*.S), next to the same operations in a static C
program (bench/c/getppid_loop.c) run natively and under
`runsc --platform=ptrace do`. Python's share is reported separately: time in
the serving loop between switches, time in the platform's Python inside
`switch`, and time blocked in the host (KVM_RUN) for platforms that say
where that is (HOST_WAIT).

Each platform runs in a worker subprocess under a timeout, so a hung or
crashing platform becomes a reason in its column instead of a hung report.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform as host
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from kvmsandbox import platform as pf  # noqa: E402

CODE_VA = 0x40_0000
AREA_VA = 0x1000_0000
PAGE = pf.PAGE_SIZE
MIB_PAGES = 256
SYS_GETPPID = 110
SYS_EXIT = 60
WORKER_TIMEOUT_S = 300
RUNSC_TIMEOUT_S = 120

# Where each platform blocks in the host while app code runs: (module, holder, functions).
# A holder that is a class gets its methods wrapped; one that is a cffi lib (whose
# functions cannot be replaced) is swapped, in that module only, for a timing proxy.
HOST_WAIT = {
    "kvm": ("kvmsandbox.kvm", "Vcpu", ("run",)),
    "systrap": ("kvmsandbox.systrap.context", "lib", ("systrap_handoff", "systrap_wait")),
}

OPS = (
    ("syscall", "null syscall round trip"),
    ("fault", "page fault + map + resume"),
    ("map1", "map + unmap 1 page (incl. 2 switches)"),
    ("map256", "map + unmap 1 MiB (incl. 2 switches)"),
)


def now() -> int:
    return time.perf_counter_ns()


class HostWaitTimer:
    """Wraps the platform's host-blocking calls to add up the time spent in them."""

    def __init__(self, name: str) -> None:
        self.total = 0
        self.available = name in HOST_WAIT
        self._undo: list[Callable[[], None]] = []
        if not self.available:
            return
        module_name, holder_name, functions = HOST_WAIT[name]
        module = importlib.import_module(module_name)
        holder = getattr(module, holder_name)
        if isinstance(holder, type):
            for function in functions:
                original = getattr(holder, function)
                setattr(holder, function, self._timed(original))
                self._undo.append(lambda f=function, o=original: setattr(holder, f, o))
        else:
            wrapped = {f: self._timed(getattr(holder, f)) for f in functions}
            setattr(module, holder_name, _Proxy(holder, wrapped))
            self._undo.append(lambda: setattr(module, holder_name, holder))

    def _timed(self, function: Callable[..., object]) -> Callable[..., object]:
        def timed(*args: object) -> object:
            start = now()
            try:
                return function(*args)
            finally:
                self.total += now() - start

        return timed

    def close(self) -> None:
        for undo in self._undo:
            undo()


class _Proxy:
    """Stands in for a cffi lib: the wrapped functions, everything else delegated."""

    def __init__(self, target: object, wrapped: dict[str, Callable[..., object]]) -> None:
        self.__dict__.update(wrapped)
        self._target = target

    def __getattr__(self, name: str) -> object:
        return getattr(self._target, name)


class Series:
    """Per-iteration samples (ns) of named components; medians in µs."""

    def __init__(self) -> None:
        self.samples: dict[str, list[int]] = {}

    def add(self, **parts: int) -> None:
        for key, value in parts.items():
            self.samples.setdefault(key, []).append(value)

    def medians_us(self) -> dict[str, float]:
        return {k: statistics.median(v) / 1000 for k, v in self.samples.items()}


def load_snippet(plat: pf.Platform, asp: pf.AddressSpace, name: str, out_dir: Path) -> int:
    """Assemble bench/snippets/<name>.S, map it at CODE_VA (read+exec), return its _start address."""
    from kvmsandbox.ring0.build import assemble

    binary = assemble(HERE / "snippets" / f"{name}.S", out_dir)
    blob = binary.read_bytes()
    symbols = json.loads(binary.with_suffix(".sym.json").read_text())
    npages = -(-len(blob) // PAGE)
    offset = plat.memory_file.allocate(npages)
    plat.memory_file.write(offset, blob)
    asp.map(CODE_VA, npages * PAGE, offset, pf.Access.RX)
    return CODE_VA + symbols["_start"]


def expect(event: pf.Event, nr: int) -> None:
    if not (isinstance(event, pf.Syscall) and event.nr == nr):
        raise RuntimeError(f"expected syscall {nr}, got {event}")


class Bench:
    """One platform instance and the operations timed on it."""

    def __init__(self, name: str, out_dir: Path) -> None:
        self.plat = pf.create(name)
        self.out_dir = out_dir
        self.wait = HostWaitTimer(name)

    def _timed_switch(
        self, ctx: pf.Context, asp: pf.AddressSpace, regs: pf.Regs
    ) -> tuple[pf.Event, int, int]:
        """(event, ns inside switch, ns of that blocked in the host)."""
        waited = self.wait.total
        start = now()
        event = ctx.switch(asp, regs)
        return event, now() - start, self.wait.total - waited

    def _null_setup(self) -> tuple[pf.AddressSpace, pf.Context, pf.Regs]:
        asp = self.plat.new_address_space()
        ctx = self.plat.new_context()
        regs = pf.Regs(rip=load_snippet(self.plat, asp, "null_syscall", self.out_dir))
        expect(ctx.switch(asp, regs), SYS_GETPPID)  # warm: vCPU/stub, address space, FPU
        return asp, ctx, regs

    def syscalls(self, n: int) -> Series:
        asp, ctx, regs = self._null_setup()
        series = Series()
        prev = now()
        for _ in range(n):
            regs.rax = 1  # serve getppid
            event, inside, host_wait = self._timed_switch(ctx, asp, regs)
            expect(event, SYS_GETPPID)
            end = now()
            series.add(total=end - prev, switch=inside, host=host_wait)
            prev = end
        ctx.release()
        asp.release()
        return series

    def faults(self, n: int) -> Series:
        asp = self.plat.new_address_space()
        ctx = self.plat.new_context()
        regs = pf.Regs(rip=load_snippet(self.plat, asp, "touch_pages", self.out_dir), rdi=AREA_VA, rsi=n + 1)
        mem = self.plat.memory_file
        series = Series()
        event = ctx.switch(asp, regs)  # the first fault is warm-up
        prev = now()
        done = -1
        while isinstance(event, pf.Fault):
            start = now()
            page = event.addr & ~(PAGE - 1)
            asp.map(page, PAGE, mem.allocate(), pf.Access.RW)
            handled = now() - start
            event, inside, host_wait = self._timed_switch(ctx, asp, regs)
            end = now()
            if done >= 0:
                series.add(total=end - prev, switch=inside, host=host_wait, handler=handled)
            done += 1
            prev = end
        expect(event, SYS_EXIT)
        if done != n:
            raise RuntimeError(f"{done} faults served, expected {n}")
        ctx.release()
        asp.release()
        return series

    def map_unmap(self, n: int, pages: int) -> Series:
        asp, ctx, regs = self._null_setup()
        offset = self.plat.memory_file.allocate(pages)
        series = Series()
        for _ in range(n):
            t0 = now()
            asp.map(AREA_VA, pages * PAGE, offset, pf.Access.RW)
            t1 = now()
            event, _, host_map = self._timed_switch(ctx, asp, regs)
            expect(event, SYS_GETPPID)
            t2 = now()
            asp.unmap(AREA_VA, pages * PAGE)
            t3 = now()
            event, _, host_unmap = self._timed_switch(ctx, asp, regs)
            expect(event, SYS_GETPPID)
            t4 = now()
            series.add(
                total=t4 - t0,
                map_call=t1 - t0,
                map_switch=t2 - t1,
                unmap_call=t3 - t2,
                unmap_switch=t4 - t3,
                host=host_map + host_unmap,
            )
        ctx.release()
        asp.release()
        return series

    def close(self) -> None:
        self.wait.close()
        self.plat.close()


def worker(name: str, args: argparse.Namespace) -> dict:
    """Run every operation on platform `name`; the result is JSON-able."""
    with tempfile.TemporaryDirectory(prefix="kvmsb-bench-") as tmp:
        bench = Bench(name, Path(tmp))
        try:
            results = {
                "syscall": bench.syscalls(args.syscalls),
                "fault": bench.faults(args.faults),
                "map1": bench.map_unmap(args.maps, 1),
                "map256": bench.map_unmap(args.maps_mib, MIB_PAGES),
            }
            host_wait = bench.wait.available
        finally:
            bench.close()
    return {"ok": True, "host_wait": host_wait, "ops": {k: v.medians_us() for k, v in results.items()}}


def repeated(measure: Callable[[], dict], times: int) -> dict:
    """Run a column's measurement `times` times; each figure is the median of the runs' medians."""
    runs = []
    for _ in range(times):
        result = measure()
        if not result.get("ok"):
            return result
        runs.append(result)
    ops = {
        op: {part: statistics.median(r["ops"][op][part] for r in runs) for part in parts}
        for op, parts in runs[0]["ops"].items()
    }
    return {**runs[0], "ops": ops, "runs": len(runs)}


def run_worker(name: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--worker", name]
    cmd += ["--syscalls", str(args.syscalls), "--faults", str(args.faults)]
    cmd += ["--maps", str(args.maps), "--maps-mib", str(args.maps_mib)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"ok": False, "reason": f"worker timed out after {WORKER_TIMEOUT_S}s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"ok": False, "reason": f"worker failed (exit {proc.returncode}): {last}"}
    return json.loads(lines[-1])


def build_loop(out_dir: Path) -> Path:
    loop = out_dir / "loop"
    src = HERE / "c" / "getppid_loop.c"
    subprocess.run(["gcc", "-O2", "-static", "-o", str(loop), str(src)], check=True)
    return loop


def c_loop_ops(prefix: list[str], loop: str, args: argparse.Namespace, cwd: Path) -> dict:
    """Medians (µs) of the C program's operations, run as `prefix + [loop, op, ...]`."""
    runs = {
        "syscall": ["getppid", str(args.syscalls)],
        "fault": ["fault", str(args.faults)],
        "map1": ["mapunmap", str(args.maps), "1"],
        "map256": ["mapunmap", str(args.maps_mib), str(MIB_PAGES)],
    }
    ops = {}
    for key, argv in runs.items():
        proc = subprocess.run(
            [*prefix, loop, *argv], capture_output=True, text=True, cwd=cwd, timeout=RUNSC_TIMEOUT_S + 10
        )
        found = re.search(r"median_ns=([\d.]+)", proc.stdout)
        if proc.returncode != 0 or not found:
            why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}, no result"])[-1]
            return {"ok": False, "reason": f"{argv[0]}: {why}"}
        ops[key] = {"total": float(found.group(1)) / 1000}
    return {"ok": True, "ops": ops}


def runsc_column(args: argparse.Namespace, tmp: Path) -> dict:
    if not shutil.which("runsc"):
        return {"ok": False, "reason": "runsc not installed (apt-get install runsc)"}
    if os.geteuid() != 0:
        return {"ok": False, "reason": "runsc do needs root"}
    # Never --platform=kvm: Debian's runsc hangs on this host's kvm_pvm.
    prefix = ["timeout", str(RUNSC_TIMEOUT_S), "runsc", "--rootless=false", "--network=none"]
    prefix += ["--platform=ptrace", "do"]
    return repeated(lambda: c_loop_ops(prefix, "./loop", args, tmp), args.repeat)


def platform_columns(args: argparse.Namespace) -> dict[str, dict]:
    from cli.help_platforms import platform_infos

    columns = {}
    for info in platform_infos():
        if args.platforms and info.name not in args.platforms:
            continue
        if not info.usable:
            columns[info.name] = {"ok": False, "reason": info.reason}
        else:
            columns[info.name] = repeated(lambda name=info.name: run_worker(name, args), args.repeat)
            columns[info.name]["flavour"] = info.flavour
    return columns


def fmt_us(value: float) -> str:
    return f"{value:.2f} µs" if value < 100 else f"{value:.0f} µs"


def fmt_ratio(ratio: float) -> str:
    if ratio < 0.1:
        return f"{ratio:.2f}x"
    return f"{ratio:.1f}x" if ratio < 10 else f"{ratio:.0f}x"


def render(columns: dict[str, dict], args: argparse.Namespace) -> str:
    native = columns.get("native", {})
    runsc = columns.get("runsc ptrace", {})
    names = list(columns)
    out = [
        f"# Platform round trips ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f"Host: {cpu_model()}, {os.cpu_count()} CPUs, Linux {host.release()}, load {os.getloadavg()[0]:.2f}; "
        f"Python {host.python_version()}. Iterations: {args.syscalls} syscalls, {args.faults} faults, "
        f"{args.maps} x 1-page and {args.maps_mib} x 1-MiB map/unmap pairs; {args.repeat} runs per column; "
        + ("not pinned. " if args.no_pin else f"everything pinned to CPU {args.cpu}. ")
        + "Medians; ratios are against native and runsc ptrace.",
        "",
        "| operation | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for key, label in OPS:
        cells = []
        for name in names:
            col = columns[name]
            if not col.get("ok"):
                cells.append("n/a")
                continue
            value = col["ops"][key]["total"]
            cell = fmt_us(value)
            ratios = [
                f"{fmt_ratio(value / ref['ops'][key]['total'])} {ref_name}"
                for ref, ref_name in ((native, "native"), (runsc, "runsc"))
                if ref.get("ok")
            ]
            if ratios and name not in ("native", "runsc ptrace"):
                cell += " (" + ", ".join(ratios) + ")"
            cells.append(cell)
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    reasons = [f"- **{n}**: not measured: {c['reason']}" for n, c in columns.items() if not c.get("ok")]
    if reasons:
        out += ["", *reasons]
    out += ["", *python_share(columns), "", *NOTES]
    return "\n".join(out)


def python_share(columns: dict[str, dict]) -> list[str]:
    lines = [
        "## Where the time goes (our platforms, medians per operation)",
        "",
        "| platform | operation | total | serving loop (Python) | platform Python in switch | "
        "blocked in host | map/unmap calls | switches after map/unmap |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, col in columns.items():
        if name in ("native", "runsc ptrace") or not col.get("ok"):
            continue
        for key, label in OPS:
            m = col["ops"][key]
            host_wait = m.get("host") if col.get("host_wait") else None
            if key in ("syscall", "fault"):
                loop = m["total"] - m["switch"]
                in_switch = m["switch"] - host_wait if host_wait is not None else None
                calls = fmt_us(m["handler"]) + " (map)" if "handler" in m else "-"
                switches = "-"
            else:
                loop = in_switch = None
                calls = f"{fmt_us(m['map_call'])} + {fmt_us(m['unmap_call'])}"
                switches = f"{fmt_us(m['map_switch'])} + {fmt_us(m['unmap_switch'])}"
            cells = [fmt_us(m["total"])]
            cells += [fmt_us(v) if v is not None else "-" for v in (loop, in_switch, host_wait)]
            lines.append(f"| {name} | {label} | " + " | ".join([*cells, calls, switches]) + " |")
    return lines


NOTES = [
    "Notes:",
    "- native and runsc run bench/c/getppid_loop.c (static): raw getppid; a write to each fresh page of "
    "an anonymous mapping; mmap(MAP_POPULATE) + munmap pairs. Medians of 100-operation chunk means. "
    "runsc's Sentry maps more than the faulting page on a fault (fault-around), so its per-page fault "
    "figure is amortised; ours map exactly one page per fault.",
    "- Our platforms run bench/snippets/*.S through Platform/AddressSpace/Context with a minimal serving "
    "loop. Map/unmap pairs include the two switches that apply them: kvm queues page-table writes that "
    "the ring0 trampoline performs at the next entry, so the switch after a change carries its cost; "
    "systrap applies them inside the call (the stub mmaps/munmaps the memory file on request, and the "
    "host kernel fills page tables on first touch, so its cost does not grow with size).",
    "- 'serving loop' is the Python between one switch's return and the next switch (a real Sentry "
    "does more); 'platform Python in switch' is switch time not spent blocked in the host; "
    "'blocked in host' is time inside the platform's host calls (kvm: KVM_RUN; "
    "systrap: the futex handoff and wait for the stub).",
]


def cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return host.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--syscalls", type=int, default=20000)
    parser.add_argument("--faults", type=int, default=2000)
    parser.add_argument("--maps", type=int, default=2000, help="1-page map/unmap pairs")
    parser.add_argument("--maps-mib", type=int, default=200, help="1-MiB map/unmap pairs")
    parser.add_argument("--platforms", nargs="*", help="only these of ours (default: all)")
    parser.add_argument("--no-runsc", action="store_true", help="skip the runsc column")
    parser.add_argument("--repeat", type=int, default=3, help="runs per column (median of their medians)")
    parser.add_argument("--cpu", type=int, default=(os.cpu_count() or 1) - 1, help="CPU to pin everything to")
    parser.add_argument("--no-pin", action="store_true", help="let the scheduler place processes")
    parser.add_argument("--json", type=Path, help="also write the raw medians here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args)))
        return
    if not args.no_pin:
        # Children inherit this (workers, their stubs, runsc's sandbox). On one CPU a handoff
        # between two processes is a context switch; across CPUs of a VM without cpuidle it
        # also waits for the other vCPU to wake from HLT, which makes results bimodal.
        os.sched_setaffinity(0, {args.cpu})
    with tempfile.TemporaryDirectory(prefix="kvmsb-bench-") as tmp:
        tmp_path = Path(tmp)
        build_loop(tmp_path)
        columns = {"native": repeated(lambda: c_loop_ops([], "./loop", args, tmp_path), args.repeat)}
        if args.no_runsc:
            columns["runsc ptrace"] = {"ok": False, "reason": "skipped (--no-runsc)"}
        else:
            columns["runsc ptrace"] = runsc_column(args, tmp_path)
        columns.update(platform_columns(args))
    if args.json:
        args.json.write_text(json.dumps(columns, indent=1))
    print(render(columns, args))


if __name__ == "__main__":
    main()
