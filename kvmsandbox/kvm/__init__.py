"""python-kvm: thin bindings to /dev/kvm over the cffi module built from <linux/kvm.h>.

Every failing ioctl raises KVMError naming the ioctl and the errno, so a
broken host shows up as "KVM_SET_MSRS: EINVAL" rather than a bare OSError.
"""

from __future__ import annotations

import errno as _errno
import mmap
import os

from kvmsandbox.kvm._kvm import ffi, lib

KVM_DEVICE = "/dev/kvm"

MSR_STAR = 0xC0000081
MSR_LSTAR = 0xC0000082
MSR_SYSCALL_MASK = 0xC0000084
MSR_FS_BASE = 0xC0000100
MSR_GS_BASE = 0xC0000101
MSR_KERNEL_GS_BASE = 0xC0000102
MSR_PVM_CONTROL = 0x4B564D10  # this host's kvm_pvm "PV control" MSR (facts/pvm-native.md §1)
MSR_PVM_SIGNATURE = 0x4B564D11

EXIT_NAMES = {
    lib.KVM_EXIT_UNKNOWN: "UNKNOWN",
    lib.KVM_EXIT_IO: "IO",
    lib.KVM_EXIT_HLT: "HLT",
    lib.KVM_EXIT_MMIO: "MMIO",
    lib.KVM_EXIT_SHUTDOWN: "SHUTDOWN",
    lib.KVM_EXIT_FAIL_ENTRY: "FAIL_ENTRY",
    lib.KVM_EXIT_INTR: "INTR",
    lib.KVM_EXIT_INTERNAL_ERROR: "INTERNAL_ERROR",
}


class KVMError(OSError):
    """A KVM ioctl failed."""

    def __init__(self, ioctl: str, err: int) -> None:
        super().__init__(err, f"{ioctl}: {_errno.errorcode.get(err, err)} ({os.strerror(err)})")
        self.ioctl = ioctl


def _check(name: str, result: int) -> int:
    if result < 0:
        raise KVMError(name, -result)
    return result


def _ioctl(fd: int, name: str, arg: object) -> int:
    return _check(name, lib.kvm_ioctl(fd, getattr(lib, name), arg))


def _ioctl_int(fd: int, name: str, arg: int = 0) -> int:
    return _check(name, lib.kvm_ioctl_int(fd, getattr(lib, name), arg))


class Kvm:
    """The /dev/kvm system handle."""

    def __init__(self, path: str = KVM_DEVICE) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        version = _ioctl_int(self.fd, "KVM_GET_API_VERSION")
        if version != lib.KVM_API_VERSION:
            os.close(self.fd)
            raise KVMError("KVM_GET_API_VERSION", _errno.EPROTO)
        self.api_version = version
        self.vcpu_mmap_size = _ioctl_int(self.fd, "KVM_GET_VCPU_MMAP_SIZE")

    def check_extension(self, cap: int) -> int:
        return _ioctl_int(self.fd, "KVM_CHECK_EXTENSION", cap)

    def supported_cpuid(self, max_entries: int = 256) -> CpuidTable:
        """KVM_GET_SUPPORTED_CPUID (pass the result to Vcpu.set_cpuid2)."""
        buf = ffi.new(
            "char[]", ffi.sizeof("struct kvm_cpuid2") + max_entries * ffi.sizeof("struct kvm_cpuid_entry2")
        )
        cpuid = ffi.cast("struct kvm_cpuid2 *", buf)
        cpuid.nent = max_entries
        _ioctl(self.fd, "KVM_GET_SUPPORTED_CPUID", cpuid)
        return CpuidTable(cpuid, buf)

    def msr_index_list(self, max_entries: int = 1024) -> list[int]:
        buf = ffi.new("char[]", ffi.sizeof("struct kvm_msr_list") + 4 * max_entries)
        msrs = ffi.cast("struct kvm_msr_list *", buf)
        msrs.nmsrs = max_entries
        _ioctl(self.fd, "KVM_GET_MSR_INDEX_LIST", msrs)
        indices = ffi.cast("uint32_t *", buf + ffi.sizeof("struct kvm_msr_list"))
        return [indices[i] for i in range(msrs.nmsrs)]

    def create_vm(self) -> Vm:
        return Vm(self, _ioctl_int(self.fd, "KVM_CREATE_VM", 0))

    def close(self) -> None:
        os.close(self.fd)


class CpuidTable:
    """A `struct kvm_cpuid2` and the buffer that owns its memory."""

    def __init__(self, ptr: object, owner: object) -> None:
        self.ptr = ptr
        self._owner = owner

    def entries(self) -> list[tuple[int, int, int, int, int, int]]:
        """(function, index, eax, ebx, ecx, edx) per entry."""
        first = ffi.cast("struct kvm_cpuid_entry2 *", self._owner + ffi.sizeof("struct kvm_cpuid2"))
        rows = (first[i] for i in range(self.ptr.nent))
        return [(e.function, e.index, e.eax, e.ebx, e.ecx, e.edx) for e in rows]


class Vm:
    """A KVM virtual machine."""

    def __init__(self, kvm: Kvm, fd: int) -> None:
        self.kvm = kvm
        self.fd = fd

    def set_user_memory_region(
        self, slot: int, guest_phys_addr: int, size: int, host_addr: int, flags: int = 0
    ):
        region = ffi.new("struct kvm_userspace_memory_region *")
        region.slot = slot
        region.flags = flags
        region.guest_phys_addr = guest_phys_addr
        region.memory_size = size
        region.userspace_addr = host_addr
        _ioctl(self.fd, "KVM_SET_USER_MEMORY_REGION", region)

    def create_vcpu(self, index: int) -> Vcpu:
        return Vcpu(self, index, _ioctl_int(self.fd, "KVM_CREATE_VCPU", index))

    def close(self) -> None:
        os.close(self.fd)


