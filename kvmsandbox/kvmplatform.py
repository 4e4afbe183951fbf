"""The kvm platform: app code in KVM vCPUs behind the ring0 trampoline.

Flavours: `pvm-native` (kvm_pvm in native mode, this project's hosts) is
built and tested; the hardware VMX/SVM flavour is described in
docs/ring0.md and not built yet.
"""

from __future__ import annotations

import os

from kvmsandbox import platform
from kvmsandbox.memory.address_space import KVMAddressSpace
from kvmsandbox.memory.memfile import DEFAULT_SIZE, MemoryFile
from kvmsandbox.platform import Platform, PlatformInfo
from kvmsandbox.ring0.layout import MAX_USER_ADDRESS, MIN_USER_ADDRESS
from kvmsandbox.vcpu.context import KVMContext, install_kick_handler
from kvmsandbox.vcpu.machine import MEMORY_GPA, Machine
from kvmsandbox.vcpu.pool import VCPUPool

FLAVOUR_PVM_NATIVE = "pvm-native"
DESCRIPTION = "app code in KVM vCPUs (guest user mode); syscalls and faults caught by a ring0 trampoline"


def detect_flavour(device: str = "/dev/kvm") -> tuple[str | None, str]:
    """(flavour, reason): which ring0 flavour this host's /dev/kvm needs, or why none works."""
    if not os.path.exists(device):
        return None, f"{device} does not exist (no KVM on this host)"
    if not os.access(device, os.R_OK | os.W_OK):
        return None, f"{device} is not readable and writable by this user"
    from kvmsandbox.kvm import MSR_PVM_CONTROL, Kvm, KVMError

    try:
        kvm = Kvm(device)
    except (OSError, KVMError) as err:
        return None, f"cannot open {device}: {err}"
    try:
        vm = kvm.create_vm()
        try:
            vcpu = vm.create_vcpu(0)
            try:
                pvm = MSR_PVM_CONTROL in vcpu.get_msrs([MSR_PVM_CONTROL])
            finally:
                vcpu.close()
        finally:
            vm.close()
    except (OSError, KVMError) as err:
        return None, f"cannot create a VM: {err}"
    finally:
        kvm.close()
    if pvm:
        return FLAVOUR_PVM_NATIVE, "kvm_pvm in native mode"
    return None, "hardware VMX/SVM KVM: its ring0 flavour is designed (docs/ring0.md) but not built yet"


def probe() -> PlatformInfo:
    flavour, reason = detect_flavour()
    if flavour is not None:
        try:
            from kvmsandbox.ring0.loader import Ring0Image

            Ring0Image.load("pvm_native")
        except RuntimeError as err:
            return PlatformInfo("kvm", flavour, False, str(err), DESCRIPTION)
    return PlatformInfo("kvm", flavour or "-", flavour is not None, reason, DESCRIPTION)


class KVMPlatform(Platform):
    name = "kvm"
    flavour = FLAVOUR_PVM_NATIVE
    min_user_address = MIN_USER_ADDRESS
    max_user_address = MAX_USER_ADDRESS

    def __init__(self, memory_size: int = DEFAULT_SIZE, max_vcpus: int | None = None) -> None:
        install_kick_handler()
        self.memory_file = MemoryFile(memory_size)
        self.machine = Machine(self.memory_file)
        self.pool = VCPUPool(self.machine, max_vcpus)
        # Create vCPU 0 now: setup errors surface here, and its reset FPU image is the default.
        self.pool.release(self.pool.acquire(None, claim=lambda vcpu: None))

    def new_address_space(self) -> KVMAddressSpace:
        return KVMAddressSpace(self.pool, MEMORY_GPA, self.min_user_address, self.max_user_address)

    def new_context(self) -> KVMContext:
        return KVMContext(self.pool)

    def close(self) -> None:
        self.machine.close()
        self.memory_file.close()


platform.register("kvm", probe, KVMPlatform)
