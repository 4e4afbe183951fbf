"""The vCPU pool: contexts borrow a vCPU for each switch, preferring the one they last used.

Staying on the same vCPU keeps the context's FPU state resident and its
CR3 loaded, so a switch needs no extra ioctl or trampoline work.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from kvmsandbox.vcpu.machine import Machine
from kvmsandbox.vcpu.vcpu import VirtualCPU


def default_max_vcpus() -> int:
    """A vCPU is held only while app code runs, so this bounds concurrently running app threads.

    vCPUs are cheap to create here (~0.3 ms), and a thread that finds none
    free waits, so the bound is generous rather than tied to host cores.
    """
    return max(64, 4 * (os.cpu_count() or 1))


class VCPUPool:
    def __init__(self, machine: Machine, max_vcpus: int | None = None) -> None:
        self.machine = machine
        self.max_vcpus = max_vcpus or default_max_vcpus()
        # Fast paths take the bare lock (Condition.__enter__ is a Python-level call).
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._free: list[VirtualCPU] = []
        self._waiting = 0
        self._next_index = 0

    @property
    def lock(self) -> threading.Lock:
        return self._lock

    def acquire(self, preferred: VirtualCPU | None, claim: Callable[[VirtualCPU], None]) -> VirtualCPU:
        """A free vCPU (`preferred` if it is free); `claim(vcpu)` runs before the lock is let go."""
        with self._lock:
            vcpu = self._take(preferred)
            claim(vcpu)
            return vcpu

    def _take(self, preferred: VirtualCPU | None) -> VirtualCPU:
        free = self._free
        if free and free[-1] is preferred:
            return free.pop()
        while True:
            if preferred is not None and preferred in free:
                free.remove(preferred)
                return preferred
            if free:
                return free.pop()
            if len(self.machine.vcpus) < self.max_vcpus:
                vcpu = VirtualCPU(self.machine, self._next_index)
                self._next_index += 1
                self.machine.vcpus.append(vcpu)
                return vcpu
            self._waiting += 1
            try:
                self._cond.wait()
            finally:
                self._waiting -= 1

    def release(self, vcpu: VirtualCPU) -> None:
        with self._lock:
            if vcpu.broken:
                self._retire(vcpu)
            else:
                self._free.append(vcpu)
            if self._waiting:
                self._cond.notify()

    def evacuate(self, root_gpa: int) -> None:
        """Park every vCPU that may still be on page-table root `root_gpa`, so its tables can be freed."""
        for vcpu in list(self.machine.vcpus):
            if root_gpa in vcpu.maybe_roots:
                with self._lock:
                    self._waiting += 1
                    try:
                        self._cond.wait_for(lambda v=vcpu: v in self._free or v.broken)
                    finally:
                        self._waiting -= 1
                    if vcpu.broken:
                        continue
                    self._free.remove(vcpu)
                try:
                    vcpu.park()
                finally:
                    self.release(vcpu)

    def _retire(self, vcpu: VirtualCPU) -> None:
        """Drop a broken vCPU (KVM ids are never reused: the next one gets a fresh index)."""
        self.machine.vcpus.remove(vcpu)
        owner = vcpu.fpu_owner
        if owner is not None:
            owner.fpu_vcpu = None
            owner.fpu_image = None
        vcpu.close()