class Vcpu:
    """A KVM vCPU: register access and KVM_RUN (which releases the GIL)."""

    def __init__(self, vm: Vm, index: int, fd: int) -> None:
        self.vm = vm
        self.index = index
        self.fd = fd
        self._run_map = mmap.mmap(
            fd, vm.kvm.vcpu_mmap_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
        )
        self._run_buf = ffi.from_buffer(self._run_map)
        self.run_struct = ffi.cast("struct kvm_run *", self._run_buf)
        self.sync_regs = lib.kvm_run_sync_regs(self.run_struct).regs
        # The same registers as raw bytes, for whole-struct (un)packing on the hot path.
        self.sync_regs_buffer = ffi.buffer(ffi.addressof(self.sync_regs), ffi.sizeof("struct kvm_regs"))
        self.io = lib.kvm_run_io(self.run_struct)

    def run(self) -> int:
        """KVM_RUN once; returns 0, or -errno (EINTR when kicked) without raising for EINTR/EAGAIN."""
        result = lib.kvm_run_vcpu(self.fd)
        if result < 0 and -result not in (_errno.EINTR, _errno.EAGAIN):
            raise KVMError("KVM_RUN", -result)
        return result

    @property
    def exit_reason(self) -> int:
        return self.run_struct.exit_reason

    def io_data(self) -> bytes:
        """The payload of a KVM_EXIT_IO exit."""
        io = self.io
        return bytes(self._run_map[io.data_offset : io.data_offset + io.size * io.count])

    def internal_error(self) -> tuple[int, list[int]]:
        internal = lib.kvm_run_internal(self.run_struct)
        return internal.suberror, [internal.data[i] for i in range(min(internal.ndata, 16))]

    def get_regs(self) -> object:
        regs = ffi.new("struct kvm_regs *")
        _ioctl(self.fd, "KVM_GET_REGS", regs)
        return regs

    def set_regs(self, regs: object) -> None:
        _ioctl(self.fd, "KVM_SET_REGS", regs)

    def get_sregs(self) -> object:
        sregs = ffi.new("struct kvm_sregs *")
        _ioctl(self.fd, "KVM_GET_SREGS", sregs)
        return sregs

    def set_sregs(self, sregs: object) -> None:
        _ioctl(self.fd, "KVM_SET_SREGS", sregs)

    def get_fpu(self) -> object:
        fpu = ffi.new("struct kvm_fpu *")
        _ioctl(self.fd, "KVM_GET_FPU", fpu)
        return fpu

    def set_fpu(self, fpu: object) -> None:
        _ioctl(self.fd, "KVM_SET_FPU", fpu)

    def get_xsave(self, into: bytearray | None = None) -> bytearray:
        """The guest XSAVE image (4 KiB, host XSAVE layout)."""
        buf = into if into is not None else bytearray(ffi.sizeof("struct kvm_xsave"))
        _ioctl(self.fd, "KVM_GET_XSAVE", ffi.from_buffer("struct kvm_xsave *", buf))
        return buf

    def set_xsave(self, image: bytes | bytearray) -> None:
        if len(image) != ffi.sizeof("struct kvm_xsave"):
            raise ValueError(f"XSAVE image must be {ffi.sizeof('struct kvm_xsave')} bytes")
        # from_buffer with the pointer type keeps `image` alive for the call; a cast of a
        # temporary from_buffer would not, and KVM would read freed memory.
        _ioctl(self.fd, "KVM_SET_XSAVE", ffi.from_buffer("struct kvm_xsave *", image))

    def set_cpuid2(self, cpuid: CpuidTable) -> None:
        _ioctl(self.fd, "KVM_SET_CPUID2", cpuid.ptr)

    def set_msrs(self, pairs: list[tuple[int, int]]) -> int:
        """Write MSRs; returns how many KVM accepted (it stops at the first refused one)."""
        buf = ffi.new(
            "char[]", ffi.sizeof("struct kvm_msrs") + len(pairs) * ffi.sizeof("struct kvm_msr_entry")
        )
        msrs = ffi.cast("struct kvm_msrs *", buf)
        msrs.nmsrs = len(pairs)
        entries = ffi.cast("struct kvm_msr_entry *", buf + ffi.sizeof("struct kvm_msrs"))
        for i, (index, value) in enumerate(pairs):
            entries[i].index = index
            entries[i].data = value
        return _ioctl(self.fd, "KVM_SET_MSRS", msrs)

    def get_msrs(self, indices: list[int]) -> dict[int, int]:
        """Read MSRs; those KVM refuses are missing from the result."""
        buf = ffi.new(
            "char[]", ffi.sizeof("struct kvm_msrs") + len(indices) * ffi.sizeof("struct kvm_msr_entry")
        )
        msrs = ffi.cast("struct kvm_msrs *", buf)
        msrs.nmsrs = len(indices)
        entries = ffi.cast("struct kvm_msr_entry *", buf + ffi.sizeof("struct kvm_msrs"))
        for i, index in enumerate(indices):
            entries[i].index = index
        count = _ioctl(self.fd, "KVM_GET_MSRS", msrs)
        return {entries[i].index: entries[i].data for i in range(count)}

    def close(self) -> None:
        self.sync_regs = self.sync_regs_buffer = self.io = self.run_struct = None
        ffi.release(self._run_buf)
        self._run_map.close()
        os.close(self.fd)
